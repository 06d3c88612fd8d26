import { CONFIRMED_LINK_SETTINGS_KEY, linkSettingsKey, linkSettingsOf } from '../../src/core/config.ts'
import type { Browser, BrowserContext, Page } from '@playwright/test'
import type { NodeStatus, PeerInfo } from '../../src/node/api.ts'

export interface TestNode {
  context: BrowserContext
  page: Page
  peerId: string
}

export function appUrl (relayAddrs: string[], extra = ''): string {
  return `/?network=dev&bootstrap=${encodeURIComponent(relayAddrs.join(','))}${extra}`
}

/**
 * Opens the app at `url` (absolute, or relative to the test's baseURL). A link that carries settings
 * (?network=, ?bootstrap=, ?round=, ?profile=) is first shown to the user, and the node starts only
 * once they are accepted: this accepts them, as a user who trusts the link would. A page whose
 * browser profile already accepted the same settings is not asked again; use page.goto there.
 */
export async function gotoApp (page: Page, url: string): Promise<void> {
  await page.goto(url)
  if (linkSettingsOf(new URL(url, 'http://app.invalid').search) !== undefined) await page.getByTestId('link-accept').click()
}

/**
 * Accepts a link's settings in `context` before any page loads, as a user who confirmed them earlier
 * would have: a benchmark then times the node, not the confirmation dialog.
 */
export async function acceptLinkSettingsAhead (context: BrowserContext, url: string): Promise<void> {
  const settings = linkSettingsOf(new URL(url, 'http://app.invalid').search)
  if (settings === undefined) return
  await context.addInitScript(([key, value]) => { localStorage.setItem(key, value) }, [CONFIRMED_LINK_SETTINGS_KEY, linkSettingsKey(settings)] as const)
}

/** Waits until the page runs a node and returns its status. */
export async function waitForNode (page: Page): Promise<NodeStatus> {
  await page.waitForFunction(() => window.hyperspace !== undefined && window.hyperspace.status().peerId !== '', null, { timeout: 30_000 })
  return await page.evaluate(() => window.hyperspace?.status() as NodeStatus)
}

/** A node in its own browser context: its own IndexedDB, locks and identity, as a separate profile. */
export async function openNode (browser: Browser, relayAddrs: string[], extra = ''): Promise<TestNode> {
  return await openNodeAt(browser, appUrl(relayAddrs, extra))
}

/** openNode at any URL: absolute, or relative to the test's baseURL. */
export async function openNodeAt (browser: Browser, url: string): Promise<TestNode> {
  const context = await browser.newContext()
  // E2E_DEBUG=<libp2p debug namespaces> prints the page's console, with those libp2p logs on.
  const debug = process.env.E2E_DEBUG
  if (debug !== undefined) await context.addInitScript(namespaces => { localStorage.setItem('debug', namespaces) }, debug)
  const page = await context.newPage()
  page.on('pageerror', err => { console.error(`[page error] ${err.stack ?? err.message}`) })
  if (debug !== undefined) page.on('console', message => { console.log(`[${Date.now() % 100_000}] ${message.text()}`) })
  // Anything the Content-Security-Policy blocks shows in the test's output.
  page.on('console', message => { if (message.text().includes('Content Security Policy')) console.error(`[csp] ${message.text()}`) })
  await gotoApp(page, url)
  const status = await waitForNode(page)
  return { context, page, peerId: status.peerId }
}

export async function peersOf (page: Page): Promise<PeerInfo[]> {
  return await page.evaluate(() => window.hyperspace?.peers() ?? [])
}

export async function statusOf (page: Page): Promise<NodeStatus> {
  return await page.evaluate(() => window.hyperspace?.status() as NodeStatus)
}

/** Polls until every node has a direct WebRTC connection to every other. */
export async function waitForFullMesh (nodes: TestNode[], timeoutMs = 60_000): Promise<number> {
  const start = Date.now()
  while (Date.now() - start < timeoutMs) {
    const views = await Promise.all(nodes.map(async n => await peersOf(n.page)))
    const meshed = nodes.every((node, i) => nodes.every(other => other === node ||
      views[i]?.some(p => p.peerId === other.peerId && p.transport === 'webrtc') === true))
    if (meshed) return Date.now() - start
    await new Promise(resolve => setTimeout(resolve, 250))
  }
  const views = await Promise.all(nodes.map(async n => await peersOf(n.page)))
  throw new Error(`no full WebRTC mesh after ${timeoutMs} ms: ${JSON.stringify(views.map(v => v.map(p => [p.peerId.slice(-6), p.transport])))}`)
}
