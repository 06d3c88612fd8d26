import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, test } from '@playwright/test'
import { appUrl, statusOf, waitForNode } from './nodes.ts'
import { startRelayProcess, type RelayProcess } from './relay-process.ts'
import { serveCopyOfDist, type StaticSite } from './static-server.ts'

/**
 * Settings in a link (?network=, ?bootstrap=, ?round=, ?profile=) move a node to other relays or
 * another network, so the app shows them and starts the node only once the user has answered; and
 * the built app runs under its Content-Security-Policy without tripping it.
 */

let relay: RelayProcess
let site: StaticSite

test.beforeAll(async () => {
  relay = await startRelayProcess()
  // A deployment of its own: dev network, this relay.
  site = await serveCopyOfDist()
  writeFileSync(join(site.root, 'bootstrap.json'), JSON.stringify({ network: 'dev', bootstrap: [relay.addr] }))
})

test.afterAll(async () => {
  await site.close()
  await relay.stop()
})

test('a link\'s settings are shown first, and the node starts with them only once accepted; a reload does not ask again', async ({ browser }) => {
  const context = await browser.newContext()
  const page = await context.newPage()
  // vite preview's bootstrap.json is mainnet without relays; the link asks for dev and the test relay.
  await page.goto(appUrl([relay.addr]))
  const dialog = page.getByTestId('link-settings')
  await expect(dialog).toBeVisible()
  await expect(dialog.getByTestId('link-network')).toHaveText('dev instead of mainnet')
  await expect(dialog.getByTestId('link-relays')).toContainText(relay.addr)
  await expect(dialog.getByTestId('link-relays')).toContainText('instead of this site\'s 0')
  await expect(page.getByTestId('link-accept')).toBeFocused()
  // Nothing runs while the question is open.
  expect(await page.evaluate(() => window.hyperspace === undefined)).toBe(true)

  await page.getByTestId('link-accept').click()
  const status = await waitForNode(page)
  expect(status.networkId).toBe('dev')
  await expect.poll(async () => (await statusOf(page)).relays.map(r => [r.addr, r.connected])).toEqual([[relay.addr, true]])

  // Accepted settings are remembered for this browser profile.
  await page.reload()
  await waitForNode(page)
  await expect(dialog).toHaveCount(0)

  // Other settings are asked about again, all of them: what is weighed is the link against the site.
  await page.goto(appUrl([relay.addr], '&profile=storage'))
  await expect(dialog.getByTestId('link-profile')).toHaveText('storage for this visit')
  await expect(dialog.getByTestId('link-network')).toHaveText('dev instead of mainnet')
  await page.getByTestId('link-accept').click()
  expect((await waitForNode(page)).profile).toBe('storage')
  await context.close()
})

test('declined settings leave the node on the deployment\'s network and relays, and leave the address bar', async ({ browser }) => {
  const context = await browser.newContext()
  const page = await context.newPage()
  await page.goto(`${site.url}/?network=dev-elsewhere&round=6&bootstrap=`)
  const dialog = page.getByTestId('link-settings')
  await expect(dialog.getByTestId('link-network')).toHaveText('dev-elsewhere-t6 instead of dev')
  await expect(dialog.getByTestId('link-relays')).toContainText('none')
  await page.getByTestId('link-decline').click()

  const status = await waitForNode(page)
  expect(status.networkId).toBe('dev')
  await expect.poll(async () => (await statusOf(page)).relays.map(r => [r.addr, r.connected])).toEqual([[relay.addr, true]])
  expect(new URL(page.url()).search).toBe('')
  await context.close()
})

test('the built app runs under its Content-Security-Policy: the node, its workers and WebAssembly trip nothing, an injected script does not run', async ({ browser }) => {
  const context = await browser.newContext()
  // Every violation the page reports, from its first script on.
  await context.addInitScript(() => {
    const seen: string[] = []
    Object.assign(window, { cspViolations: seen })
    document.addEventListener('securitypolicyviolation', evt => { seen.push(`${evt.violatedDirective} ${evt.blockedURI}`) })
  })
  const violations = async (): Promise<string[]> => await page.evaluate(() => (window as unknown as { cspViolations: string[] }).cspViolations)
  const page = await context.newPage()
  await page.goto(appUrl([relay.addr]))
  const policy = await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content')
  expect(policy).toContain("script-src 'self' 'wasm-unsafe-eval'")
  await page.getByTestId('link-accept').click()
  await waitForNode(page)

  // The embedding model runs in ONNX Runtime's WebAssembly, in a worker; the prover in the pulse worker.
  await expect.poll(async () => (await statusOf(page)).capabilities.embedding.working, { timeout: 60_000 }).toBe(true)
  const dims = await page.evaluate(async () => (await window.hyperspace?.embed(['a text under a policy'], { route: 'local' }))?.dims)
  expect(dims).toBeGreaterThan(0)
  await page.evaluate(async () => { await navigator.serviceWorker.ready })
  expect(await violations()).toEqual([])

  // What the policy is for: a script injected into the page does not run.
  await page.evaluate(() => {
    const script = document.createElement('script')
    script.textContent = 'window.injected = true'
    document.body.append(script)
  })
  await expect.poll(violations).toEqual([expect.stringMatching(/^script-src/)])
  expect(await page.evaluate(() => (window as unknown as { injected?: boolean }).injected)).toBeUndefined()
  await context.close()
})
