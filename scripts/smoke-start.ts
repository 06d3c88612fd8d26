/**
 * Tries the README's start command as a newcomer would, on a clone where nothing has been built yet:
 * runs `npm start`, waits for the address it prints, opens that page in Chromium and waits until the
 * node is online with a relay reservation. CI runs this before anything else builds (a test run that
 * builds first once hid a start command that could not build the prover).
 */
import { spawn } from 'node:child_process'
import { chromium } from '@playwright/test'
import { TEST_CHROMIUM_ARGS } from '../playwright.config.ts'

const START_TIMEOUT_MS = 240_000
const ONLINE_TIMEOUT_MS = 90_000

const starter = spawn('npm', ['start'], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
let log = ''
starter.stdout.on('data', (chunk: Buffer) => { log += chunk.toString() })
starter.stderr.on('data', (chunk: Buffer) => { log += chunk.toString() })

function stopStarter (): void {
  // npm start runs tsx which runs the script: end the whole process group.
  if (starter.pid !== undefined && starter.exitCode === null) {
    try { process.kill(-starter.pid, 'SIGTERM') } catch { /* already gone */ }
  }
}

async function printedUrl (): Promise<string> {
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`npm start printed no address in ${START_TIMEOUT_MS} ms`)) }, START_TIMEOUT_MS)
    const look = (): void => {
      const match = /Hyperspace node: (http\S+)/.exec(log)
      if (match?.[1] !== undefined) { clearTimeout(timer); resolve(match[1]) }
    }
    starter.stdout.on('data', look)
    starter.once('exit', code => { clearTimeout(timer); reject(new Error(`npm start exited with ${code}`)) })
  })
}

let failed = false
try {
  const url = await printedUrl()
  console.log(`smoke: npm start serves ${url}`)
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: TEST_CHROMIUM_ARGS })
  try {
    const page = await browser.newPage()
    page.on('pageerror', err => { console.error(`[page error] ${err.message}`) })
    await page.goto(url)
    const handle = await page.waitForFunction(() => {
      const status = window.hyperspace?.status()
      return status?.online === true && status.relays.some(r => r.reserved) ? status : false
    }, null, { timeout: ONLINE_TIMEOUT_MS, polling: 250 })
    const status = await handle.jsonValue()
    if (status === false) throw new Error('the page reported no status')
    console.log(`smoke: node ${status.peerId} online with a relay reservation (profile ${status.profile})`)
  } finally {
    await browser.close()
  }
} catch (err) {
  failed = true
  console.error(`smoke: the start command failed: ${err instanceof Error ? err.message : String(err)}\n--- npm start output ---\n${log}`)
} finally {
  stopStarter()
}
process.exit(failed ? 1 : 0)
