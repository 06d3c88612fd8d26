import { createHash } from 'node:crypto'
import { createServer, type Server } from 'node:https'
import { chromium, expect, test, type Browser, type Page } from '@playwright/test'
import { APP_PORT, TEST_CHROMIUM_ARGS, CHROMIUM_PATH } from '../../playwright.config.ts'
import { makeTestCertificates, type TestCertificates } from '../test-certificates.ts'
import { appUrl, openNodeAt, peersOf, statusOf, waitForFullMesh, type TestNode } from './nodes.ts'
import { startRelayProcess, type RelayProcess } from './relay-process.ts'

/**
 * The proxy capability (issue 18): page B fetches, through page A, a page that this test serves over
 * https on 127.0.0.1 (a dev network allows loopback targets; the app's Content-Security-Policy lets
 * pages reach https only). Chromium trusts the test's certificate by its key's hash and does a real
 * TLS handshake. A target that sends no CORS headers cannot be read by A, and B gets a named error.
 */

let certs: TestCertificates
let relay: RelayProcess
let browser: Browser
let target: Server
let targetUrl: string
let a: TestNode
let b: TestNode
const requests: Array<{ path: string, cookie?: string, authorization?: string, origin?: string }> = []
const PAGE = `<!doctype html><title>proxied</title><p>${'hello through a peer '.repeat(200)}</p>`

test.describe.configure({ mode: 'serial' })

test.beforeAll(async () => {
  certs = makeTestCertificates()
  target = createServer({ cert: certs.cert, key: certs.key }, (req, res) => {
    requests.push({ path: req.url ?? '', ...(req.headers.cookie !== undefined ? { cookie: req.headers.cookie } : {}), ...(req.headers.authorization !== undefined ? { authorization: req.headers.authorization } : {}), ...(req.headers.origin !== undefined ? { origin: req.headers.origin } : {}) })
    if (req.url === '/page') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Access-Control-Allow-Origin': '*', 'Set-Cookie': 'tracker=1' }).end(PAGE)
    } else if (req.url === '/no-cors') {
      res.writeHead(200, { 'Content-Type': 'text/html' }).end('<p>not for other origins</p>')
    } else {
      res.writeHead(404, { 'Access-Control-Allow-Origin': '*' }).end()
    }
  })
  await new Promise<void>(done => target.listen(0, '127.0.0.1', done))
  const address = target.address()
  targetUrl = `https://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`
  relay = await startRelayProcess()
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: [...TEST_CHROMIUM_ARGS, `--ignore-certificate-errors-spki-list=${certs.spkiSha256}`] })
  const url = `http://127.0.0.1:${APP_PORT}${appUrl([relay.addr], '&profile=storage')}`
  ;[a, b] = await Promise.all([openNodeAt(browser, url), openNodeAt(browser, url)])
  await waitForFullMesh([a, b])
})

test.afterAll(async () => {
  await Promise.all([a, b].map(async n => { await n?.context.close().catch(() => {}) }))
  await browser?.close()
  await relay?.stop()
  target?.closeAllConnections()
  await new Promise<void>(done => { if (target === undefined) done(); else target.close(() => { done() }) })
})

interface Fetched { status?: number, text?: string, bytes?: number, servedBy?: string, receipt?: string, headers?: Record<string, string>, name?: string, code?: string }

async function proxyFetch (page: Page, url: string): Promise<Fetched> {
  return await page.evaluate(async u => {
    const node = window.hyperspace
    if (node === undefined) throw new Error('no node')
    try {
      const r = await node.proxy.fetch(u)
      return { status: r.status, text: new TextDecoder().decode(r.body), bytes: r.body.byteLength, servedBy: r.servedBy, ...(r.receipt !== undefined ? { receipt: r.receipt } : {}), headers: r.headers }
    } catch (err) {
      return { name: (err as Error).name, code: (err as { code?: string }).code ?? '' }
    }
  }, url)
}

test('proxy is off until the user turns it on, then works and is announced', async () => {
  expect((await statusOf(a.page)).capabilities.proxy).toEqual({ enabled: false, available: true, working: false })
  await a.page.getByTestId('proxy-switch').check()
  await expect.poll(async () => (await statusOf(a.page)).capabilities.proxy).toEqual({ enabled: true, available: true, working: true })
  await expect.poll(async () => (await peersOf(b.page)).find(p => p.peerId === a.peerId)?.working ?? []).toContain('proxy')
  expect((await statusOf(b.page)).capabilities.proxy.enabled).toBe(false)
})

test('B fetches a CORS-readable page through A: the bytes, who served it, and a receipt on both sides', async () => {
  const got = await proxyFetch(b.page, `${targetUrl}/page`)
  expect(got.code).toBeUndefined()
  expect(got.status).toBe(200)
  expect(got.text).toBe(PAGE)
  expect(got.bytes).toBe(Buffer.byteLength(PAGE))
  expect(got.servedBy).toBe(a.peerId)
  expect(got.headers?.['content-type']).toBe('text/html; charset=utf-8')
  expect(got.headers?.['set-cookie']).toBeUndefined()
  const request = requests.find(r => r.path === '/page')
  expect(request?.cookie).toBeUndefined()
  expect(request?.authorization).toBeUndefined()
  expect(request?.origin).toBe(`http://127.0.0.1:${APP_PORT}`)

  const job = got.receipt ?? ''
  expect(job).toMatch(/^[0-9a-f]{32}$/)
  const receiptOn = async (page: Page): Promise<unknown> => await page.evaluate(id => window.hyperspace?.receipts.recent(20).find(r => r.id.startsWith(id)), job)
  await expect.poll(async () => await receiptOn(a.page)).toMatchObject({ kind: 'proxy', role: 'server', peer: b.peerId, model: 'GET', units: Buffer.byteLength(PAGE) })
  await expect.poll(async () => await receiptOn(b.page)).toMatchObject({ kind: 'proxy', role: 'client', peer: a.peerId, units: Buffer.byteLength(PAGE), points: 0 })
  const points = await a.page.evaluate(() => window.hyperspace?.receipts.recent(20).find(r => r.kind === 'proxy')?.points ?? 0)
  expect(points).toBeCloseTo(Buffer.byteLength(PAGE) / (100 * 1024 * 1024), 12)
  expect(createHash('sha256').update(got.text ?? '').digest('hex')).toBe(createHash('sha256').update(PAGE).digest('hex'))

  // A's Proxy panel lists what it fetched for whom.
  const row = a.page.getByTestId('proxy-served-row').first()
  await expect(row).toContainText(b.peerId.slice(0, 8))
  await expect(row).toContainText('127.0.0.1')
  await expect(row).toContainText('200')
})

test('a page that does not allow CORS reads gives a named error, and nobody fails over to fetch it again', async () => {
  const before = requests.filter(r => r.path === '/no-cors').length
  const got = await proxyFetch(b.page, `${targetUrl}/no-cors`)
  expect(got).toEqual({ name: 'ProxyUnreadableError', code: 'ERR_PROXY_UNREADABLE' })
  expect(requests.filter(r => r.path === '/no-cors').length - before).toBe(1)
  await expect(a.page.getByTestId('proxy-served-row').first()).toContainText('unreadable')
})

test('refusals are named before anything is sent: not https, credentials, a private address', async () => {
  expect(await proxyFetch(b.page, 'ftp://example.com/')).toEqual({ name: 'ProxySchemeError', code: 'ERR_PROXY_SCHEME' })
  expect(await proxyFetch(b.page, 'https://user:secret@example.com/')).toEqual({ name: 'ProxyCredentialsError', code: 'ERR_PROXY_CREDENTIALS' })
  expect(await proxyFetch(b.page, 'https://192.168.1.1/')).toEqual({ name: 'ProxyPrivateTargetError', code: 'ERR_PROXY_PRIVATE_TARGET' })
})

test('the switch stops the proxy at once', async () => {
  await a.page.getByTestId('proxy-switch').uncheck()
  await expect.poll(async () => (await statusOf(a.page)).capabilities.proxy.enabled).toBe(false)
  const got = await proxyFetch(b.page, `${targetUrl}/page`)
  expect(['ERR_PROXY_OFF', 'ERR_NO_PROVIDER']).toContain(got.code)
})
