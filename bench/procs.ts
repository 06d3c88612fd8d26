import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'

const HOST = '127.0.0.1'

/** Builds the app as `npm run build` does (WASM prover, then Vite), so the bench measures this checkout. */
export async function ensureBuild (root: string): Promise<boolean> {
  console.error('bench: building the app (npm run build)')
  const child = spawn('npm', ['run', 'build'], { cwd: root, stdio: ['ignore', 2, 2] })
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', resolve)
  })
  if (code !== 0) throw new Error(`npm run build exited with ${code}`)
  return true
}

async function isFree (port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const server = createServer()
    server.once('error', () => { resolve(false) })
    server.listen(port, HOST, () => { server.close(() => { resolve(true) }) })
  })
}

export interface PreviewServer {
  url: string
  port: number
  close(): Promise<void>
  /** Synchronous SIGKILL of the server's process group, for process 'exit'. */
  killNow(): void
}

async function waitForExit (child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return true
  return await new Promise(resolve => {
    const timer = setTimeout(() => { resolve(false) }, ms)
    child.once('exit', () => { clearTimeout(timer); resolve(true) })
  })
}

/** Signals the process group this module created for `child` (npx and the vite it runs). */
function signalGroup (child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return
  try { process.kill(-child.pid, signal) } catch { /* already gone */ }
}

async function startPreviewOn (root: string, port: number): Promise<PreviewServer> {
  const child = spawn('npx', ['vite', 'preview', '--host', HOST, '--port', String(port), '--strictPort'], {
    cwd: root, stdio: ['ignore', 'pipe', 'pipe'], detached: true
  })
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const close = async (): Promise<void> => {
    signalGroup(child, 'SIGTERM')
    if (!await waitForExit(child, 5_000)) {
      signalGroup(child, 'SIGKILL')
      await waitForExit(child, 5_000)
    }
  }
  const url = `http://${HOST}:${port}/`
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`vite preview exited with ${child.exitCode}: ${output}`)
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) })
      if (response.ok) return { url, port, close, killNow: () => { if (child.exitCode === null && child.signalCode === null) signalGroup(child, 'SIGKILL') } }
    } catch { /* not up yet */ }
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  await close()
  throw new Error(`vite preview did not answer on ${url} in 30 s: ${output}`)
}

/** BENCH_PREVIEW_PORT, else 4400: two benches on one machine given different starts do not race for ports. */
function previewStartPort (): number {
  const chosen = process.env.BENCH_PREVIEW_PORT
  if (chosen === undefined || chosen === '') return 4400
  const port = Number(chosen)
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new Error(`BENCH_PREVIEW_PORT is not a port: ${chosen}`)
  return port
}

/** `npx vite preview` on the first free port from `start` up (strictPort; retried if the port is taken meanwhile). */
export async function startPreview (root: string, start = previewStartPort()): Promise<PreviewServer> {
  let lastError: unknown
  for (let port = start; port < start + 50; port++) {
    if (!await isFree(port)) continue
    try {
      return await startPreviewOn(root, port)
    } catch (err) {
      lastError = err
      if (!/already in use|EADDRINUSE/i.test(String(err))) throw err
    }
  }
  throw new Error(`no port for vite preview from ${start}: ${String(lastError)}`)
}

/** Runs `fn` but gives up after `ms`, so a stuck shutdown cannot hang the bench. */
export async function withTimeout<T> (what: string, ms: number, fn: () => Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    return await Promise.race([fn(), new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => { reject(new Error(`${what} timed out after ${ms} ms`)) }, ms)
    })])
  } finally {
    clearTimeout(timer)
  }
}
