import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { chromium, expect, test, type Browser } from '@playwright/test'
import { TEST_CHROMIUM_ARGS, CHROMIUM_PATH } from '../../playwright.config.ts'
import { makeTestCertificates, type TestCertificates } from '../test-certificates.ts'
import { openNodeAt, peersOf, statusOf, waitForFullMesh, type TestNode } from './nodes.ts'
import { startRelayProcess, type RelayProcess } from './relay-process.ts'
import { serveCopyOfDist, type StaticSite } from './static-server.ts'

/**
 * The production path rather than `vite preview`: dist/ on a plain static https host with the host's
 * own bootstrap.json (the page gets no URL settings at all), and a relay that speaks wss itself. One
 * host sends COOP/COEP, the other cannot; both pages must work, and the second must say why its
 * threads are off. Chromium trusts only the test's certificate (by its key's hash) and still does a
 * full TLS handshake with both the host and the relay.
 *
 * The network stays `dev`: every other network refuses loopback addresses, and 127.0.0.1 is the only
 * address a test may use. What differs from the other tests is the transport: https pages, which
 * cannot open ws://, reaching a /tls/ws relay.
 */

let certs: TestCertificates
let relay: RelayProcess
const sites: StaticSite[] = []
let browser: Browser
let nodes: TestNode[] = []

async function deploySite (crossOriginIsolation: boolean): Promise<StaticSite> {
  const site = await serveCopyOfDist({ tls: { cert: certs.cert, key: certs.key }, crossOriginIsolation })
  sites.push(site)
  writeFileSync(join(site.root, 'bootstrap.json'), JSON.stringify({ network: 'dev', bootstrap: [relay.addr], iceServers: [] }))
  return site
}

test.beforeAll(async () => {
  certs = makeTestCertificates()
  relay = await startRelayProcess({ tls: { certFile: certs.certFile, keyFile: certs.keyFile } })
  browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [...TEST_CHROMIUM_ARGS, `--ignore-certificate-errors-spki-list=${certs.spkiSha256}`]
  })
})

test.afterAll(async () => {
  await Promise.all(nodes.map(async n => { await n.context.close() }))
  await browser?.close()
  await Promise.all(sites.map(async s => { await s.close() }))
  await relay?.stop()
})

test('two pages from a static https host go online through a wss relay and connect directly over WebRTC', async () => {
  expect(relay.addr).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/tls\/ws\/p2p\/12D3KooW\w+$/)
  const isolatedSite = await deploySite(true)
  const plainSite = await deploySite(false)
  nodes = [await openNodeAt(browser, `${isolatedSite.url}/`), await openNodeAt(browser, `${plainSite.url}/`)]
  const [isolated, plain] = nodes as [TestNode, TestNode]

  for (const node of nodes) {
    expect(await node.page.evaluate(() => [location.protocol, isSecureContext])).toEqual(['https:', true])
    // The relay list came from the host's bootstrap.json, and the relay was reached over TLS.
    await expect.poll(async () => {
      const status = await statusOf(node.page)
      return [status.networkId, status.relays.map(r => [r.addr, r.reserved])]
    }).toEqual(['dev', [[relay.addr, true]]])
    await expect.poll(async () => (await peersOf(node.page)).find(p => p.peerId === relay.peerId)?.remoteAddr).toContain('/tls/ws')
    // The app shell installs: the service worker registered over the test's TLS like any other script.
    await node.page.evaluate(async () => { await navigator.serviceWorker.ready })
  }
  await waitForFullMesh(nodes)

  // Threads need cross-origin isolation; the page without it works and says why its threads are off.
  expect(await isolated.page.evaluate(() => crossOriginIsolated)).toBe(true)
  await expect(isolated.page.getByTestId('wasm-threads')).toHaveAttribute('data-threads', 'on')
  expect(await plain.page.evaluate(() => crossOriginIsolated)).toBe(false)
  await expect(plain.page.getByTestId('wasm-threads')).toHaveAttribute('data-threads', 'off')
  await expect(plain.page.getByTestId('wasm-threads')).toContainText('crossOriginIsolated === false')
})
