import '../../src/relay/polyfills.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import { encode } from 'cborg'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { EMBED_LIMITS } from '../../src/core/embedding/limits.ts'
import {
  EMBED_JOB_ID_BYTES,
  EMBED_PROTOCOL,
  EMBED_RESULT_FRAME_MAX_BYTES,
  RemoteEmbeddingError,
  decodeEmbedClientFrame,
  decodeEmbedServerFrame,
  decodeVectors,
  EMBED_JOB_FRAMES,
  encodeVectors,
  type EmbedServerFrame
} from '../../src/core/wire/embed.ts'
import { HyperspaceError, MalformedMessageError, OversizeMessageError, PeerBusyError, UnsupportedVersionError } from '../../src/core/errors.ts'
import { JobQueue } from '../../src/core/jobs/admission.ts'
import { sha256Of, toHex } from '../../src/core/crypto/bytes.ts'
import { decodeSignedReceipt, encodeSignedReceipt, receiptId, signAsClient, type SignedReceipt } from '../../src/core/receipts/receipt.ts'
import { EmbedService, type LocalEmbedding } from '../../src/net/embed-service.ts'
import { pulseSigner, verifyPulseSignature } from '../../src/net/pulse-keys.ts'
import { rejectionOf, until } from './waiting.ts'
import { memoryLibp2p, startAround, stopNodes } from './memory-libp2p.ts'
import { jobTestServiceOptions, type JobTestNode } from './fixtures.ts'

const { encodeClient: encodeEmbedClientFrame, encodeServer: encodeEmbedServerFrame } = EMBED_JOB_FRAMES

/**
 * Real libp2p nodes in one process (memory transport, noise, yamux) running the real EmbedService.
 * The engine is the `run` option: a small deterministic embedding of each text written here.
 */

const ROUND = 70_000
const MODEL = 'model2vec-64d'
const DIMS = 8
const BURST = 4

type Run = (texts: string[], signal: AbortSignal) => Promise<LocalEmbedding>

type TestNode = JobTestNode<EmbedService, Run>

/** The stand-in engine: a vector made from each text's characters. */
function vectorOf (text: string): Float32Array {
  const v = new Float32Array(DIMS)
  for (let i = 0; i < text.length; i++) v[i % DIMS] = (v[i % DIMS] as number) + text.charCodeAt(i) / 1000
  return v
}

const engine: Run = async texts => ({ dims: DIMS, vectors: texts.map(vectorOf) })

async function makeNode (name: string): Promise<TestNode> {
  const key = await generateKeyPair('Ed25519')
  const libp2p = await memoryLibp2p(name, { privateKey: key })
  const signer = pulseSigner(key)
  const queue = new JobQueue(1, 1, name)
  const node = { signer, peerId: signer.peerId, libp2p, queue, receipts: [], runs: 0, models: [MODEL], clockOffset: 0, run: engine } as unknown as TestNode
  node.service = new EmbedService(libp2p, {
    ...jobTestServiceOptions(node, ROUND, BURST),
    run: async (texts, signal) => {
      node.runs++
      return await node.run(texts, signal)
    }
  })
  return node
}

let a: TestNode // serves
let b: TestNode // client
let c: TestNode // another client

beforeAll(async () => {
  [a, b, c] = await Promise.all([makeNode('a'), makeNode('b'), makeNode('c')])
  await startAround(a, [b, c])
}, 20_000)

afterAll(async () => {
  await stopNodes([a, b, c])
})

beforeEach(async () => {
  for (const node of [a, b, c]) {
    node.clockOffset += 3_600_000
    node.run = engine
    node.runs = 0
    node.models = [MODEL]
    node.receipts.length = 0
  }
  await until(() => a.queue.length === 0, 'an idle queue')
})

describe('the embed wire format', () => {
  it('round-trips vectors as little-endian float32 bytes', () => {
    const vectors = [vectorOf('one'), vectorOf('two')]
    const bytes = encodeVectors(vectors, DIMS)
    expect(bytes.byteLength).toBe(2 * DIMS * 4)
    expect(new DataView(bytes.buffer).getFloat32(0, true)).toBe(vectors[0]?.[0])
    expect(decodeVectors(bytes, DIMS, 2)).toEqual(vectors)
    const nan = bytes.slice()
    new DataView(nan.buffer).setFloat32(4, Number.NaN, true)
    expect(() => decodeVectors(nan, DIMS, 2)).toThrow(MalformedMessageError)
  })

  it('refuses jobs outside the limits, oversize frames, other versions and inconsistent results', () => {
    const job = crypto.getRandomValues(new Uint8Array(EMBED_JOB_ID_BYTES))
    const tooMany = Array.from({ length: EMBED_LIMITS.batch + 1 }, () => 'x')
    expect(() => decodeEmbedClientFrame(encodeEmbedClientFrame({ t: 'job', job, model: MODEL, texts: tooMany }))).toThrow(/batch limit/)
    expect(() => decodeEmbedClientFrame(encodeEmbedClientFrame({ t: 'job', job, model: MODEL, texts: [] }))).toThrow(MalformedMessageError)
    expect(() => decodeEmbedClientFrame(encodeEmbedClientFrame({ t: 'job', job, model: MODEL, texts: ['y'.repeat(EMBED_LIMITS.textBytes + 1)] }))).toThrow(MalformedMessageError)
    expect(() => decodeEmbedClientFrame(encodeEmbedClientFrame({ t: 'job', job: job.subarray(1), model: MODEL, texts: ['a'] }))).toThrow(MalformedMessageError)
    expect(() => decodeEmbedClientFrame(encodeEmbedClientFrame({ t: 'job', job, model: '../x', texts: ['a'] }))).toThrow(MalformedMessageError)
    expect(() => decodeEmbedClientFrame(encode({ v: 2, t: 'sign', receipt: new Uint8Array(4) }))).toThrow(UnsupportedVersionError)
    expect(() => decodeEmbedServerFrame(new Uint8Array(EMBED_RESULT_FRAME_MAX_BYTES + 1))).toThrow(OversizeMessageError)
    expect(() => decodeEmbedServerFrame(encodeEmbedServerFrame({ t: 'error', code: 'ERR_X', message: 'x'.repeat(9000) }))).toThrow(MalformedMessageError)
    expect(() => decodeEmbedServerFrame(encodeEmbedServerFrame({ t: 'result', dims: DIMS, count: 2, vectors: new Uint8Array(DIMS * 4) }))).toThrow(/float32s/)
    expect(() => decodeEmbedServerFrame(encodeEmbedServerFrame({ t: 'result', dims: DIMS, count: EMBED_LIMITS.batch + 1, vectors: new Uint8Array(DIMS * 4 * (EMBED_LIMITS.batch + 1)) }))).toThrow(MalformedMessageError)
    const ok = decodeEmbedServerFrame(encodeEmbedServerFrame({ t: 'result', dims: DIMS, count: 1, vectors: encodeVectors([vectorOf('a')], DIMS) }))
    expect(ok).toMatchObject({ t: 'result', dims: DIMS, count: 1 })
  })
})

describe('EmbedService between real libp2p nodes', () => {
  it('returns one vector per text and both sides hold the receipt countersigned, kind embedding, units = texts', async () => {
    const texts = ['stock market fell', 'investors sold shares', 'the cat sat']
    const result = await b.service.request(a.peerId, MODEL, texts)
    expect(result.dims).toBe(DIMS)
    expect(result.vectors).toEqual(texts.map(vectorOf))
    const body = result.receipt.body
    expect(body).toMatchObject({ kind: 'embedding', server: a.peerId, client: b.peerId, model: MODEL, units: texts.length, round: ROUND })
    expect(toHex(body.output)).toBe(toHex(sha256Of(encodeVectors(texts.map(vectorOf), DIMS))))
    expect(result.receipt.serverSig).toBeDefined()
    expect(a.receipts).toHaveLength(1)
    expect(b.receipts).toEqual([result.receipt])
    const onServer = await decodeSignedReceipt(encodeSignedReceipt(a.receipts[0] as SignedReceipt), verifyPulseSignature, true)
    expect(receiptId(onServer.body)).toBe(receiptId(body))
    expect(a.runs).toBe(1)
  })

  it('answers a model it does not serve with ERR_MODEL_NOT_SERVED', async () => {
    const err = await rejectionOf(b.service.request(a.peerId, 'all-MiniLM-L6-v2', ['hi']))
    expect(err).toBeInstanceOf(RemoteEmbeddingError)
    expect((err as HyperspaceError).code).toBe('ERR_MODEL_NOT_SERVED')
    expect(a.runs).toBe(0)
  })

  it('answers busy when its queue is full, and once a peer used up its rate limit', async () => {
    let open: () => void = () => {}
    const gate = new Promise<void>(resolve => { open = resolve })
    a.run = async texts => {
      await gate
      return await engine(texts, new AbortController().signal)
    }
    // One running, one waiting (JobQueue(1, 1)): the third is refused at once.
    const admitted = [b.service.request(a.peerId, MODEL, ['one']), c.service.request(a.peerId, MODEL, ['two'])]
    await until(() => a.queue.length === 2, 'two admitted jobs')
    expect(await rejectionOf(b.service.request(a.peerId, MODEL, ['three']))).toBeInstanceOf(PeerBusyError)
    open()
    for (const result of await Promise.all(admitted)) expect(result.receipt.serverSig).toBeDefined()

    a.run = engine
    b.clockOffset = c.clockOffset = a.clockOffset += 3_600_000
    const outcomes = await Promise.allSettled(Array.from({ length: BURST + 2 }, async () => await b.service.request(a.peerId, MODEL, ['x'])))
    // The burst used the whole bucket (the refused third above took no token: its bucket was refilled).
    expect(outcomes.filter(o => o.status === 'rejected').every(o => o.reason instanceof PeerBusyError)).toBe(true)
    expect(outcomes.filter(o => o.status === 'rejected').length).toBeGreaterThanOrEqual(2)
    expect((await c.service.request(a.peerId, MODEL, ['other peer'])).vectors).toHaveLength(1)
  })

  it('the engine failing reaches the client as a RemoteEmbeddingError with no receipt', async () => {
    a.run = async () => { throw new Error('worker exploded') }
    const err = await rejectionOf(b.service.request(a.peerId, MODEL, ['x']))
    expect(err).toBeInstanceOf(RemoteEmbeddingError)
    expect((err as Error).message).toContain('worker exploded')
    expect(a.receipts).toEqual([])
    expect(b.receipts).toEqual([])
  })

  it('the client refuses a result whose count differs from the texts it sent', async () => {
    a.run = async texts => ({ dims: DIMS, vectors: [...texts, 'extra'].map(vectorOf) })
    const err = await rejectionOf(b.service.request(a.peerId, MODEL, ['one', 'two']))
    expect(err).toBeInstanceOf(HyperspaceError)
    expect(b.receipts).toEqual([])
  })
})

// ---- driving the protocol by hand ----

async function openRaw (): Promise<{ lp: LengthPrefixedStream, close: () => void }> {
  const stream = await b.libp2p.dialProtocol(a.libp2p.peerId, EMBED_PROTOCOL)
  return { lp: lpStream(stream, { maxDataLength: EMBED_RESULT_FRAME_MAX_BYTES }), close: () => { stream.abort(new Error('test done')) } }
}

async function readFrame (lp: LengthPrefixedStream): Promise<EmbedServerFrame | { t: 'closed' }> {
  try {
    return decodeEmbedServerFrame((await lp.read({ signal: AbortSignal.timeout(3_000) })).subarray())
  } catch {
    return { t: 'closed' }
  }
}

describe('the server facing a misbehaving client', () => {
  it('answers malformed frames with an error and keeps serving', async () => {
    const job = crypto.getRandomValues(new Uint8Array(EMBED_JOB_ID_BYTES))
    const garbage = [
      new Uint8Array([0xff, 0x00, 0x13]),
      encode({ v: 1, t: 'job', job, model: MODEL }),
      encode({ v: 1, t: 'job', job, model: MODEL, texts: [1, 2] }),
      encode({ v: 1, t: 'job', job, model: MODEL, texts: Array.from({ length: EMBED_LIMITS.batch + 1 }, () => 'x') }),
      encode({ v: 9, t: 'job', job, model: MODEL, texts: ['x'] }),
      encodeEmbedClientFrame({ t: 'sign', receipt: new Uint8Array(8) })
    ]
    for (const bytes of garbage) {
      const { lp, close } = await openRaw()
      await lp.write(bytes)
      const reply = await readFrame(lp)
      expect(reply.t).toBe('error')
      close()
    }
    expect(a.runs).toBe(0)
    expect((await b.service.request(a.peerId, MODEL, ['still there?'])).vectors).toEqual([vectorOf('still there?')])
  })

  it('holds at most 8 unread job frames of one peer: its next stream is told busy before its frame is read', async () => {
    // Each stream announces a 500 KB frame and sends none of it: the server waits for it until its read times out.
    const held = await Promise.all(Array.from({ length: 8 }, async () => {
      const stream = await b.libp2p.dialProtocol(a.libp2p.peerId, EMBED_PROTOCOL)
      stream.send(new Uint8Array([0x80, 0xa0, 0x1e]))
      return stream
    }))
    const { lp, close } = await openRaw()
    expect(await readFrame(lp)).toMatchObject({ t: 'busy' })
    close()
    for (const stream of held) stream.abort(new Error('test done'))
    expect((await b.service.request(a.peerId, MODEL, ['still there?'])).vectors).toEqual([vectorOf('still there?')])
  })

  it('refuses to countersign a receipt with the wrong text count', async () => {
    const { lp, close } = await openRaw()
    const job = crypto.getRandomValues(new Uint8Array(EMBED_JOB_ID_BYTES))
    const texts = ['a', 'b']
    await lp.write(encodeEmbedClientFrame({ t: 'job', job, model: MODEL, texts }))
    const accept = await readFrame(lp)
    const result = await readFrame(lp)
    if (accept.t !== 'accept' || result.t !== 'result') throw new Error(`expected accept and result, got ${accept.t}, ${result.t}`)
    const signed = await signAsClient({
      job, nonce: accept.nonce, kind: 'embedding', server: a.peerId, client: b.peerId, model: MODEL,
      units: 3, cached: false, output: sha256Of(result.vectors), round: ROUND, ts: Date.now()
    }, b.signer)
    await lp.write(encodeEmbedClientFrame({ t: 'sign', receipt: encodeSignedReceipt(signed) }))
    const reply = await readFrame(lp)
    expect(reply).toMatchObject({ t: 'error', message: expect.stringContaining('counts 3 texts, more than 2') })
    expect(a.receipts).toEqual([])
    close()
  })
})
