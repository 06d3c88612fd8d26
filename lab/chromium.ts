import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type Browser, type BrowserContext, type Page } from '@playwright/test'
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../playwright.config.ts'
import { acceptLinkSettingsAhead, waitForNode } from '../tests/e2e/nodes.ts'
import { launchHeaded } from './headed-chromium.ts'
import type { Home } from './topology.ts'

/**
 * The flags Playwright adds that keep a hidden tab running at full speed. Real users have none of
 * them, so the lab drops them: a hidden page then throttles its timers as it would for them.
 */
export const THROTTLING_OFF_FLAGS = ['--disable-background-timer-throttling', '--disable-renderer-backgrounding', '--disable-backgrounding-occluded-windows']

export interface LabBrowser {
  home: Home
  browser: Browser
  /** Where the app opens: a headed browser's default context (see launchHeaded), else a new context. */
  context?: BrowserContext
  close(): Promise<void>
}

/**
 * Chromium inside a home's namespace: a wrapper script execs it under `ip netns exec`. Playwright
 * talks to it over a pipe, so driving it works across the namespace boundary while every packet
 * the browser sends goes through the home's NAT.
 */
export async function launchInHome (home: Home, appOrigin: string, options: { headed?: boolean } = {}): Promise<LabBrowser> {
  // The app server is http on a lab address: a secure context only by this flag (Web Locks, crypto.subtle).
  const args = [...CHROMIUM_ARGS, `--unsafely-treat-insecure-origin-as-secure=${appOrigin}`]
  if (options.headed === true) {
    const headed = await launchHeaded(home.ns, CHROMIUM_PATH, args)
    return { home, browser: headed.browser, context: headed.browser.contexts()[0], close: headed.close }
  }
  const dir = mkdtempSync(join(tmpdir(), 'hslab-chromium-'))
  const wrapper = join(dir, 'chromium')
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${home.ns} ${CHROMIUM_PATH} "$@"\n`)
  chmodSync(wrapper, 0o755)
  const browser = await chromium.launch({
    executablePath: wrapper,
    args,
    ignoreDefaultArgs: THROTTLING_OFF_FLAGS
  })
  return { home, browser, close: async () => { await browser.close().catch(() => undefined) } }
}

export interface LabPage {
  page: Page
  peerId: string
}

/**
 * Records every RTCPeerConnection the page makes. libp2p keeps its connections' RTCPeerConnections
 * to itself; their getStats is the only way to learn which candidate pair ICE chose.
 */
function recordPeerConnections (): void {
  const Native = window.RTCPeerConnection
  const made: RTCPeerConnection[] = []
  ;(window as unknown as { labPeerConnections: RTCPeerConnection[] }).labPeerConnections = made
  window.RTCPeerConnection = class extends Native {
    constructor (config?: RTCConfiguration) {
      super(config)
      made.push(this)
    }
  }
}

/** Opens the app (link settings accepted ahead, as a returning user) in a new context and waits for the node. */
export async function openApp (lab: LabBrowser, url: string): Promise<LabPage> {
  const context = lab.context ?? await lab.browser.newContext()
  await acceptLinkSettingsAhead(context, url)
  await context.addInitScript(recordPeerConnections)
  // LAB_DEBUG=<libp2p debug namespaces> prints the page's console with those logs on, as E2E_DEBUG does.
  const debug = process.env.LAB_DEBUG
  if (debug !== undefined) await context.addInitScript(namespaces => { localStorage.setItem('debug', namespaces) }, debug)
  // A headed browser starts with one blank tab: the app takes it, so it is the window's active tab.
  const page = context.pages()[0] ?? await context.newPage()
  if (debug !== undefined) page.on('console', message => { console.error(`[${lab.home.name} ${Date.now() % 100_000}] ${message.text()}`) })
  page.on('pageerror', err => { console.error(`[${lab.home.name} page error] ${err.message}`) })
  await page.goto(url)
  const status = await waitForNode(page)
  return { page, peerId: status.peerId }
}

export type CandidateType = 'host' | 'srflx' | 'prflx' | 'relay'

export interface IcePath {
  local: CandidateType
  remote: CandidateType
}

/** The candidate pair ICE selected on each connected RTCPeerConnection of the page. */
export async function icePaths (page: Page): Promise<IcePath[]> {
  return await page.evaluate(async () => {
    const made = (window as unknown as { labPeerConnections?: RTCPeerConnection[] }).labPeerConnections ?? []
    const paths: Array<{ local: CandidateType, remote: CandidateType }> = []
    for (const pc of made.filter(p => p.connectionState === 'connected')) {
      const stats = await pc.getStats()
      let pairId: string | undefined
      stats.forEach(s => { if (s.type === 'transport' && typeof s.selectedCandidatePairId === 'string') pairId = s.selectedCandidatePairId })
      const pair = pairId !== undefined ? stats.get(pairId) : undefined
      if (pair === undefined) continue
      const local = stats.get(pair.localCandidateId)?.candidateType
      const remote = stats.get(pair.remoteCandidateId)?.candidateType
      if (local !== undefined && remote !== undefined) paths.push({ local, remote })
    }
    return paths
  })
}
