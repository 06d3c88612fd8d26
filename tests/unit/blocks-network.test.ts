import '../../src/relay/polyfills.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import { encode } from 'cborg'
import { type Libp2p } from 'libp2p'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { BLOCK_MAX_BYTES, cidForBlock, parseBlockCid, verifyBlock } from '../../src/core/blocks/cid.ts'
import { chunkFile, decodeManifest } from '../../src/core/blocks/file.ts'
import { BlockNotFoundError, BlockStoreFullError, PeerLacksBlockError, RemoteBlockError } from '../../src/core/blocks/errors.ts'
import {
  BLOCKS_CLIENT_FRAME_MAX_BYTES, BLOCKS_PIPELINED_PROTOCOL, BLOCKS_PROTOCOL, BLOCKS_REQUESTS_PER_STREAM, BLOCKS_SERVER_FRAME_MAX_BYTES, decodeBlocksClientFrame, decodeBlocksServerFrame, encodeBlocksClientFrame, BLOCKS_JOB_FRAMES
} from '../../src/core/wire/blocks.ts'
import { MalformedMessageError, OversizeMessageError, UnsupportedVersionError } from '../../src/core/errors.ts'
import { equalBytes, utf8 } from '../../src/core/crypto/bytes.ts'
import { systemScheduler } from '../../src/core/scheduler.ts'
import { pulseSigner, verifyPulseSignature } from '../../src/net/pulse-keys.ts'
import { BlockCoordinator } from '../../src/node/block-coordinator.ts'
import { BlockStore } from '../../src/storage/block-store.ts'
import { closeAll, openDb } from './helpers.ts'
import { sleep, until } from './waiting.ts'
import type { BlockProgress } from '../../src/core/progress.ts'
import { BLOCK_TRANSFER_FLOOR, type TransferFloor } from '../../src/core/jobs/transfer-floor.ts'
import { decodeSignedReceipt, encodeSignedReceipt, signAsClient, type SignedReceipt } from '../../src/core/receipts/receipt.ts'
import { storageReceiptBody } from '../../src/net/block-session.ts'
import type { HyperspaceDb } from '../../src/storage/database.ts'
import type { PrivateKey, Stream } from '@libp2p/interface'
import { connect, memoryLibp2p } from './memory-libp2p.ts'

const { encodeServer: encodeBlocksServerFrame } = BLOCKS_JOB_FRAMES

/**
 * Real libp2p nodes in one process (memory transport, noise, yamux) running the real BlockCoordinator,
 * BlockService and BlockStore (fake-indexeddb). There is no DHT here: providers come from the fallback
 * tier (connected storage peers); the DHT tier runs in the end-to-end test against a relay.
 */

const ROUND = 70_000
const QUOTA = 16 * 1024 * 1024

interface TestNode {
  peerId: string
  libp2p: Libp2p
  db: HyperspaceDb
  store: BlockStore
  blocks: BlockCoordinator
  receipts: SignedReceipt[]
  invalid: Array<{ peerId: string, reason: string }>
  serving: boolean
}

async function makeLibp2p (name: string, privateKey?: PrivateKey): Promise<Libp2p> {
  return await memoryLibp2p(name, { privateKey })
}

async function makeNode (name: string, quota = QUOTA, transferFloor?: TransferFloor): Promise<TestNode> {
  const key = await generateKeyPair('Ed25519')
  const libp2p = await makeLibp2p(name, key)
  const db = await openDb()
  const store = new BlockStore(db, quota)
  const signer = pulseSigner(key)
  const node = { peerId: libp2p.peerId.toString(), libp2p, db, store, receipts: [], invalid: [], serving: true } as unknown as TestNode
  node.blocks = new BlockCoordinator(libp2p, {
    store,
    scheduler: systemScheduler,
    signer,
    verify: verifyPulseSignature,
    serving: () => node.serving,
    // Every connected peer but the raw test peer counts as a storage peer.
    storagePeers: () => libp2p.getPeers().map(p => p.toString()).filter(id => id !== evil?.peerId.toString()),
    currentRound: () => ROUND,
    receipts: { keep: async receipt => { node.receipts.push(receipt) } },
    onInvalid: (peerId, reason) => { node.invalid.push({ peerId, reason }) },
    ...(transferFloor !== undefined ? { transferFloor } : {})
  })
  await node.blocks.start()
  return node
}

function randomBytes (n: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i += 65_536) crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65_536)))
  return out
}

/** Byte for byte, without vitest's element-wise diffing (seconds for a MiB). */
function expectSame (actual: Uint8Array | undefined, expected: Uint8Array): void {
  expect(actual?.byteLength).toBe(expected.byteLength)
  expect(actual !== undefined && equalBytes(actual, expected)).toBe(true)
}

/** `bytes` behind its unsigned-varint length: the frame a length-prefixed stream reads. */
function lengthPrefixed (bytes: Uint8Array): Uint8Array {
  const prefix: number[] = []
  let n = bytes.byteLength
  for (; n >= 0x80; n >>>= 7) prefix.push((n & 0x7f) | 0x80)
  prefix.push(n)
  const out = new Uint8Array(prefix.length + bytes.byteLength)
  out.set(prefix)
  out.set(bytes, prefix.length)
  return out
}

/** The promise's value, or a failure naming `what` once `ms` pass first. */
async function within<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const late = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`${what} took longer than ${ms} ms`)) }, ms) })
  try {
    return await Promise.race([promise, late])
  } finally {
    clearTimeout(timer)
  }
}

/** What a trickling provider did with the blocks it was asked for. */
interface Trickles {
  asked: number
  /** Ended by the client before the last byte went out. */
  cut: number
  finished: number
}

/**
 * A bare blocks handler (1.1.0, or 1.0.0 with one want a stream) holding `blocks`: it answers a want
 * for `fast` at once and sends any other block it holds over `trickleMs`, a piece every 100 ms, in
 * want order. It never countersigns (the getter's receipt step is no concern here).
 */
async function serveTrickling (stream: Stream, blocks: Map<string, Uint8Array>, fast: string, trickleMs: number, trickles: Trickles): Promise<void> {
  const lp = lpStream(stream, { maxDataLength: BLOCKS_CLIENT_FRAME_MAX_BYTES })
  for (;;) {
    const want = decodeBlocksClientFrame((await lp.read()).subarray())
    if (want.t !== 'want') return
    const bytes = blocks.get(want.cid.toString())
    const answer = encodeBlocksServerFrame(bytes === undefined ? { t: 'not-found' } : { t: 'block', nonce: new Uint8Array(16), bytes })
    if (bytes === undefined || want.cid.toString() === fast) {
      await lp.write(answer)
      continue
    }
    trickles.asked++
    const frame = lengthPrefixed(answer)
    const piece = Math.ceil(frame.byteLength / (trickleMs / 100))
    try {
      for (let sent = 0; sent < frame.byteLength; sent += piece) {
        if (stream.status !== 'open') throw new Error('the client ended the stream')
        if (!stream.send(frame.subarray(sent, sent + piece))) await stream.onDrain()
        await sleep(100)
      }
    } catch {
      trickles.cut++
      return
    }
    trickles.finished++
  }
}

/**
 * The get returned before the trickler had sent a whole chunk, and the chunk is then read to its end in
 * the background, for its receipt: the trickler is above the floor, and answers cannot be taken back.
 */
async function expectReadToItsEndAfterTheGet (getter: TestNode, trickles: Trickles): Promise<void> {
  expect(trickles.asked).toBeGreaterThanOrEqual(1)
  expect(trickles.finished).toBe(0)
  await until(() => trickles.finished >= 1, "the trickler's chunk read to its end", 20_000)
  expect(trickles.cut).toBe(0)
  expect(getter.invalid).toEqual([])
}

/** A getter with a floor of its own, if given; an honest holder of a 4-chunk file; and a trickling peer holding its manifest too. */
interface SlowManifestScene {
  getter: TestNode
  cid: string
  bytes: Uint8Array
  trickles: Trickles
}

/**
 * Runs `test` where only a trickling peer (serveTrickling, `trickleMs` a chunk on `protocol`) holds a
 * 4-chunk file's manifest, so it is the get's preferred peer for every chunk, and an honest holder has
 * the chunks; stops every node after.
 */
async function withSlowManifestPeer (o: { protocol: string, trickleMs: number, floor?: TransferFloor }, test: (scene: SlowManifestScene) => Promise<void>): Promise<void> {
  const [honest, getter] = await Promise.all([makeNode('honest', 64 * 1024 * 1024), makeNode('getter', 64 * 1024 * 1024, o.floor)])
  const trickler = await makeLibp2p('trickler')
  try {
    const bytes = randomBytes(4 * BLOCK_MAX_BYTES)
    const file = await chunkFile(bytes)
    const cid = await honest.blocks.put(bytes)
    await honest.store.delete(parseBlockCid(cid))
    const held = new Map([file.manifest, ...file.blocks].map(block => [block.cid.toString(), block.bytes]))
    const trickles: Trickles = { asked: 0, cut: 0, finished: 0 }
    await trickler.handle(o.protocol, stream => { serveTrickling(stream, held, cid, o.trickleMs, trickles).catch(() => {}) })
    await connect(getter.libp2p, honest.libp2p)
    await connect(getter.libp2p, trickler)
    await test({ getter, cid, bytes, trickles })
  } finally {
    for (const node of [honest, getter]) {
      await node.blocks.stop()
      await node.libp2p.stop()
    }
    await trickler.stop()
  }
}

/** Rewrites a stored block's bytes behind the store's back: what a broken disk or a dishonest node serves. */
async function corrupt (node: TestNode, cid: string): Promise<void> {
  const stored = await node.db.get('blocks', cid)
  if (stored === undefined) throw new Error(`${cid} is not stored`)
  const bytes = stored.bytes.slice()
  bytes[0] = (bytes[0] as number) ^ 0xff
  await node.db.put('blocks', { ...stored, bytes })
}

let a: TestNode
let b: TestNode
let c: TestNode
/** A peer that speaks the protocol wrongly, with a handler each test sets. */
let evil: Libp2p | undefined
let evilKey: PrivateKey | undefined
let evilHandler: (stream: Stream) => Promise<void> = async () => {}

beforeAll(async () => {
  [a, b, c] = await Promise.all([makeNode('a'), makeNode('b'), makeNode('c')])
  // Providers that wait alike are tried in peer-id order: the broken one must come before b, so that
  // the test below always reaches it (a random key would about half the time).
  evilKey = await generateKeyPair('Ed25519')
  while (peerIdFromPrivateKey(evilKey).toString() > b.peerId) evilKey = await generateKeyPair('Ed25519')
  evil = await makeLibp2p('evil', evilKey)
  await evil.handle(BLOCKS_PROTOCOL, stream => { evilHandler(stream).catch(() => {}) })
  for (const [x, y] of [[a, b], [a, c], [b, c]] as const) {
    await connect(x.libp2p, y.libp2p)
  }
  await connect(c.libp2p, evil)
}, 20_000)

afterAll(async () => {
  for (const node of [a, b, c]) await node.blocks.stop()
  await Promise.all([...[a, b, c].map(node => node.libp2p), evil].map(async node => { await node?.stop() }))
  closeAll()
})

beforeEach(() => {
  // The nodes have no DHT: every announcement fails, and says so.
  vi.spyOn(console, 'warn').mockImplementation(() => {})
  for (const node of [a, b, c]) {
    node.receipts.length = 0
    node.invalid.length = 0
    node.serving = true
  }
})

afterEach(() => { vi.restoreAllMocks() })

describe('the blocks wire format', () => {
  it('round-trips every frame and refuses bad versions, sizes, CIDs and types', async () => {
    const cid = await cidForBlock(utf8('hello'))
    const job = new Uint8Array(16).fill(1)
    const want = decodeBlocksClientFrame(encodeBlocksClientFrame({ t: 'want', cid, job }))
    expect(want.t === 'want' && want.cid.toString()).toBe(cid.toString())
    const block = decodeBlocksServerFrame(encodeBlocksServerFrame({ t: 'block', nonce: new Uint8Array(16), bytes: new Uint8Array(BLOCK_MAX_BYTES) }))
    expect(block.t === 'block' && block.bytes.byteLength).toBe(BLOCK_MAX_BYTES)
    expect(decodeBlocksServerFrame(encodeBlocksServerFrame({ t: 'not-found' }))).toEqual({ t: 'not-found' })

    expect(() => decodeBlocksClientFrame(encode({ v: 2, t: 'want', cid: cid.bytes, job }))).toThrow(UnsupportedVersionError)
    expect(() => decodeBlocksClientFrame(encode({ v: 1, t: 'want', cid: cid.bytes, job: job.subarray(1) }))).toThrow(MalformedMessageError)
    expect(() => decodeBlocksClientFrame(encode({ v: 1, t: 'want', cid: new Uint8Array([1, 2, 3]), job }))).toThrow(/Invalid block CID/)
    expect(() => decodeBlocksClientFrame(encode({ v: 1, t: 'gimme' }))).toThrow(MalformedMessageError)
    expect(() => decodeBlocksServerFrame(encodeBlocksServerFrame({ t: 'block', nonce: new Uint8Array(16), bytes: new Uint8Array(BLOCK_MAX_BYTES + 1) }))).toThrow(MalformedMessageError)
    expect(() => decodeBlocksServerFrame(new Uint8Array(BLOCKS_SERVER_FRAME_MAX_BYTES + 1))).toThrow(OversizeMessageError)
    expect(() => decodeBlocksServerFrame(encodeBlocksServerFrame({ t: 'error', code: 'ERR_X', message: 'x'.repeat(9000) }))).toThrow(MalformedMessageError)
    expect(() => decodeBlocksServerFrame(new Uint8Array([0xff, 0x00]))).toThrow(MalformedMessageError)
  })
})

describe('BlockCoordinator between real libp2p nodes', () => {
  it('a block put on A is fetched by C with its hash verified, kept by C, and paid for with a storage receipt', async () => {
    const bytes = randomBytes(300_000)
    const cid = await a.blocks.put(bytes)
    expect(cid).toBe((await cidForBlock(bytes)).toString())
    const got = await c.blocks.get(cid)
    expectSame(got, bytes)
    // The block arrived as a view of its frame; the caller's copy is its whole buffer.
    expect(got.buffer.byteLength).toBe(bytes.byteLength)
    expect(await c.store.has(parseBlockCid(cid))).toBe(true)
    expect((await c.blocks.stats()).count).toBeGreaterThanOrEqual(1)
    expect(await c.blocks.providers(cid)).toEqual([c.peerId])
    // The receipt step ends on the stream after the block is handed on.
    await expect.poll(() => c.receipts.length).toBe(1)
    const receipt = c.receipts[0]
    expect(receipt?.body).toMatchObject({ kind: 'storage', server: a.peerId, client: c.peerId, model: cid, units: bytes.byteLength })
    expect(receipt?.serverSig).toBeDefined()
    await expect.poll(() => a.receipts.length).toBe(1)
    expect(c.invalid).toEqual([])
  })

  it('round-trips a file of several chunks through its manifest', async () => {
    const bytes = randomBytes(2 * BLOCK_MAX_BYTES + 12_345)
    const cid = await b.blocks.put(new Blob([bytes]))
    expect((await b.blocks.stats()).count).toBeGreaterThanOrEqual(4)
    expectSame(await c.blocks.get(cid), bytes)
    // Every chunk was written behind the fetch, and all of them before get() returned.
    const manifest = decodeManifest(await c.store.get(parseBlockCid(cid)) ?? new Uint8Array())
    const [kept, held] = [await c.store.getMany(manifest.blocks), await b.store.getMany(manifest.blocks)]
    expect(kept.every((chunk, i) => chunk !== undefined && equalBytes(chunk, held[i] ?? new Uint8Array()))).toBe(true)
  })

  it('a get reports the bytes fetched up to the total, a put its hashing then its storing', async () => {
    const bytes = randomBytes(2 * BLOCK_MAX_BYTES + 1_000)
    const put: BlockProgress[] = []
    const cid = await a.blocks.put(bytes, { onProgress: p => { put.push(p) } })
    expect(put.filter(p => p.phase === 'hashing').map(p => p.loaded)).toEqual([BLOCK_MAX_BYTES, 2 * BLOCK_MAX_BYTES, bytes.byteLength])
    expect(put.at(-1)).toMatchObject({ phase: 'storing' })
    expect(put.at(-1)?.loaded).toBe(put.at(-1)?.total)
    const got: BlockProgress[] = []
    expectSame(await c.blocks.get(cid, { onProgress: p => { got.push(p) } }), bytes)
    expect(got.every(p => p.phase === 'fetching' && p.total === bytes.byteLength)).toBe(true)
    expect(got.map(p => p.loaded)).toEqual([...got.map(p => p.loaded)].sort((x, y) => x - y))
    expect(got.at(-1)?.loaded).toBe(bytes.byteLength)
  })

  it('a put cancelled while it hashes stores and announces nothing', async () => {
    const bytes = randomBytes(3 * BLOCK_MAX_BYTES)
    const before = await b.blocks.stats()
    const controller = new AbortController()
    const put = b.blocks.put(bytes, { signal: controller.signal, onProgress: p => { if (p.phase === 'hashing') controller.abort() } })
    await expect(put).rejects.toMatchObject({ name: 'AbortError' })
    expect(await b.blocks.stats()).toEqual(before)
    const file = await chunkFile(bytes)
    expect(await b.store.has(file.manifest.cid)).toBe(false)
  })

  it('content that is itself a manifest comes back unchanged', async () => {
    const inner = await a.blocks.put(randomBytes(BLOCK_MAX_BYTES + 1))
    const manifest = await a.store.get(parseBlockCid(inner))
    if (manifest === undefined) throw new Error('no manifest')
    const cid = await a.blocks.put(manifest)
    expectSame(await c.blocks.get(cid), manifest)
  })

  it('a holder serving tampered bytes is detected, reported, not used, and the next provider serves', async () => {
    const bytes = randomBytes(50_000)
    const cid = await a.blocks.put(bytes)
    await b.blocks.put(bytes)
    // The fallback tier ranks equal peers by id: the first one tried is the one that lies.
    const [liar, honest] = [a, b].sort((x, y) => x.peerId < y.peerId ? -1 : 1) as [TestNode, TestNode]
    await corrupt(liar, cid)
    expectSame(await c.blocks.get(cid), bytes)
    expect(c.invalid).toHaveLength(1)
    expect(c.invalid[0]).toMatchObject({ peerId: liar.peerId, reason: expect.stringMatching(/do not hash/) })
    // Receipts follow the get; an earlier test's may arrive meanwhile, so this CID's are the ones counted.
    await expect.poll(() => c.receipts.filter(r => r.body.model === cid).map(r => r.body.server)).toEqual([honest.peerId])
    expectSame(await c.store.get(parseBlockCid(cid)), bytes)
  })

  it('when the only holder lies, get fails and nothing is stored', async () => {
    const bytes = randomBytes(10_000)
    const cid = await a.blocks.put(bytes)
    await corrupt(a, cid)
    await expect(c.blocks.get(cid)).rejects.toThrow(BlockNotFoundError)
    expect(c.invalid.map(i => i.peerId)).toEqual([a.peerId])
    expect(await c.store.has(parseBlockCid(cid))).toBe(false)
    expect(c.receipts.filter(r => r.body.model === cid)).toEqual([])
  })

  it('a holder notices its own corrupt copy, drops it and fetches a good one', async () => {
    const bytes = randomBytes(20_000)
    const cid = await a.blocks.put(bytes)
    await b.blocks.put(bytes)
    await corrupt(a, cid)
    expectSame(await a.blocks.get(cid), bytes)
    expectSame(await a.store.get(parseBlockCid(cid)), bytes)
  })

  it('a file one of whose chunks nobody holds fails, and the get stops fetching the others', async () => {
    const chunkCount = 24
    const [holder, getter] = await Promise.all([makeNode('holder', 64 * 1024 * 1024), makeNode('getter', 64 * 1024 * 1024)])
    try {
      await connect(holder.libp2p, getter.libp2p)
      const cid = await holder.blocks.put(randomBytes(chunkCount * BLOCK_MAX_BYTES))
      const manifest = decodeManifest(await holder.store.get(parseBlockCid(cid)) ?? new Uint8Array())
      const missing = manifest.blocks[0]
      if (missing === undefined) throw new Error('no chunks')
      await holder.store.delete(missing)
      // Every block the get asks for, so that the test can wait until all of them settled.
      const asked: Array<Promise<unknown>> = []
      const coordinator = getter.blocks as unknown as { block: (...args: unknown[]) => Promise<unknown> }
      const block = coordinator.block.bind(coordinator)
      vi.spyOn(coordinator, 'block').mockImplementation(async (...args: unknown[]) => {
        const found = block(...args)
        asked.push(found)
        return await found
      })
      await expect(getter.blocks.get(cid)).rejects.toThrow(BlockNotFoundError)
      for (let settled = -1; settled !== asked.length;) {
        settled = asked.length
        await Promise.allSettled(asked)
      }
      // The manifest, the chunks in flight when the missing one failed, and no further one.
      expect(asked.length).toBeLessThanOrEqual(1 + 16)
    } finally {
      for (const node of [holder, getter]) {
        await node.blocks.stop()
        await node.libp2p.stop()
      }
    }
  })

  it("a manifest's peer that serves at a trickle holds two of the get's workers; the other chunks come from another holder", async () => {
    const chunkCount = 8
    const [slow, fast, getter] = await Promise.all([makeNode('slow', 64 * 1024 * 1024), makeNode('fast', 64 * 1024 * 1024), makeNode('getter', 64 * 1024 * 1024)])
    try {
      await connect(slow.libp2p, fast.libp2p)
      const bytes = randomBytes(chunkCount * BLOCK_MAX_BYTES)
      const cid = await slow.blocks.put(bytes)
      expectSame(await fast.blocks.get(cid), bytes)
      // Only the slow peer has the manifest: it is the get's preferred peer for every chunk.
      await fast.store.delete(parseBlockCid(cid))
      const chunks = new Set(decodeManifest(await slow.store.get(parseBlockCid(cid)) ?? new Uint8Array()).blocks.map(c => c.toString()))
      let release: () => void = () => {}
      const gate = new Promise<void>(resolve => { release = resolve })
      const held: string[] = []
      const read = slow.store.get.bind(slow.store)
      vi.spyOn(slow.store, 'get').mockImplementation(async wanted => {
        if (chunks.has(wanted.toString())) {
          held.push(wanted.toString())
          await gate
        }
        return await read(wanted)
      })
      await connect(getter.libp2p, slow.libp2p)
      await connect(getter.libp2p, fast.libp2p)
      let loaded = 0
      const got = getter.blocks.get(cid, { onProgress: p => { loaded = p.loaded } })
      await until(() => loaded >= (chunkCount - 2) * BLOCK_MAX_BYTES, 'every chunk but the two the slow peer holds')
      expect(held.length).toBeLessThanOrEqual(2)
      release()
      expectSame(await got, bytes)
    } finally {
      vi.restoreAllMocks()
      for (const node of [slow, fast, getter]) {
        await node.blocks.stop()
        await node.libp2p.stop()
      }
    }
  })

  // 1.0.0 too: a peer that speaks only it must not escape the floor.
  it.each([BLOCKS_PIPELINED_PROTOCOL, BLOCKS_PROTOCOL])("a manifest's peer sending its chunks under the transfer floor, though inside the answer timeout, is cut off and the chunks come from another holder (%s)", async protocol => {
    // Each chunk would arrive after 25 s, inside the 30 s answer timeout, at some 42 KiB/s: under the floor.
    await withSlowManifestPeer({ protocol, trickleMs: 25_000, floor: { ...BLOCK_TRANSFER_FLOOR, slackMs: 1_500 } }, async ({ getter, cid, bytes, trickles }) => {
      // The floor and its slack bound the wait, not the trickle's 25 s or the 30 s answer timeout.
      expectSame(await within(getter.blocks.get(cid), 15_000, 'the get'), bytes)
      await until(() => trickles.cut >= 1, "the trickler's cut-off answers")
      expect(trickles.finished).toBe(0)
      // Its share of the get (2 wants; on 1.1.0 the second waits behind the first), once: cut off, it was
      // passed over for the other chunks.
      expect(trickles.asked).toBeLessThanOrEqual(2)
      // Slow is not dishonest: nobody is reported.
      expect(getter.invalid).toEqual([])
    })
  })

  it("a manifest's peer sending its chunks just above the transfer floor does not hold the get: once no chunk is left to ask, another holder is asked for its chunks too", async () => {
    // Some 100 KiB/s: above the floor, so never cut off, and a chunk took it 10 s.
    await withSlowManifestPeer({ protocol: BLOCKS_PIPELINED_PROTOCOL, trickleMs: 10_000 }, async ({ getter, cid, bytes, trickles }) => {
      expectSame(await getter.blocks.get(cid), bytes)
      await expectReadToItsEndAfterTheGet(getter, trickles)
    })
  })

  it("a holder other than the manifest's peer sending chunks just above the floor does not hold the get either: its chunks are asked of another holder at the end", async () => {
    const [honest, getter] = await Promise.all([makeNode('honest', 64 * 1024 * 1024), makeNode('getter', 64 * 1024 * 1024)])
    const trickler = await makeLibp2p('trickler')
    try {
      const bytes = randomBytes(4 * BLOCK_MAX_BYTES)
      const file = await chunkFile(bytes)
      const cid = await honest.blocks.put(bytes)
      // The trickler holds the chunks, not the manifest: the honest holder is the manifest's peer, whose
      // share (2 chunks at once) sends the get's other workers to the trickler, a storage peer here.
      const held = new Map(file.blocks.map(block => [block.cid.toString(), block.bytes]))
      const trickles: Trickles = { asked: 0, cut: 0, finished: 0 }
      await trickler.handle(BLOCKS_PIPELINED_PROTOCOL, stream => { serveTrickling(stream, held, cid, 10_000, trickles).catch(() => {}) })
      await connect(getter.libp2p, honest.libp2p)
      await connect(getter.libp2p, trickler)
      expectSame(await getter.blocks.get(cid), bytes)
      await expectReadToItsEndAfterTheGet(getter, trickles)
    } finally {
      for (const node of [honest, getter]) {
        await node.blocks.stop()
        await node.libp2p.stop()
      }
      await trickler.stop()
    }
  })

  it('a holder whose last chunks the get took from someone else is still paid for every block it sent on the stream', async () => {
    const [honest, slow, getter] = await Promise.all([makeNode('honest', 64 * 1024 * 1024), makeNode('slow', 64 * 1024 * 1024), makeNode('getter', 64 * 1024 * 1024)])
    try {
      const bytes = randomBytes(8 * BLOCK_MAX_BYTES)
      const cid = await honest.blocks.put(bytes)
      await slow.blocks.put(bytes)
      const chunks = new Set((await chunkFile(bytes)).blocks.map(block => block.cid.toString()))
      // The slow holder reads the manifest and its first chunk at once and every later chunk after 3 s:
      // honest, inside the floor's 5 s, but slow enough for the get's end to ask the other holder too.
      let slowChunks = 0
      let slowReads = 0
      let honestChunks = 0
      const slowRead = slow.store.get.bind(slow.store)
      slow.store.get = async block => {
        slowReads++
        if (chunks.has(block.toString()) && ++slowChunks > 1) await sleep(3_000)
        return await slowRead(block)
      }
      const honestRead = honest.store.get.bind(honest.store)
      honest.store.get = async block => {
        if (chunks.has(block.toString())) honestChunks++
        return await honestRead(block)
      }
      await connect(getter.libp2p, honest.libp2p)
      await connect(getter.libp2p, slow.libp2p)
      expectSame(await getter.blocks.get(cid), bytes)
      expect(slowChunks).toBeGreaterThan(1)
      // A chunk went to both: the get gave up a want it had sent to the slow holder.
      expect(slowChunks + honestChunks).toBeGreaterThan(chunks.size)
      // Every block the slow holder read went out and is countersigned, the ones given up too.
      await until(() => slow.receipts.length === slowReads, 'a receipt for every block the slow holder sent')
      expect(slow.receipts.every(r => r.body.client === getter.peerId && r.serverSig !== undefined)).toBe(true)
      await until(() => getter.receipts.filter(r => r.body.server === slow.peerId).length === slowReads, "the getter's receipts")
      expect(getter.invalid).toEqual([])
    } finally {
      for (const node of [honest, slow, getter]) {
        await node.blocks.stop()
        await node.libp2p.stop()
      }
    }
  })

  it.each([BLOCKS_PIPELINED_PROTOCOL, BLOCKS_PROTOCOL])('a client reading its block under the transfer floor, though inside the answer timeout, is cut off and its slot freed (%s)', async protocol => {
    // 256 KiB every 3 s, some 85 KiB/s: the block would be read whole after about 9 s, inside the 30 s
    // answer timeout, and the stream never stalls (WRITE_TIMEOUT_MS); but the floor allows 1 s + 4 s.
    const floor: TransferFloor = { bytesPerSecond: 256 * 1024, slackMs: 1_000 }
    const server = await makeNode('server', 64 * 1024 * 1024, floor)
    const window = 256 * 1024
    const reader = await memoryLibp2p('slow-reader', { yamux: { streamOptions: { maxStreamWindowSize: window } } })
    const cid = parseBlockCid(await server.blocks.put(randomBytes(BLOCK_MAX_BYTES)))
    let tick: ReturnType<typeof setInterval> | undefined
    try {
      await connect(reader, server.libp2p)
      const stream = await reader.dialProtocol(peerIdFromString(server.peerId), protocol)
      let received = 0
      stream.addEventListener('message', evt => { received += evt.data.byteLength })
      await lpStream(stream).write(encodeBlocksClientFrame({ t: 'want', cid, job: crypto.getRandomValues(new Uint8Array(16)) }))
      // Paused, the reader grants no flow control; each tick takes what arrived and grants one window more.
      stream.pause()
      const grantOneWindow = (): void => {
        stream.resume()
        if (stream.readStatus === 'readable') stream.pause()
      }
      tick = setInterval(() => { if (stream.readStatus === 'paused') grantOneWindow() }, 3_000)
      await until(() => stream.status !== 'open', 'the server to cut the slow reader off', 20_000)
      expect(received).toBeLessThan(BLOCK_MAX_BYTES)
      // The server goes on serving others.
      await connect(c.libp2p, server.libp2p)
      expect((await c.blocks.get(cid.toString())).byteLength).toBe(BLOCK_MAX_BYTES)
    } finally {
      clearInterval(tick)
      await server.blocks.stop()
      await server.libp2p.stop()
      await reader.stop()
    }
  })

  it('a sole holder whose slots slow readers hold answers busy before the floor gives up on it, and serves the get once a slot frees', async () => {
    const floor: TransferFloor = { bytesPerSecond: 256 * 1024, slackMs: 1_500 }
    const [holder, getter] = await Promise.all([makeNode('holder', 64 * 1024 * 1024, floor), makeNode('getter', 64 * 1024 * 1024, floor)])
    const readers = await Promise.all([memoryLibp2p('slow-reader-1'), memoryLibp2p('slow-reader-2')])
    try {
      const bytes = randomBytes(BLOCK_MAX_BYTES)
      const cid = await holder.blocks.put(bytes)
      // Two strangers, two wants each, reading nothing: the 3 slots strangers may hold, and a place in
      // line. The holder cuts them off at its floor (1.5 s + 4 s for the block) and frees their slots.
      const stuck: Stream[] = []
      for (const reader of readers) {
        await connect(reader, holder.libp2p)
        for (let i = 0; i < 2; i++) {
          const stream = await reader.dialProtocol(peerIdFromString(holder.peerId), BLOCKS_PROTOCOL)
          stream.pause()
          await lpStream(stream).write(encodeBlocksClientFrame({ t: 'want', cid: parseBlockCid(cid), job: crypto.getRandomValues(new Uint8Array(16)) }))
          stuck.push(stream)
        }
      }
      await connect(getter.libp2p, holder.libp2p)
      // Waiting in line past the getter's slack made it give up on the only holder (SlowPeerError).
      expectSame(await getter.blocks.get(cid), bytes)
      expect(stuck.some(stream => stream.status !== 'open')).toBe(true)
    } finally {
      for (const node of [holder, getter]) {
        await node.blocks.stop()
        await node.libp2p.stop()
      }
      await Promise.all(readers.map(async reader => { await reader.stop() }))
    }
  })

  it("peers that answer at once that they do not hold a block do not use up the attempts before its holder is asked", async () => {
    // Seven peers asked before the holder (peer-id order: nobody is established), each without the block.
    const nodes = await Promise.all(Array.from({ length: 8 }, async (_, i) => await makeNode(`young-${i}`)))
    nodes.sort((x, y) => x.peerId < y.peerId ? -1 : 1)
    const holder = nodes.at(-1) as TestNode
    const getter = nodes[0] as TestNode
    try {
      for (const node of nodes.slice(1)) await connect(getter.libp2p, node.libp2p)
      const bytes = randomBytes(10_000)
      const cid = await holder.blocks.put(bytes)
      const asked = nodes.slice(1, -1).map(node => vi.spyOn(node.store, 'get'))
      expectSame(await getter.blocks.get(cid), bytes)
      // Each of the six that lack it was asked first, and none of them was blamed.
      expect(asked.map(spy => spy.mock.calls.length)).toEqual([1, 1, 1, 1, 1, 1])
      expect(getter.invalid).toEqual([])
    } finally {
      vi.restoreAllMocks()
      for (const node of nodes) {
        await node.blocks.stop()
        await node.libp2p.stop()
      }
    }
  })

  it('a CID nobody holds is not found, and no peer is blamed', async () => {
    const cid = (await cidForBlock(utf8('nobody has this'))).toString()
    const err = await c.blocks.get(cid).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(BlockNotFoundError)
    expect((err as Error).message).toMatch(/does not hold/)
    expect(c.invalid).toEqual([])
  })

  it('a node whose storage is off answers with an error rather than its blocks', async () => {
    const bytes = randomBytes(1_000)
    const cid = await a.blocks.put(bytes)
    a.serving = false
    const service = (c.blocks as unknown as { service: { fetch: (p: string, cid: ReturnType<typeof parseBlockCid>) => Promise<unknown> } }).service
    const err = await service.fetch(a.peerId, parseBlockCid(cid)).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RemoteBlockError)
    expect((err as RemoteBlockError).code).toBe('ERR_STORAGE_OFF')
    const missing = await service.fetch(b.peerId, parseBlockCid(cid)).catch((e: unknown) => e)
    expect(missing).toBeInstanceOf(PeerLacksBlockError)
  })

  it('refuses an oversize frame and a malformed frame from a server, and reports the server', async () => {
    const bytes = randomBytes(1_000)
    const cid = parseBlockCid(await b.blocks.put(bytes))
    const service = (c.blocks as unknown as { service: { fetch: (p: string, cid: ReturnType<typeof parseBlockCid>) => Promise<unknown> } }).service
    const evilId = evil?.peerId.toString() ?? ''

    evilHandler = async stream => {
      const lp = lpStream(stream)
      await lp.read()
      // A length prefix promising more than any block frame, then junk.
      await lp.write(new Uint8Array(BLOCKS_SERVER_FRAME_MAX_BYTES + 10))
    }
    expect(await service.fetch(evilId, cid).catch((e: unknown) => e)).toBeInstanceOf(OversizeMessageError)

    evilHandler = async stream => {
      const lp = lpStream(stream)
      await lp.read()
      await lp.write(encode({ v: 1, t: 'block', nonce: new Uint8Array(3), bytes }))
    }
    expect(await service.fetch(evilId, cid).catch((e: unknown) => e)).toBeInstanceOf(MalformedMessageError)

    // Through the coordinator, the broken server is reported and the real holder still serves.
    const storagePeers = vi.fn(() => [evilId, b.peerId])
    ;(c.blocks as unknown as { o: { storagePeers: () => string[] } }).o.storagePeers = storagePeers
    try {
      expectSame(await c.blocks.get(cid.toString()), bytes)
    } finally {
      ;(c.blocks as unknown as { o: { storagePeers: () => string[] } }).o.storagePeers = () => c.libp2p.getPeers().map(p => p.toString()).filter(id => id !== evilId)
    }
    expect(c.invalid.map(i => i.peerId)).toEqual([evilId])
  })

  it('answers a malformed request with an error frame', async () => {
    const stream = await c.libp2p.dialProtocol(peerIdFromString(a.peerId), BLOCKS_PROTOCOL)
    const lp = lpStream(stream)
    await lp.write(encode({ v: 1, t: 'want', cid: new Uint8Array([9, 9]), job: new Uint8Array(16) }))
    const reply = decodeBlocksServerFrame((await lp.read()).subarray())
    expect(reply).toMatchObject({ t: 'error', code: 'ERR_INVALID_CID' })
  })

  it('answers each want of a 1.1.0 stream in order, and ends a stream that sends more than its share', async () => {
    const bytes = randomBytes(1_000)
    const cid = parseBlockCid(await a.blocks.put(bytes))
    // From b: the 64 wants use up b's rate at a, which later tests of c do not need.
    const stream = await b.libp2p.dialProtocol(peerIdFromString(a.peerId), BLOCKS_PIPELINED_PROTOCOL)
    const lp = lpStream(stream, { maxDataLength: BLOCKS_SERVER_FRAME_MAX_BYTES })
    const want = (): Uint8Array => encodeBlocksClientFrame({ t: 'want', cid, job: crypto.getRandomValues(new Uint8Array(16)) })
    // Every want is written before any answer is read: the server takes them in turn.
    for (let i = 0; i < BLOCKS_REQUESTS_PER_STREAM; i++) await lp.write(want())
    const answers = []
    for (let i = 0; i < BLOCKS_REQUESTS_PER_STREAM; i++) answers.push(decodeBlocksServerFrame((await lp.read()).subarray()).t)
    // The per-peer rate limit may turn some away; none is lost or out of place.
    expect(answers.every(t => t === 'block' || t === 'busy')).toBe(true)
    expect(answers[0]).toBe('block')
    await lp.write(want())
    expect(decodeBlocksServerFrame((await lp.read()).subarray())).toMatchObject({ t: 'error', code: 'ERR_MALFORMED_MESSAGE' })
  })

  it('a client that sends far more than it may have unread, while the server reads nothing, is cut off', async () => {
    const cid = parseBlockCid(await a.blocks.put(randomBytes(BLOCK_MAX_BYTES)))
    // A 1.0.0 server reads nothing between the want and the receipt, which follows the block.
    const stream = await c.libp2p.dialProtocol(peerIdFromString(a.peerId), BLOCKS_PROTOCOL)
    const lp = lpStream(stream, { maxDataLength: BLOCKS_SERVER_FRAME_MAX_BYTES })
    await lp.write(encodeBlocksClientFrame({ t: 'want', cid, job: crypto.getRandomValues(new Uint8Array(16)) }))
    // A megabyte of well-sized frames it would have to keep unread (an honest client never has more
    // than a receipt in flight); a server kept up to 4 MiB of it, on each of up to 80 streams a connection.
    const junk = new Uint8Array(BLOCKS_CLIENT_FRAME_MAX_BYTES - 16)
    const written = (async () => { for (let i = 0; i < 128; i++) await lp.write(junk) })().catch(() => {})
    await until(() => stream.status !== 'open', 'the server to cut the stream')
    await written
  })

  it('refuses a receipt on a 1.1.0 stream for a job the stream did not serve', async () => {
    const cid = parseBlockCid(await a.blocks.put(randomBytes(1_000)))
    const stream = await c.libp2p.dialProtocol(peerIdFromString(a.peerId), BLOCKS_PIPELINED_PROTOCOL)
    const lp = lpStream(stream, { maxDataLength: BLOCKS_SERVER_FRAME_MAX_BYTES })
    await lp.write(encodeBlocksClientFrame({ t: 'want', cid, job: new Uint8Array(16).fill(1) }))
    const served = decodeBlocksServerFrame((await lp.read()).subarray())
    if (served.t !== 'block') throw new Error(`expected a block, got ${served.t}`)
    const signer = pulseSigner(await generateKeyPair('Ed25519'))
    const body = storageReceiptBody(a.peerId, signer.peerId, await verifyBlock(cid, served.bytes), new Uint8Array(16).fill(2), served.nonce, ROUND)
    const receipt = encodeSignedReceipt(await signAsClient(body, signer))
    await lp.write(encodeBlocksClientFrame({ t: 'sign', receipt }))
    expect(decodeBlocksServerFrame((await lp.read()).subarray())).toMatchObject({ t: 'error', code: 'ERR_MALFORMED_MESSAGE' })
  })

  it('answers the wants of a 1.1.0 stream first and countersigns, in order, the receipts sent after them', async () => {
    if (evil === undefined || evilKey === undefined) throw new Error('no raw peer')
    const cids = await Promise.all([1_000, 2_000, 3_000].map(async n => parseBlockCid(await a.blocks.put(randomBytes(n)))))
    await connect(a.libp2p, evil)
    const stream = await evil.dialProtocol(peerIdFromString(a.peerId), BLOCKS_PIPELINED_PROTOCOL)
    const lp = lpStream(stream, { maxDataLength: BLOCKS_SERVER_FRAME_MAX_BYTES })
    const jobs = cids.map((_, i) => new Uint8Array(16).fill(i + 1))
    // As the client does: every want first, the receipts once the blocks are in.
    for (const [i, cid] of cids.entries()) await lp.write(encodeBlocksClientFrame({ t: 'want', cid, job: jobs[i] as Uint8Array }))
    const signer = pulseSigner(evilKey)
    const receipts: Uint8Array[] = []
    for (const [i, cid] of cids.entries()) {
      const frame = decodeBlocksServerFrame((await lp.read()).subarray())
      if (frame.t !== 'block') throw new Error(`expected a block, got ${frame.t}`)
      const body = storageReceiptBody(a.peerId, signer.peerId, await verifyBlock(cid, frame.bytes), jobs[i] as Uint8Array, frame.nonce, ROUND)
      receipts.push(encodeSignedReceipt(await signAsClient(body, signer)))
    }
    for (const receipt of receipts) await lp.write(encodeBlocksClientFrame({ t: 'sign', receipt }))
    const countersigned: string[] = []
    for (let i = 0; i < receipts.length; i++) {
      const frame = decodeBlocksServerFrame((await lp.read()).subarray())
      if (frame.t !== 'countersign') throw new Error(`expected countersign, got ${frame.t}`)
      countersigned.push((await decodeSignedReceipt(frame.receipt, verifyPulseSignature, true)).body.model)
    }
    expect(countersigned).toEqual(cids.map(cid => cid.toString()))
    expect(a.receipts.map(r => r.body.model)).toEqual(cids.map(cid => cid.toString()))
    await stream.close()
  })

  it('fetches a file over one 1.1.0 stream per peer, with a countersigned receipt for every block', async () => {
    const bytes = randomBytes(3 * BLOCK_MAX_BYTES + 5)
    const cid = await a.blocks.put(bytes)
    const opened: Array<[string, string]> = []
    const streams = (c.blocks as unknown as { service: { streams: { open: (p: string, protocol: string, s: AbortSignal) => Promise<Stream> } } }).service.streams
    const open = streams.open.bind(streams)
    streams.open = async (peer, protocol, signal) => { opened.push([peer, protocol]); return await open(peer, protocol, signal) }
    try {
      expectSame(await c.blocks.get(cid), bytes)
    } finally {
      streams.open = open
    }
    // b is asked too (a storage peer without the file): one stream to each peer, none per block.
    expect(opened.every(([, protocol]) => protocol === BLOCKS_PIPELINED_PROTOCOL)).toBe(true)
    expect(new Set(opened.map(([peer]) => peer)).size).toBe(opened.length)
    await vi.waitFor(() => { expect(c.receipts.filter(r => r.body.server === a.peerId)).toHaveLength(5) })
  })

  it('a put that does not fit the quota stores none of its chunks and keeps what was stored', async () => {
    const small = await makeNode('small', 3 * BLOCK_MAX_BYTES)
    try {
      const kept = randomBytes(BLOCK_MAX_BYTES)
      const keptCid = await small.blocks.put(kept)
      const err = await small.blocks.put(randomBytes(2 * BLOCK_MAX_BYTES + 1)).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(BlockStoreFullError)
      expect(await small.blocks.stats()).toEqual({ count: 1, bytes: BLOCK_MAX_BYTES, quotaBytes: 3 * BLOCK_MAX_BYTES })
      expectSame(await small.blocks.get(keptCid), kept)
    } finally {
      await small.blocks.stop()
      await small.libp2p.stop()
    }
  })
})
