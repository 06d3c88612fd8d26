import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable, Writable } from 'node:stream'
import { chromium, type Browser } from '@playwright/test'
import { pipeTransport } from './cdp-pipe.ts'
import { LabServiceError } from './errors.ts'
import { startXvfb } from './xvfb.ts'

const CONNECT_TIMEOUT_MS = 120_000
const STOP_GRACE_MS = 10_000

export interface HeadedBrowser {
  browser: Browser
  close(): Promise<void>
}

/**
 * A headed Chromium inside a home's namespace, on its own Xvfb there, driven by Playwright over
 * the DevTools pipe. Playwright's own launch cannot give a hidden page: it turns focus emulation on
 * in every page it opens, and Chromium counts a page with focus emulation as captured, so visible,
 * even in a background tab. Attached with `noDefaults`, the pages of the browser's default context
 * keep none of those overrides. `args` are Chromium's switches beside the ones this needs.
 */
export async function launchHeaded (ns: string, executable: string, args: string[]): Promise<HeadedBrowser> {
  const x = await startXvfb(ns)
  const profile = mkdtempSync(join(tmpdir(), 'hslab-profile-'))
  const child = spawn('ip', ['netns', 'exec', ns, executable, '--remote-debugging-pipe', `--user-data-dir=${profile}`,
    '--no-sandbox', '--no-first-run', '--no-default-browser-check', '--password-store=basic', ...args, 'about:blank'],
  { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'], env: { ...process.env, DISPLAY: x.display } })
  let output = ''
  child.stderr?.on('data', (chunk: Buffer) => { output = (output + chunk.toString()).slice(-2000) })
  const exited = new Promise<void>(resolve => { child.once('exit', () => { resolve() }) })
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    const kill = setTimeout(() => { child.kill('SIGKILL') }, STOP_GRACE_MS)
    await exited
    clearTimeout(kill)
    await x.stop()
    rmSync(profile, { recursive: true, force: true })
  }
  try {
    const transport = pipeTransport(child.stdio[3] as Writable, child.stdio[4] as Readable)
    const browser = await chromium.connectOverCDP(transport, { noDefaults: true, timeout: CONNECT_TIMEOUT_MS })
    return {
      browser,
      close: async () => {
        await browser.close().catch(() => undefined)
        await stop()
      }
    }
  } catch (err) {
    await stop()
    throw new LabServiceError(`headed Chromium in ${ns} did not connect: ${(err as Error).message}; ${output}`)
  }
}
