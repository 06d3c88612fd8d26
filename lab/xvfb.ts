import { spawn } from 'node:child_process'
import type { Readable } from 'node:stream'
import { LabServiceError } from './errors.ts'

/** How long Xvfb may take to name its display; it is up in well under a second when idle. */
const START_TIMEOUT_MS = 30_000
const STOP_GRACE_MS = 5_000

export interface XDisplay {
  /** The DISPLAY value, e.g. `:3`. */
  display: string
  stop(): Promise<void>
}

/**
 * A virtual X server inside a lab namespace, for a headed Chromium there: only a headed browser
 * hides a page whose tab is in the background. `-displayfd` makes Xvfb pick a display number no
 * other X server on the machine holds (another lab run's included) and write it to fd 3. TCP is
 * off; Chromium in the same namespace reaches it over its unix socket.
 */
export async function startXvfb (ns: string): Promise<XDisplay> {
  const child = spawn('ip', ['netns', 'exec', ns, 'Xvfb', '-displayfd', '3', '-nolisten', 'tcp', '-screen', '0', '1280x800x24'],
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stderr?.on('data', (chunk: Buffer) => { output = (output + chunk.toString()).slice(-2000) })
  const exited = new Promise<void>(resolve => { child.once('exit', () => { resolve() }) })
  const displayPipe = child.stdio[3] as Readable
  const number = await new Promise<string>((resolve, reject) => {
    let written = ''
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new LabServiceError(`Xvfb in ${ns} named no display in ${START_TIMEOUT_MS / 1000} s: ${output}`)) }, START_TIMEOUT_MS)
    displayPipe.on('data', (chunk: Buffer) => {
      written += chunk.toString()
      if (!written.includes('\n')) return
      clearTimeout(timer)
      resolve(written.trim())
    })
    child.once('exit', code => { clearTimeout(timer); reject(new LabServiceError(`Xvfb in ${ns} exited with ${code} (is the xvfb package installed?): ${output}`)) })
  })
  if (!/^\d+$/.test(number)) {
    child.kill('SIGKILL')
    throw new LabServiceError(`Xvfb in ${ns} wrote no display number: ${JSON.stringify(number)}`)
  }
  return {
    display: `:${number}`,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      const kill = setTimeout(() => { child.kill('SIGKILL') }, STOP_GRACE_MS)
      await exited
      clearTimeout(kill)
    }
  }
}
