import { appendFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, test } from '@playwright/test'
import { appUrl, gotoApp, waitForNode } from './nodes.ts'
import { startRelayProcess, type RelayProcess } from './relay-process.ts'
import { serveCopyOfDist } from './static-server.ts'

let relay: RelayProcess

test.beforeAll(async () => { relay = await startRelayProcess() })
test.afterAll(async () => { await relay.stop() })

test('the service worker serves the app shell offline and the app says it is offline', async ({ browser }) => {
  const context = await browser.newContext()
  const page = await context.newPage()
  await gotoApp(page, appUrl([relay.addr]))
  await waitForNode(page)
  await page.evaluate(async () => { await navigator.serviceWorker.ready })
  // Installed: a reload is now answered through the worker.
  await page.reload()
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null)
  const manifest = await page.evaluate(async () => await (await fetch('/manifest.webmanifest')).json() as { name: string, icons: unknown[] })
  expect(manifest.name).toBe('Hyperspace node')
  expect(manifest.icons.length).toBeGreaterThanOrEqual(2)

  await context.setOffline(true)
  await page.reload()
  await expect(page.getByTestId('offline-banner')).toContainText('You are offline')
  await expect(page.getByTestId('connection-state')).toHaveText('offline')
  // The node itself still starts from IndexedDB, with the identity it had.
  await waitForNode(page)

  await context.setOffline(false)
  await expect(page.getByTestId('offline-banner')).toBeHidden()
  await expect(page.getByTestId('connection-state')).toHaveText('online')
  await context.close()
})

test('a new deployment shows an update prompt, and Reload switches to it, even while the page is fetching', async ({ browser }) => {
  const site = await serveCopyOfDist()
  const context = await browser.newContext({ baseURL: site.url })
  const page = await context.newPage()
  await gotoApp(page, appUrl([relay.addr]))
  await waitForNode(page)
  await page.evaluate(async () => { await navigator.serviceWorker.ready })
  await expect(page.getByTestId('update-prompt')).toBeHidden()

  // A new version: the service worker script changes, as every build's precache manifest does.
  appendFileSync(join(site.root, 'sw.js'), '\n// next deployment\n')
  await page.reload()
  await expect(page.getByTestId('update-prompt')).toContainText('A new version is available')
  // A busy page: its fetches keep reaching the old worker while the new one takes over, which can leave
  // Chromium's skipWaiting pending (a lazy chunk loading at the click did so in CI).
  await page.evaluate(() => {
    const until = Date.now() + 3000
    const timer = setInterval(() => { if (Date.now() > until) clearInterval(timer); void fetch('/icon.svg').catch(() => {}) }, 5)
  })
  await Promise.all([
    page.waitForEvent('load'),
    page.getByTestId('update-prompt').getByRole('button', { name: 'Reload' }).click()
  ])
  await waitForNode(page)
  await expect(page.getByTestId('update-prompt')).toBeHidden()
  await expect.poll(async () => await page.evaluate(async () => (await navigator.serviceWorker.getRegistration())?.waiting ?? null)).toBeNull()
  await context.close()
  await site.close()
})
