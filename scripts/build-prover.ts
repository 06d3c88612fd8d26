/**
 * Builds the pulse prover (wasm/prover.ts, AssemblyScript) twice,
 *   wasm/build/prover-simd.wasm  with --enable simd
 *   wasm/build/prover.wasm       without (for engines that lack WASM SIMD)
 * and checks that both modules import nothing and that only the SIMD build uses SIMD.
 *
 * `npm run build:wasm` runs it directly; the Vite plugin below runs it before every build and dev
 * server whose output is missing or older than the source, so no command that builds the app can
 * start without the prover (a fresh clone's `npm start` once failed on exactly that).
 */
import { mkdirSync, readdirSync, statSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { basename, dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import asc from 'assemblyscript/asc'
import type { Plugin } from 'vite'

const wasmDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'wasm')
const source = join(wasmDir, 'prover.ts')
const outDir = join(wasmDir, 'build')

const BUILDS = [
  { file: 'prover-simd.wasm', simd: true },
  { file: 'prover.wasm', simd: false }
] as const

/** A module with one v128 instruction: validates only where WASM SIMD is available. */
const SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b,
  0x03, 0x02, 0x01, 0x00,
  0x0a, 0x08, 0x01, 0x06, 0x00, 0x41, 0x00, 0xfd, 0x11, 0x0b
])

export interface BuiltProver { path: string, bytes: number }

async function compile (file: string, simd: boolean): Promise<BuiltProver> {
  const args = [
    relative(process.cwd(), source),
    '-O3',
    '--runtime', 'stub',
    '--noAssert',
    '--use', 'abort=',
    '--outFile', file,
    '--textFile', `${file}.wat`,
    simd ? '--enable' : '--disable', 'simd'
  ]
  // Outputs are caught in memory: the binary goes to wasm/build, the text only serves the check below.
  const outputs = new Map<string, Uint8Array | string>()
  const { error, stderr } = await asc.main(args, {
    writeFile: (name: string, contents: Uint8Array | string) => { outputs.set(basename(name), contents) }
  })
  if (error !== null && error !== undefined) {
    throw new Error(`asc failed for ${file}: ${error.message}\n${stderr.toString()}`)
  }
  const bytes = outputs.get(file)
  const text = outputs.get(`${file}.wat`)
  if (!(bytes instanceof Uint8Array) || typeof text !== 'string') throw new Error(`asc produced no ${file}`)
  if (/\bv128\b/.test(text) !== simd) throw new Error(`${file}: ${simd ? 'no' : 'unexpected'} v128 instructions`)
  const module = new WebAssembly.Module(new Uint8Array(bytes))
  const imports = WebAssembly.Module.imports(module)
  if (imports.length > 0) throw new Error(`${file} imports ${imports.map(i => `${i.module}.${i.name}`).join(', ')}: expected none`)
  const instance = new WebAssembly.Instance(module, {})
  const reported = instance.exports.simd
  if (typeof reported !== 'function' || reported() !== (simd ? 1 : 0)) throw new Error(`${file}: simd() does not match the build`)
  const path = join(outDir, file)
  await writeFile(path, bytes)
  return { path, bytes: bytes.byteLength }
}

/** Compiles both builds and writes them to wasm/build. */
export async function buildProver (): Promise<BuiltProver[]> {
  mkdirSync(outDir, { recursive: true })
  if (!WebAssembly.validate(SIMD_PROBE)) throw new Error('this Node lacks WASM SIMD: cannot check the SIMD build')
  const results: BuiltProver[] = []
  for (const { file, simd } of BUILDS) results.push(await compile(file, simd))
  return results
}

function modifiedMs (path: string): number {
  try {
    return statSync(path).mtimeMs
  } catch {
    return -1
  }
}

/** True when both builds exist and are newer than every source file (prover.ts and what it imports). */
export function proverIsCurrent (): boolean {
  const sourceMs = Math.max(...readdirSync(wasmDir).filter(name => name.endsWith('.ts')).map(name => modifiedMs(join(wasmDir, name))))
  return BUILDS.every(({ file }) => modifiedMs(join(outDir, file)) >= sourceMs)
}

/** Builds the prover when it is missing or stale; a no-op otherwise. */
export async function ensureProver (): Promise<void> {
  if (!proverIsCurrent()) await buildProver()
}

/** Vite plugin: every `vite build` and dev server starts with a current prover. */
export function proverWasm (): Plugin {
  return { name: 'hyperspace-prover-wasm', buildStart: ensureProver }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const { path, bytes } of await buildProver()) process.stdout.write(`${relative(process.cwd(), path)}  ${bytes} bytes\n`)
}
