/**
 * `npm run build:wasm`: compiles wasm/prover.ts (AssemblyScript) twice,
 *   wasm/build/prover-simd.wasm  with --enable simd
 *   wasm/build/prover.wasm       without (for engines that lack WASM SIMD)
 * then checks that both modules import nothing and that only the SIMD build uses SIMD.
 */
import { mkdirSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { basename, dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import asc from 'assemblyscript/asc'

const here = dirname(fileURLToPath(import.meta.url))
const source = join(here, 'prover.ts')
const outDir = join(here, 'build')

const BUILDS = [
  { file: 'prover-simd.wasm', simd: true },
  { file: 'prover.wasm', simd: false }
]

/** A module with one v128 instruction: validates only where WASM SIMD is available. */
const SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b,
  0x03, 0x02, 0x01, 0x00,
  0x0a, 0x08, 0x01, 0x06, 0x00, 0x41, 0x00, 0xfd, 0x11, 0x0b
])

async function compile ({ file, simd }) {
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
  const outputs = new Map()
  const { error, stderr } = await asc.main(args, {
    writeFile: (name, contents) => { outputs.set(basename(name), contents) }
  })
  if (error !== null && error !== undefined) {
    throw new Error(`asc failed for ${file}: ${error.message}\n${stderr.toString()}`)
  }
  const bytes = outputs.get(file)
  const text = outputs.get(`${file}.wat`)
  if (!(bytes instanceof Uint8Array) || typeof text !== 'string') throw new Error(`asc produced no ${file}`)
  if (/\bv128\b/.test(text) !== simd) throw new Error(`${file}: ${simd ? 'no' : 'unexpected'} v128 instructions`)
  const module = new WebAssembly.Module(bytes)
  const imports = WebAssembly.Module.imports(module)
  if (imports.length > 0) throw new Error(`${file} imports ${imports.map(i => `${i.module}.${i.name}`).join(', ')}: expected none`)
  const instance = new WebAssembly.Instance(module, {})
  if (instance.exports.simd() !== (simd ? 1 : 0)) throw new Error(`${file}: simd() does not match the build`)
  await writeFile(join(outDir, file), bytes)
  return { file, bytes: bytes.byteLength }
}

mkdirSync(outDir, { recursive: true })
if (!WebAssembly.validate(SIMD_PROBE)) throw new Error('this Node lacks WASM SIMD: cannot check the SIMD build')
const results = []
for (const build of BUILDS) results.push(await compile(build))
for (const { file, bytes } of results) process.stdout.write(`wasm/build/${file}  ${bytes} bytes\n`)
