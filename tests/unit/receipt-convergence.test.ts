import '../../src/relay/polyfills.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { JobQueue, PeerRateLimit } from '../../src/core/jobs/admission.ts'
import { sha256Of, utf8 } from '../../src/core/crypto/bytes.ts'
import { BadSignatureError, StaleReceiptError, UnsignedReceiptError } from '../../src/core/errors.ts'
import { countersign, encodeSignedReceipt, RECEIPT_MAX_AGE_ROUNDS, receiptId, signAsClient, type ReceiptBody, type SignedReceipt } from '../../src/core/receipts/receipt.ts'
import { pointsOf } from '../../src/core/receipts/work-points.ts'
import { systemScheduler } from '../../src/core/scheduler.ts'
import { EmbedService } from '../../src/net/embed-service.ts'
import { hyperspaceGossip } from '../../src/net/gossip.ts'
import { pulseSigner, verifyPulseSignature } from '../../src/net/pulse-keys.ts'
import { ReceiptGossip } from '../../src/net/receipt-gossip.ts'
import { ReceiptBook, type ReceiptLogStore } from '../../src/node/receipt-book.ts'
import { ReceiptKeeper } from '../../src/node/receipt-keeper.ts'
import { topicFor } from '../../src/core/wire/topics.ts'
import type { LogEntry } from '../../src/core/receipts/log.ts'
import type { PulseSigner } from '../../src/core/crypto/signing.ts'
import type { HyperspaceServices } from '../../src/net/services.ts'
import type { Libp2p } from '@libp2p/interface'
import { memoryLibp2p, connect, stopNodesAfter } from './memory-libp2p.ts'
import { rejectionOf, sleep, until } from './waiting.ts'

/**
 * A job whose client gives up after the server logged the countersigned receipt (a fault, a timeout
 * in the soak): real libp2p nodes (memory transport, GossipSub), the real EmbedService, ReceiptKeeper,
 * ReceiptBook and ReceiptGossip. The server holds the receipt at once; the client must end up
 * holding the same receipt exactly once, and neither side may count it twice.
 */

const NET = 'test-receipts'
const ROUND = 90_000
const MODEL = 'model2vec-64d'

class MemoryLog implements ReceiptLogStore {
  readonly entries: LogEntry[] = []
  page = async (_n: string, _p: string, from: number, limit: number): Promise<LogEntry[]> => this.entries.slice(from, from + limit)
  append = async (_n: string, _p: string, entry: LogEntry): Promise<void> => { this.entries.push(entry) }
}

interface TestNode {
  name: string
  signer: PulseSigner
  peerId: string
  libp2p: Libp2p<HyperspaceServices>
  log: MemoryLog
  book: ReceiptBook
  gossip: ReceiptGossip
  keeper: ReceiptKeeper
  service: EmbedService
  /** Runs after this node, as the server, logged a receipt and before it sends the countersign frame. */
  afterServerLogged: () => void
}

async function makeNode (name: string): Promise<TestNode> {
  const key = await generateKeyPair('Ed25519')
  const libp2p = await memoryLibp2p(name, { privateKey: key, services: { pubsub: hyperspaceGossip({ colocationPenalty: false }) } }) as unknown as Libp2p<HyperspaceServices>
  const signer = pulseSigner(key)
  const log = new MemoryLog()
  const book = new ReceiptBook(log, NET, signer.peerId)
  const gossip = new ReceiptGossip(libp2p, { networkId: NET, verify: verifyPulseSignature, currentRound: () => ROUND })
  const keeper = new ReceiptKeeper(book, gossip, { verify: verifyPulseSignature, currentRound: () => ROUND })
  const node: TestNode = { name, signer, peerId: signer.peerId, libp2p, log, book, gossip, keeper, afterServerLogged: () => {} } as unknown as TestNode
  node.service = new EmbedService(libp2p, {
    signer,
    verify: verifyPulseSignature,
    scheduler: systemScheduler,
    serves: model => model === MODEL,
    run: async texts => ({ dims: 2, vectors: texts.map(t => Float32Array.of(t.length, 1)) }),
    queue: new JobQueue(2, 2, name),
    rateLimit: new PeerRateLimit(600, 60),
    currentRound: () => ROUND,
    onReceipt: async receipt => {
      await keeper.keep(receipt)
      if (receipt.body.server === signer.peerId) node.afterServerLogged()
    }
  })
  return node
}

const held = (node: TestNode): string[] => node.book.recent(1000).map(r => r.id)

let server: TestNode
let client: TestNode
let bystander: TestNode

beforeAll(async () => {
  [server, client, bystander] = await Promise.all([makeNode('server'), makeNode('client'), makeNode('bystander')])
  await connect(client.libp2p, server.libp2p)
  await connect(bystander.libp2p, server.libp2p)
  await connect(bystander.libp2p, client.libp2p)
  for (const node of [server, client, bystander]) {
    await node.keeper.start()
    await node.service.start()
  }
  const topic = topicFor(NET, 'receipts')
  for (const node of [server, client, bystander]) {
    await until(() => node.libp2p.services.pubsub.getSubscribers(topic).length === 2, `${node.name} to see both others on the receipts topic`)
  }
}, 30_000)

afterAll(async () => {
  await stopNodesAfter([server, client, bystander], node => [node.service, node.keeper])
})

beforeEach(() => {
  for (const node of [server, client, bystander]) node.afterServerLogged = () => {}
})

/**
 * Embeds on `server` from `client`, the client giving up once the server has logged the receipt
 * (before the countersign frame is sent); returns the receipt's id, which the server holds.
 */
async function cutAfterServerLogged (): Promise<string> {
  const giveUp = new AbortController()
  server.afterServerLogged = () => { giveUp.abort(new Error('the client gave up')) }
  const before = new Set(held(server))
  const failure = await rejectionOf(client.service.request(server.peerId, MODEL, ['one', 'two'], { signal: giveUp.signal }))
  expect(failure).toBeInstanceOf(Error)
  const fresh = held(server).find(id => !before.has(id))
  expect(fresh, 'the server logged the receipt before the client gave up').toBeDefined()
  return fresh ?? ''
}

describe('a receipt whose client gave up after the server logged it', () => {
  it('reaches the client through receipt gossip, and is held once on each side', async () => {
    const id = await cutAfterServerLogged()
    await until(() => held(client).includes(id), 'the client to hold the receipt its call gave up on', 10_000)
    const onClient = client.book.recent(1000).filter(r => r.id === id)
    const onServer = server.book.recent(1000).filter(r => r.id === id)
    expect(onClient.map(r => r.role)).toEqual(['client'])
    expect(onServer.map(r => r.role)).toEqual(['server'])
    expect(onClient[0]?.units).toBe(onServer[0]?.units)
    expect(held(bystander)).not.toContain(id)
  })

  it('is counted once in the server\'s work points, and the client earns none for it', async () => {
    const serverWork = server.book.work(Date.now()).work
    const clientWork = client.book.work(Date.now()).work
    const serverEntries = server.log.entries.length
    const id = await cutAfterServerLogged()
    await until(() => held(client).includes(id), 'the client to hold the receipt', 10_000)
    const summary = server.book.recent(1000).find(r => r.id === id)
    expect(server.book.work(Date.now()).work).toBeCloseTo(serverWork + (summary?.points ?? Number.NaN), 12)
    expect(client.book.work(Date.now()).work).toBe(clientWork)
    // Settle: any late gossip copy has arrived by the time a second job's receipt has gone round.
    const done = await client.service.request(server.peerId, MODEL, ['three'])
    await until(() => held(client).includes(receiptId(done.receipt.body)) && held(server).includes(receiptId(done.receipt.body)), 'the second receipt on both sides')
    await sleep(200)
    expect(server.log.entries.length).toBe(serverEntries + 2)
    expect(held(server).filter(r => r === id)).toHaveLength(1)
    expect(held(client).filter(r => r === id)).toHaveLength(1)
  })
})

describe('a completed job', () => {
  it('leaves each side one copy, though each also hears the other publish it', async () => {
    const clientEntries = client.log.entries.length
    const serverEntries = server.log.entries.length
    const done = await client.service.request(server.peerId, MODEL, ['four', 'five'])
    const id = receiptId(done.receipt.body)
    await until(() => held(server).includes(id) && held(client).includes(id), 'the receipt on both sides')
    await sleep(300)
    expect(client.log.entries.length).toBe(clientEntries + 1)
    expect(server.log.entries.length).toBe(serverEntries + 1)
  })
})

function body (over: Partial<ReceiptBody>): ReceiptBody {
  const job = crypto.getRandomValues(new Uint8Array(16))
  return {
    job, nonce: crypto.getRandomValues(new Uint8Array(16)), kind: 'embedding', server: server.peerId, client: client.peerId,
    model: MODEL, units: 3, cached: false, output: sha256Of(utf8('out')), round: ROUND, ts: Date.now(), ...over
  }
}

describe('what a hostile peer gossips about a node', () => {
  it('plants no receipt between two other parties, however well signed', async () => {
    const receipt = await countersign(await signAsClient(body({ client: bystander.peerId }), bystander.signer), server.signer)
    const entries = client.log.entries.length
    await bystander.libp2p.services.pubsub.publish(topicFor(NET, 'receipts'), encodeSignedReceipt(receipt))
    await until(() => held(server).includes(receiptId(receipt.body)), 'the server, a party, to take it')
    await sleep(200)
    expect(client.log.entries.length).toBe(entries)
    expect(pointsOf(receipt.body)).toBeGreaterThan(0)
  })

  it('gets no signature checked for a copy it already saw: a replay costs its sender one GossipSub signature', async () => {
    let verified = 0
    const counting = new ReceiptGossip(server.libp2p, {
      networkId: NET, currentRound: () => ROUND, verify: async (...args) => { verified++; return await verifyPulseSignature(...args) }
    })
    const receipt = await countersign(await signAsClient(body({ client: bystander.peerId }), bystander.signer), server.signer)
    const message = { type: 'signed', data: encodeSignedReceipt(receipt) } as unknown as Parameters<ReceiptGossip['validate']>[1]
    expect(await counting.validate(bystander.libp2p.peerId, message)).toBe('accept')
    expect(verified).toBe(2)
    expect(await counting.validate(bystander.libp2p.peerId, message)).toBe('ignore')
    expect(verified).toBe(2)
  })
})

describe('ReceiptKeeper.adopt (what the keeper takes of a receipt heard from the network)', () => {
  let mallory: PulseSigner
  beforeAll(async () => { mallory = pulseSigner(await generateKeyPair('Ed25519')) })

  const full = async (over: Partial<ReceiptBody> = {}): Promise<SignedReceipt> => await countersign(await signAsClient(body(over), client.signer), server.signer)

  it('logs a fresh receipt naming this node once, and counts it once', async () => {
    const receipt = await full()
    const entries = server.log.entries.length
    const work = server.book.work(Date.now()).work
    expect(await server.keeper.adopt(receipt)).toBe(true)
    expect(await server.keeper.adopt(receipt)).toBe(false)
    await server.keeper.keep(receipt)
    expect(server.log.entries.length).toBe(entries + 1)
    expect(server.book.work(Date.now()).work).toBeCloseTo(work + pointsOf(receipt.body), 12)
  })

  it('refuses one whose countersignature is not the named server\'s', async () => {
    const signed = await signAsClient(body({}), client.signer)
    const forged = { ...signed, serverSig: (await countersign({ ...signed, body: { ...signed.body, server: mallory.peerId } }, mallory)).serverSig }
    const entries = client.log.entries.length
    await expect(client.keeper.adopt(forged)).rejects.toBeInstanceOf(BadSignatureError)
    expect(client.log.entries.length).toBe(entries)
  })

  it('refuses one that names this node as server but that it never countersigned', async () => {
    const planted = await signAsClient(body({ client: mallory.peerId }), mallory)
    const entries = server.log.entries.length
    await expect(server.keeper.adopt(planted)).rejects.toBeInstanceOf(UnsignedReceiptError)
    expect(server.log.entries.length).toBe(entries)
  })

  it('refuses a stale one, which no book remembers long enough to keep from counting twice', async () => {
    const stale = await full({ round: ROUND - RECEIPT_MAX_AGE_ROUNDS - 1 })
    await expect(client.keeper.adopt(stale)).rejects.toBeInstanceOf(StaleReceiptError)
    expect(client.book.has(receiptId(stale.body))).toBe(false)
  })

  it('leaves alone a receipt between two other nodes', async () => {
    const other = await countersign(await signAsClient(body({ client: mallory.peerId, server: bystander.peerId }), mallory), bystander.signer)
    expect(await client.keeper.adopt(other)).toBe(false)
  })

  it('logs the fields both parties signed, not the ones a forwarder put beside them', async () => {
    const receipt = await full({ units: 2 })
    const dressed = { ...receipt, body: { ...receipt.body, units: 64 } }
    expect(await client.keeper.adopt(dressed)).toBe(true)
    expect(client.book.recent(1000).find(r => r.id === receiptId(receipt.body))?.units).toBe(2)
  })
})

describe('ReceiptBook', () => {
  it('logs a receipt once, also after a reload from its store', async () => {
    const log = new MemoryLog()
    const book = new ReceiptBook(log, NET, server.peerId)
    const receipt = await countersign(await signAsClient(body({}), client.signer), server.signer)
    expect(await book.append(receipt)).toBe(true)
    expect(await book.append(receipt)).toBe(false)
    const reloaded = new ReceiptBook(log, NET, server.peerId)
    await reloaded.load()
    expect(reloaded.has(receiptId(receipt.body))).toBe(true)
    expect(await reloaded.append(receipt)).toBe(false)
    expect(log.entries).toHaveLength(1)
    expect(reloaded.work(Date.now()).work).toBeCloseTo(pointsOf(receipt.body), 12)
  })
})

describe('a receipt a node logs while no peer is on the receipts topic', () => {
  it('goes out when a peer joins, so the other party still gets its copy', async () => {
    const [lone, late] = await Promise.all([makeNode('lone'), makeNode('late')])
    try {
      await lone.keeper.start()
      await late.keeper.start()
      const receipt = await countersign(await signAsClient(body({ server: lone.peerId, client: late.peerId }), late.signer), lone.signer)
      await lone.keeper.keep(receipt)
      expect(held(lone)).toContain(receiptId(receipt.body))
      await connect(late.libp2p, lone.libp2p)
      await until(() => held(late).includes(receiptId(receipt.body)), 'the late peer to get its copy', 10_000)
      expect(late.log.entries).toHaveLength(1)
      expect(late.book.work(Date.now()).work).toBe(0)
    } finally {
      await stopNodesAfter([lone, late], node => [node.keeper])
    }
  })
})
