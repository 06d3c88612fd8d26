import '../../src/relay/polyfills.ts'
import { createServer, type Server } from 'node:http'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { type Libp2p } from 'libp2p'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { PeerBusyError } from '../../src/core/errors.ts'
import { ProxyHostRefusedError, ProxyOffError, ProxyPrivateTargetError, ProxyRedirectError, ProxyTooLargeError } from '../../src/core/proxy/errors.ts'
import { JobQueue, PeerRateLimit } from '../../src/core/jobs/admission.ts'
import { sha256Of, toHex } from '../../src/core/crypto/bytes.ts'
import { NO_HOST_LISTS, type ProxyHostLists } from '../../src/core/proxy/host-list.ts'
import { systemScheduler } from '../../src/core/scheduler.ts'
import { ProxyService, type ServedFetch } from '../../src/net/proxy-service.ts'
import { pulseSigner, verifyPulseSignature } from '../../src/net/pulse-keys.ts'
import { FetchProxyFetcher } from '../../src/node/proxy-fetcher.ts'
import type { SignedReceipt } from '../../src/core/receipts/receipt.ts'
import { rejectionOf, until } from './waiting.ts'
import { memoryLibp2p, startAround, stopNodes } from './memory-libp2p.ts'

/**
 * Real libp2p nodes in one process (memory transport, noise, yamux) running the real ProxyService
 * and fetcher against an HTTP server on 127.0.0.1: the proxy's node is on a dev network, where
 * loopback targets are allowed.
 */

const ROUND = 70_000
const BURST = 6

interface TestNode {
  peerId: string
  libp2p: Libp2p
  service: ProxyService
  receipts: SignedReceipt[]
  served: ServedFetch[]
  serving: boolean
  dev: boolean
  hosts: ProxyHostLists
}

async function makeNode (name: string): Promise<TestNode> {
  const key = await generateKeyPair('Ed25519')
  const libp2p = await memoryLibp2p(name, { privateKey: key })
  const signer = pulseSigner(key)
  const node = { peerId: signer.peerId, libp2p, receipts: [], served: [], serving: true, dev: true, hosts: NO_HOST_LISTS } as unknown as TestNode
  node.service = new ProxyService(libp2p, {
    signer,
    verify: verifyPulseSignature,
    scheduler: systemScheduler,
    serving: () => node.serving,
    policy: () => ({ allowLoopback: node.dev, hosts: node.hosts }),
    fetcher: new FetchProxyFetcher(),
    queue: new JobQueue(2, 2, name),
    rateLimit: new PeerRateLimit(60, BURST),
    currentRound: () => ROUND,
    onReceipt: async receipt => { node.receipts.push(receipt) },
    onServed: entry => { node.served.push(entry) }
  })
  return node
}

let a: TestNode // proxies
let b: TestNode // asks
let server: Server
let origin: string
const PAGE = new TextEncoder().encode('<!doctype html><title>hello through a proxy</title>')

beforeAll(async () => {
  server = createServer((req, res) => {
    const path = req.url ?? '/'
    if (req.headers.cookie !== undefined || req.headers.authorization !== undefined) { res.writeHead(400).end('credentials were sent'); return }
    if (path === '/page') res.writeHead(200, { 'Content-Type': 'text/html', 'Access-Control-Allow-Origin': '*', 'X-Secret': 'kept' }).end(PAGE)
    else if (path === '/big') res.writeHead(200, { 'Content-Type': 'application/octet-stream' }).end(new Uint8Array(64 * 1024))
    else if (path === '/moved') res.writeHead(302, { Location: 'http://10.0.0.1/' }).end()
    else if (path === '/slow') setTimeout(() => { res.writeHead(200).end('late') }, 3_000)
    else res.writeHead(404).end('missing')
  })
  await new Promise<void>(done => server.listen(0, '127.0.0.1', done))
  const address = server.address()
  origin = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`
  ;[a, b] = await Promise.all([makeNode('a'), makeNode('b')])
  await startAround(a, [b])
}, 20_000)

afterAll(async () => {
  await stopNodes([a, b])
  server.closeAllConnections()
  await new Promise<void>(done => server.close(() => { done() }))
})

beforeEach(() => {
  for (const node of [a, b]) {
    node.receipts.length = 0
    node.served.length = 0
    node.serving = true
    node.dev = true
    node.hosts = NO_HOST_LISTS
  }
})

const url = (path: string): URL => new URL(origin + path)

describe('proxy over libp2p', () => {
  it('fetches for a peer: status, headers and body come back, and both sides hold the countersigned receipt', async () => {
    const response = await b.service.request(a.peerId, url('/page'), 'GET', 1024 * 1024)
    expect(response.status).toBe(200)
    expect(new TextDecoder().decode(response.body)).toContain('hello through a proxy')
    expect(response.headers).toContainEqual(['content-type', 'text/html'])
    expect(response.receipt?.body).toMatchObject({ kind: 'proxy', server: a.peerId, client: b.peerId, model: 'GET', units: PAGE.byteLength, cached: false })
    expect(toHex(response.receipt?.body.output ?? new Uint8Array())).toBe(toHex(sha256Of(PAGE)))
    await until(() => a.receipts.length === 1, 'the proxy\'s receipt')
    expect(a.receipts[0]?.serverSig).toBeDefined()
    expect(b.receipts).toHaveLength(1)
    expect(a.served).toEqual([expect.objectContaining({ peer: b.peerId, host: '127.0.0.1', method: 'GET', outcome: 200, bytes: PAGE.byteLength })])
  })

  it('HEAD brings no body, and an HTTP error status is an answer, not a failure', async () => {
    const head = await b.service.request(a.peerId, url('/page'), 'HEAD', 1024)
    expect(head.status).toBe(200)
    expect(head.body.byteLength).toBe(0)
    const missing = await b.service.request(a.peerId, url('/missing'), 'GET', 1024)
    expect(missing.status).toBe(404)
  })

  it('refuses a loopback target on a public network, and every refusal is a named error logged with its code', async () => {
    a.dev = false
    const err = await rejectionOf(b.service.request(a.peerId, url('/page'), 'GET', 1024))
    expect(err).toBeInstanceOf(ProxyPrivateTargetError)
    expect(a.served[0]).toMatchObject({ host: '127.0.0.1', outcome: 'ERR_PROXY_PRIVATE_TARGET', bytes: 0 })
    expect(a.receipts).toHaveLength(0)
  })

  it('refuses hosts its user denies', async () => {
    a.hosts = { allow: [], deny: ['127.0.0.1'] }
    expect(await rejectionOf(b.service.request(a.peerId, url('/page'), 'GET', 1024))).toBeInstanceOf(ProxyHostRefusedError)
  })

  it('refuses when its proxy is off', async () => {
    a.serving = false
    expect(await rejectionOf(b.service.request(a.peerId, url('/page'), 'GET', 1024))).toBeInstanceOf(ProxyOffError)
  })

  it('stops reading past the size asked for, and does not follow redirects', async () => {
    expect(await rejectionOf(b.service.request(a.peerId, url('/big'), 'GET', 1000))).toBeInstanceOf(ProxyTooLargeError)
    expect(await rejectionOf(b.service.request(a.peerId, url('/moved'), 'GET', 1000))).toBeInstanceOf(ProxyRedirectError)
  })

  it('switching the proxy off stops a fetch in flight at once', async () => {
    const pending = rejectionOf(b.service.request(a.peerId, url('/slow'), 'GET', 1000))
    await new Promise(resolve => setTimeout(resolve, 300))
    const started = Date.now()
    a.serving = false
    a.service.abortAll()
    expect(await pending).toBeInstanceOf(ProxyOffError)
    expect(Date.now() - started).toBeLessThan(1_500)
    expect(a.served[0]).toMatchObject({ outcome: 'ERR_PROXY_OFF' })
  })

  it('answers busy once a peer has used its burst', async () => {
    const results = await Promise.allSettled(Array.from({ length: BURST + 2 }, async () => await b.service.request(a.peerId, url('/page'), 'HEAD', 0)))
    const busy = results.filter(r => r.status === 'rejected' && r.reason instanceof PeerBusyError)
    expect(busy.length).toBeGreaterThanOrEqual(1)
  })
})
