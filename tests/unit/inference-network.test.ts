import '../../src/relay/polyfills.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { TopicValidatorResult, type Message } from '@libp2p/gossipsub'
import { encode } from 'cborg'
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import { type Libp2p } from 'libp2p'
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  BadSignatureError,
  HyperspaceError,
  InvalidRequestError,
  PeerBusyError,
  RemoteInferenceError,
  UnsignedReceiptError
} from '../../src/core/errors.ts'
import { JobQueue } from '../../src/core/jobs/admission.ts'
import { validateChatRequest, type ValidChatRequest } from '../../src/core/inference/request.ts'
import {
  FRAME_MAX_BYTES,
  INFERENCE_PROTOCOL,
  JOB_ID_BYTES,
  decodeServerFrame,
  encodeClientFrame,
  type ServerFrame
} from '../../src/core/wire/inference.ts'
import { decodeMessage } from '../../src/core/wire/cbor.ts'
import { concat, sha256Of, toHex, utf8 } from '../../src/core/crypto/bytes.ts'
import {
  decodeSignedReceipt,
  encodeSignedReceipt,
  receiptId,
  signAsClient,
  countersign,
  type ReceiptBody,
  type SignedReceipt
} from '../../src/core/receipts/receipt.ts'
import { topicFor } from '../../src/core/wire/topics.ts'
import { hyperspaceGossip } from '../../src/net/gossip.ts'
import { pointsOf } from '../../src/core/receipts/work-points.ts'
import { InferenceService, type LocalRun } from '../../src/net/inference-service.ts'
import { pulseSigner, verifyPulseSignature } from '../../src/net/pulse-keys.ts'
import { ReceiptGossip, STRANGER_RECEIPTS, STRANGER_RECEIPTS_PER_SERVER } from '../../src/net/receipt-gossip.ts'
import type { PulseSigner } from '../../src/core/crypto/signing.ts'
import type { HyperspaceServices } from '../../src/net/services.ts'
import type { PrivateKey } from '@libp2p/interface'
import { rejectionOf, sleep, until } from './waiting.ts'
import { connect, memoryLibp2p, stopNodesAfter } from './memory-libp2p.ts'
import { jobTestServiceOptions, type JobTestNode } from './fixtures.ts'

/**
 * Real libp2p nodes in one process (memory transport, noise, yamux, GossipSub) running the real
 * InferenceService and ReceiptGossip. The engine is the `run` option: a small deterministic text
 * generator written here.
 */

const NET = 'dev-t-inference'
const ROUND = 50_000
const MODEL = 'stories260K'
const BURST = 4

type Run = (request: ValidChatRequest, onDelta: (text: string) => void, signal: AbortSignal) => Promise<LocalRun>

interface TestNode extends JobTestNode<InferenceService, Run> {
  name: string
  key: PrivateKey
  libp2p: Libp2p<HyperspaceServices>
  gossip: ReceiptGossip
}

function tokensFor (request: ValidChatRequest): string[] {
  const prompt = request.messages.at(-1)?.content ?? ''
  return Array.from({ length: Math.min(request.max_tokens, 6) }, (_, i) => i === 0 ? `${prompt.length}:` : ` t${i}`)
}

/** The stand-in engine: a few tokens derived from the request, each after a short pause. */
function generator (delayMs = 2): Run {
  return async (request, onDelta, signal) => {
    const tokens = tokensFor(request)
    for (const token of tokens) {
      await sleep(delayMs)
      signal.throwIfAborted()
      onDelta(token)
    }
    return {
      completion: {
        text: tokens.join(''),
        finishReason: tokens.length === request.max_tokens ? 'length' : 'stop',
        promptTokens: request.messages.reduce((n, m) => n + m.content.length, 0),
        completionTokens: tokens.length
      },
      cached: false
    }
  }
}

async function makeNode (name: string): Promise<TestNode> {
  const key = await generateKeyPair('Ed25519')
  const libp2p = await memoryLibp2p(name, { privateKey: key, services: { pubsub: hyperspaceGossip({ colocationPenalty: false }) } }) as unknown as Libp2p<HyperspaceServices>
  const signer = pulseSigner(key)
  const queue = new JobQueue(1, 1, name)
  const node = { name, key, signer, peerId: signer.peerId, libp2p, queue, receipts: [], runs: 0, models: [MODEL], clockOffset: 0, run: generator() } as unknown as TestNode
  node.service = new InferenceService(libp2p, {
    ...jobTestServiceOptions(node, ROUND, BURST),
    run: async (request, onDelta, signal) => {
      node.runs++
      return await node.run(request, onDelta, signal)
    }
  })
  node.gossip = new ReceiptGossip(libp2p, { networkId: NET, verify: verifyPulseSignature, currentRound: () => ROUND })
  return node
}

function request (content = 'Once upon a time', over: Record<string, unknown> = {}): ValidChatRequest {
  return validateChatRequest({ model: MODEL, messages: [{ role: 'user', content }], max_tokens: 16, temperature: 0, ...over })
}

let a: TestNode // serves
let b: TestNode // client
let c: TestNode // another client, and a third gossip peer

beforeAll(async () => {
  [a, b, c] = await Promise.all([makeNode('a'), makeNode('b'), makeNode('c')])
  for (const [x, y] of [[a, b], [a, c], [b, c]] as Array<[TestNode, TestNode]>) {
    await connect(x.libp2p, y.libp2p)
  }
  for (const node of [a, b, c]) {
    await node.service.start()
    await node.gossip.start()
  }
  const topic = topicFor(NET, 'receipts')
  await until(() => [a, b, c].every(n => n.libp2p.services.pubsub.getSubscribers(topic).length === 2), 'receipt topic subscriptions')
}, 20_000)

afterAll(async () => {
  await stopNodesAfter([a, b, c], node => [node.gossip, node.service])
})

beforeEach(async () => {
  // Every test starts with full rate-limit buckets, the default engine, an idle queue and no receipts.
  for (const node of [a, b, c]) {
    node.clockOffset += 3_600_000
    node.run = generator()
    node.runs = 0
    node.models = [MODEL]
    node.receipts.length = 0
  }
  await until(() => a.queue.length === 0, 'an idle queue')
})

describe('InferenceService between real libp2p nodes', () => {
  it('streams deltas in order, returns the text and token counts, and both sides get the countersigned receipt', async () => {
    const req = request('Tell me a story', { max_tokens: 5 })
    const deltas: string[] = []
    const result = await b.service.request(a.peerId, req, text => { deltas.push(text) })
    const expected = tokensFor(req)
    expect(deltas).toEqual(expected)
    expect(result.completion).toEqual({ text: expected.join(''), finishReason: 'length', promptTokens: 'Tell me a story'.length, completionTokens: 5 })
    expect(result.cached).toBe(false)
    expect(result.timeToFirstTokenMs).toBeGreaterThanOrEqual(0)
    expect(result.durationMs).toBeGreaterThanOrEqual(result.timeToFirstTokenMs)

    // The receipt: countersigned, about this job, and the same on both sides.
    const body = result.receipt.body
    expect(body).toMatchObject({ kind: 'inference', server: a.peerId, client: b.peerId, model: MODEL, units: 5, round: ROUND })
    expect(toHex(body.output)).toBe(toHex(sha256Of(utf8(expected.join('')))))
    expect(a.receipts).toHaveLength(1)
    expect(b.receipts).toHaveLength(1)
    expect(b.receipts[0]).toBe(result.receipt)
    expect(receiptId((a.receipts[0] as SignedReceipt).body)).toBe(receiptId(body))
    for (const receipt of [a.receipts[0], b.receipts[0]] as SignedReceipt[]) {
      const verified = await decodeSignedReceipt(encodeSignedReceipt(receipt), verifyPulseSignature, true)
      expect(receiptId(verified.body)).toBe(receiptId(body))
    }
    expect(toHex(encodeSignedReceipt(a.receipts[0] as SignedReceipt))).toBe(toHex(encodeSignedReceipt(result.receipt)))
    expect(a.runs).toBe(1)
    expect(a.queue.length).toBe(0)
  })

  it('passes on the cached flag, and splits a long delta into frames the client joins back', async () => {
    const long = 'x'.repeat(2500)
    a.run = async (_request, onDelta) => {
      onDelta(long)
      return { completion: { text: long, finishReason: 'stop', promptTokens: 3, completionTokens: 14 }, cached: true }
    }
    const deltas: string[] = []
    const result = await b.service.request(a.peerId, request(), text => { deltas.push(text) })
    expect(deltas.map(d => d.length)).toEqual([1024, 1024, 452])
    expect(result.completion.text).toBe(long)
    expect(result.cached).toBe(true)
    expect(result.receipt.body.units).toBe(14)
  })

  it('keeps characters outside the BMP intact when a long delta is split', async () => {
    // A cache hit hands over the whole text as one delta: the split at 1024 UTF-16 units must not
    // cut the surrogate pair of "😀" in half.
    const text = `${'a'.repeat(1023)}😀${'b'.repeat(10)}`
    a.run = async (_request, onDelta) => {
      onDelta(text)
      return { completion: { text, finishReason: 'stop', promptTokens: 3, completionTokens: 12 }, cached: true }
    }
    const result = await b.service.request(a.peerId, request(), () => {})
    expect(result.completion.text).toBe(text)
    expect(result.receipt.serverSig).toBeDefined()
  })

  it('the client does not sign for more tokens than it asked for', async () => {
    // A server that inflates its token count would otherwise get a receipt (and work points) for
    // a million tokens from a five-token answer: units come from the server's own `done` frame.
    a.run = async (req, onDelta, signal) => {
      const honest = await generator()(req, onDelta, signal)
      return { ...honest, completion: { ...honest.completion, completionTokens: 1_000_000 } }
    }
    const req = request('inflate', { max_tokens: 16 })
    const err = await rejectionOf(b.service.request(a.peerId, req, () => {}))
    expect(err).toBeInstanceOf(HyperspaceError)
    expect(b.receipts).toEqual([])
    expect(a.receipts.filter(r => r.body.units > req.max_tokens)).toEqual([])
  })

  it('the client signs for no more tokens than the text it received can hold, whatever the server counts', async () => {
    // A server that sends two characters and counts 16 tokens (within max_tokens) would otherwise get
    // a receipt for 16: the client took the server's count. Every token decodes to at least one byte
    // of text, so the client bounds the count itself by the bytes it received, plus the end token and
    // the bytes of a character cut off at the token limit (4 in all), plus the longest stop string
    // (the engine cuts a matched stop string from the text).
    a.run = async (_req, onDelta) => {
      onDelta('Hi')
      return { completion: { text: 'Hi', finishReason: 'stop', promptTokens: 3, completionTokens: 16 }, cached: false }
    }
    const plainReq = request('inflate', { max_tokens: 16 })
    const result = await b.service.request(a.peerId, plainReq, () => {})
    expect(result.receipt.body.units).toBe(2 + 4)
    const withStop = request('inflate', { max_tokens: 16, stop: ['THE END'] })
    const stopped = await b.service.request(a.peerId, withStop, () => {})
    expect(stopped.receipt.body.units).toBe(2 + 4 + 'THE END'.length)
    // The server countersigned the client's lower count: both logs hold the same receipts.
    expect(a.receipts.map(r => r.body.units)).toEqual([6, 13])
    expect(b.receipts.map(r => r.body.units)).toEqual([6, 13])
  })

  it('a cached answer\'s receipt says so on both sides, and earns the cache rate', async () => {
    a.run = async (_req, onDelta) => {
      onDelta('Once upon a time')
      return { completion: { text: 'Once upon a time', finishReason: 'stop', promptTokens: 3, completionTokens: 5 }, cached: true }
    }
    const result = await b.service.request(a.peerId, request(), () => {})
    expect(result.cached).toBe(true)
    expect(result.receipt.body).toMatchObject({ units: 5, cached: true })
    expect(a.receipts.map(r => r.body.cached)).toEqual([true])
    expect(pointsOf(result.receipt.body)).toBeCloseTo(5 / 1000 / 10, 15)
    a.run = generator()
    const fresh = await b.service.request(a.peerId, request('fresh'), () => {})
    expect(fresh.receipt.body.cached).toBe(false)
    expect(pointsOf(fresh.receipt.body)).toBeCloseTo(fresh.receipt.body.units / 1000, 15)
  })

  it('answers a model it does not serve with ERR_MODEL_NOT_SERVED', async () => {
    const err = await rejectionOf(b.service.request(a.peerId, validateChatRequest({ model: 'stories15M', messages: [{ role: 'user', content: 'hi' }] }), () => {}))
    expect(err).toBeInstanceOf(RemoteInferenceError)
    expect((err as HyperspaceError).code).toBe('ERR_MODEL_NOT_SERVED')
    expect((err as Error).message).toContain('stories15M')
    expect(a.runs).toBe(0)
    expect(a.receipts).toEqual([])
  })

  it('answers busy when the queue is full while the jobs already admitted finish', async () => {
    let open!: () => void
    const gate = new Promise<void>(resolve => { open = resolve })
    const inner = generator()
    a.run = async (req, onDelta, signal) => {
      await gate
      return await inner(req, onDelta, signal)
    }
    const first = b.service.request(a.peerId, request('first'), () => {})
    await until(() => a.runs === 1, 'the first job to run')
    const second = c.service.request(a.peerId, request('second'), () => {})
    await until(() => a.queue.length === 2, 'the second job to wait')
    const err = await rejectionOf(b.service.request(a.peerId, request('third'), () => {}))
    expect(err).toBeInstanceOf(PeerBusyError)
    expect((err as HyperspaceError).code).toBe('ERR_PEER_BUSY')
    expect(a.runs).toBe(1)
    open()
    const [r1, r2] = await Promise.all([first, second])
    expect(r1.completion.text).toBe(tokensFor(request('first')).join(''))
    expect(r2.completion.text).toBe(tokensFor(request('second')).join(''))
    expect(r1.receipt.body.client).toBe(b.peerId)
    expect(r2.receipt.body.client).toBe(c.peerId)
    expect(a.runs).toBe(2)
    expect(a.receipts).toHaveLength(2)
  })

  it('answers busy once a peer has used up its rate limit, and still serves other peers', async () => {
    const quick = request('q', { max_tokens: 1 })
    for (let i = 0; i < BURST; i++) await b.service.request(a.peerId, quick, () => {})
    const err = await rejectionOf(b.service.request(a.peerId, quick, () => {}))
    expect(err).toBeInstanceOf(PeerBusyError)
    expect(a.runs).toBe(BURST)
    expect(a.queue.length).toBe(0)
    const other = await c.service.request(a.peerId, quick, () => {})
    expect(other.completion.completionTokens).toBe(1)
    expect(a.runs).toBe(BURST + 1)
  })

  it('a client aborting mid-stream aborts the server\'s run and frees its slot', async () => {
    let serverSignal: AbortSignal | undefined
    const slow = generator(40)
    a.run = async (req, onDelta, signal) => {
      serverSignal = signal
      return await slow(req, onDelta, signal)
    }
    const controller = new AbortController()
    const stop = new Error('the user pressed stop')
    const deltas: string[] = []
    const err = await rejectionOf(b.service.request(a.peerId, request('long', { max_tokens: 1000 }), text => {
      deltas.push(text)
      if (deltas.length === 2) controller.abort(stop)
    }, { signal: controller.signal }))
    expect(err).toBe(stop)
    expect(deltas).toHaveLength(2)
    await until(() => serverSignal?.aborted === true, 'the server run to be aborted', 3_000)
    await until(() => a.queue.length === 0, 'the slot to be freed', 3_000)
    expect(a.receipts).toEqual([])
    expect(b.receipts).toEqual([])
    // The server serves the next request as usual.
    a.run = generator()
    expect((await b.service.request(a.peerId, request(), () => {})).receipt.serverSig).toBeDefined()
  })

  it('an engine that emits one more delta after the client went away does not leave an unhandled rejection', async () => {
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown): void => { unhandled.push(reason) }
    process.on('unhandledRejection', onUnhandled)
    try {
      let aborted = false
      a.run = async (_req, onDelta, signal) => {
        signal.addEventListener('abort', () => { aborted = true })
        for (let i = 0; ; i++) {
          await sleep(20)
          // Like an engine that notices the abort only after handing over its current token.
          onDelta(` t${i}`)
          if (signal.aborted) {
            await sleep(20)
            throw signal.reason
          }
        }
      }
      const controller = new AbortController()
      let seen = 0
      await rejectionOf(b.service.request(a.peerId, request(), () => { if (++seen === 2) controller.abort(new Error('stop')) }, { signal: controller.signal }))
      await until(() => aborted, 'the server run to be aborted', 3_000)
      await until(() => a.queue.length === 0, 'the slot to be freed', 3_000)
      await sleep(100)
      expect(unhandled).toEqual([])
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
  })

  it('the server\'s engine failing gives the client a RemoteInferenceError, before or after the first delta', async () => {
    a.run = async () => { throw new Error('engine exploded') }
    const before = await rejectionOf(b.service.request(a.peerId, request(), () => {}))
    expect(before).toBeInstanceOf(RemoteInferenceError)
    expect((before as HyperspaceError).code).toBe('ERR_INTERNAL')
    expect((before as Error).message).toContain('engine exploded')

    const deltas: string[] = []
    a.run = async (_req, onDelta) => {
      onDelta('Once')
      await sleep(5)
      throw new InvalidRequestError('the prompt does not fit the context window')
    }
    const after = await rejectionOf(b.service.request(a.peerId, request(), text => { deltas.push(text) }))
    expect(after).toBeInstanceOf(RemoteInferenceError)
    expect((after as HyperspaceError).code).toBe('ERR_INVALID_REQUEST')
    expect((after as Error).message).toContain('context window')
    expect(deltas).toEqual(['Once'])
    expect(a.receipts).toEqual([])
    await until(() => a.queue.length === 0, 'the slot to be freed')
  })
})

// ---- driving the protocol by hand ----

async function openRaw (from: TestNode, to: TestNode): Promise<{ lp: LengthPrefixedStream, close: () => void }> {
  const stream = await from.libp2p.dialProtocol(to.libp2p.peerId, INFERENCE_PROTOCOL)
  return { lp: lpStream(stream, { maxDataLength: FRAME_MAX_BYTES }), close: () => { stream.abort(new Error('test done')) } }
}

/** What the server sends back, or how the stream ended. */
async function readFrame (lp: LengthPrefixedStream): Promise<ServerFrame | { t: 'closed', error: string }> {
  try {
    return decodeServerFrame((await lp.read({ signal: AbortSignal.timeout(3_000) })).subarray())
  } catch (err) {
    return { t: 'closed', error: (err as Error).name }
  }
}

async function expectServerStillServes (): Promise<void> {
  const result = await b.service.request(a.peerId, request('still there?'), () => {})
  expect(result.completion.text).toBe(tokensFor(request('still there?')).join(''))
}

describe('the server facing a misbehaving client', () => {
  it('answers garbage with an error or a closed stream, and keeps serving', async () => {
    const garbage: Uint8Array[] = [
      new Uint8Array([0xff, 0x00, 0x13]),
      new Uint8Array(0),
      encodeClientFrame({ t: 'sign', receipt: new Uint8Array(10) }), // a receipt before any job
      new Uint8Array([0xa2, 0x61, 0x74, 0x63, 0x6a, 0x6f, 0x62, 0x61, 0x76, 0x02]) // {t: 'job', v: 2}
    ]
    const answers: string[] = []
    for (const bytes of garbage) {
      const { lp, close } = await openRaw(b, a)
      await lp.write(bytes)
      const frame = await readFrame(lp)
      answers.push(frame.t === 'error' ? frame.code : frame.t)
      close()
    }
    expect(answers[0]).toBe('ERR_MALFORMED_MESSAGE')
    expect(answers[3]).toBe('ERR_UNSUPPORTED_VERSION')
    for (const answer of answers) expect(['ERR_MALFORMED_MESSAGE', 'ERR_UNSUPPORTED_VERSION', 'closed']).toContain(answer)

    // A length prefix far beyond the job frame limit.
    const { lp, close } = await openRaw(b, a)
    const raw = lp.unwrap()
    raw.send(new Uint8Array([0xff, 0xff, 0xff, 0x7f]))
    const relp = lpStream(raw, { maxDataLength: FRAME_MAX_BYTES })
    const frame = await readFrame(relp)
    expect(['error', 'closed']).toContain(frame.t)
    close()

    expect(a.runs).toBe(0)
    expect(a.libp2p.status).toBe('started')
    await expectServerStillServes()
  })

  interface HandJob { lp: LengthPrefixedStream, close: () => void, job: Uint8Array, nonce: Uint8Array, text: string, completion: number }

  async function handJob (req: ValidChatRequest): Promise<HandJob> {
    // Many jobs in a row from one client: let the server's clock move on so its rate limit refills.
    a.clockOffset += 3_600_000
    const { lp, close } = await openRaw(b, a)
    const job = crypto.getRandomValues(new Uint8Array(JOB_ID_BYTES))
    await lp.write(encodeClientFrame({ t: 'job', job, req }))
    const accept = await readFrame(lp)
    if (accept.t !== 'accept') throw new Error(`expected accept, got ${JSON.stringify(accept)}`)
    let text = ''
    for (;;) {
      const frame = await readFrame(lp)
      if (frame.t === 'delta') text += frame.text
      else if (frame.t === 'done') return { lp, close, job, nonce: accept.nonce, text, completion: frame.completion }
      else throw new Error(`unexpected ${JSON.stringify(frame)}`)
    }
  }

  async function signAndSend (hand: HandJob, over: Partial<ReceiptBody>, signer: PulseSigner = b.signer): Promise<ServerFrame | { t: 'closed', error: string }> {
    const body: ReceiptBody = {
      job: hand.job, nonce: hand.nonce, kind: 'inference', server: a.peerId, client: b.peerId, model: MODEL,
      units: hand.completion, cached: false, output: sha256Of(utf8(hand.text)), round: ROUND, ts: Date.now(), ...over
    }
    const signed = await signAsClient(body, signer)
    await hand.lp.write(encodeClientFrame({ t: 'sign', receipt: encodeSignedReceipt(signed) }))
    const reply = await readFrame(hand.lp)
    hand.close()
    return reply
  }

  it('countersigns an honest receipt sent by hand', async () => {
    const hand = await handJob(request('by hand'))
    expect(hand.text).toBe(tokensFor(request('by hand')).join(''))
    const reply = await signAndSend(hand, {})
    expect(reply.t).toBe('countersign')
    if (reply.t !== 'countersign') return
    const receipt = await decodeSignedReceipt(reply.receipt, verifyPulseSignature, true)
    expect(receipt.body.units).toBe(hand.completion)
    expect(a.receipts).toHaveLength(1)
  })

  it('refuses to countersign a receipt with the wrong token count or output hash', async () => {
    const cases: Array<[string, Partial<ReceiptBody>, string]> = [
      ['more tokens', { units: 1000 }, 'ERR_MALFORMED_MESSAGE'],
      ['another output', { output: sha256Of(utf8('a much better story')) }, 'ERR_RECEIPT_MISMATCH']
    ]
    for (const [what, over, code] of cases) {
      const hand = await handJob(request(what))
      const reply = await signAndSend(hand, over)
      expect(reply.t, what).toBe('error')
      if (reply.t === 'error') expect(reply.code, what).toBe(code)
    }
    expect(a.receipts).toEqual([])
  })

  it('countersigns only its own cached flag', async () => {
    a.run = async (req, onDelta, signal) => ({ ...await generator()(req, onDelta, signal), cached: true })
    const hand = await handJob(request('cached'))
    const reply = await signAndSend(hand, { cached: false })
    expect(reply).toMatchObject({ t: 'error', code: 'ERR_RECEIPT_MISMATCH' })
    expect(a.receipts).toEqual([])
  })

  it('countersigns a lower count than its own: the client counts what it received', async () => {
    const hand = await handJob(request('fewer'))
    const reply = await signAndSend(hand, { units: 1 })
    expect(reply.t).toBe('countersign')
    expect(a.receipts.map(r => r.body.units)).toEqual([1])
  })

  it('refuses a receipt for another job, server, client or round, or with a forged signature', async () => {
    const other = sha256Of(utf8('other'))
    const cases: Array<[string, Partial<ReceiptBody>, string, PulseSigner?]> = [
      ['another nonce', { nonce: other.slice(0, 16) }, 'ERR_RECEIPT_MISMATCH'],
      ['another job', { job: other.slice(16, 32) }, 'ERR_RECEIPT_MISMATCH'],
      ['another server', { server: c.peerId }, 'ERR_RECEIPT_MISMATCH'],
      ['another model', { model: 'stories15M' }, 'ERR_RECEIPT_MISMATCH'],
      ['another kind', { kind: 'storage' }, 'ERR_RECEIPT_MISMATCH'],
      // C signs honestly as itself, but the job came from B.
      ['another client', { client: c.peerId }, 'ERR_RECEIPT_MISMATCH', c.signer],
      ['a stale round', { round: ROUND - 5 }, 'ERR_RECEIPT_STALE'],
      ['a future round', { round: ROUND + 5 }, 'ERR_RECEIPT_STALE'],
      ['a signature by another key', {}, 'ERR_BAD_SIGNATURE', { peerId: b.peerId, sign: async data => await c.signer.sign(data) }]
    ]
    for (const [what, over, code, signer] of cases) {
      const hand = await handJob(request(what))
      const reply = await signAndSend(hand, over, signer)
      expect(reply.t, what).toBe('error')
      if (reply.t === 'error') expect(reply.code, what).toBe(code)
    }
    expect(a.receipts).toEqual([])
    await expectServerStillServes()
  })
})

// ---- receipts on gossip ----

describe('ReceiptGossip between real nodes', () => {
  const topic = (): string => topicFor(NET, 'receipts')
  /**
   * Publishes what must be rejected: GossipSub scores a sender of invalid messages down until the
   * others stop taking its messages (and forwarding to it), so an honest node must not be that sender.
   */
  let mallory: TestNode

  beforeAll(async () => {
    mallory = await makeNode('mallory')
    for (const honest of [a, b, c]) {
      await connect(mallory.libp2p, honest.libp2p)
    }
    await mallory.gossip.start()
    await until(() => [a, b, c, mallory].every(n => n.libp2p.services.pubsub.getSubscribers(topic()).length === 3), 'receipt topic subscriptions with mallory')
  })

  afterAll(async () => {
    await mallory.gossip.stop()
    await mallory.libp2p.stop()
  })

  async function receipt (over: Partial<ReceiptBody> = {}): Promise<SignedReceipt> {
    const body: ReceiptBody = {
      job: crypto.getRandomValues(new Uint8Array(16)), nonce: crypto.getRandomValues(new Uint8Array(16)), kind: 'inference',
      server: a.peerId, client: b.peerId, model: MODEL, units: 1000, cached: false, output: sha256Of(utf8('text')), round: ROUND, ts: Date.now(), ...over
    }
    return await countersign(await signAsClient(body, b.signer), a.signer)
  }

  /**
   * Every event and validator verdict a node produced while `during` ran, and then until `verdicts`
   * validator verdicts and as many events (or `events`) were in: each message a test sends ends in
   * exactly one verdict, so waiting for them proves that whatever did not arrive was not delivered.
   */
  async function watch (node: TestNode, during: () => Promise<void>, settle: { verdicts: number, events?: number }): Promise<{ received: string[], invalid: Array<{ from: string, error: HyperspaceError }>, verdicts: TopicValidatorResult[] }> {
    const received: string[] = []
    const invalid: Array<{ from: string, error: HyperspaceError }> = []
    const verdicts: TopicValidatorResult[] = []
    const onReceipt = (evt: CustomEvent<SignedReceipt>): void => { received.push(receiptId(evt.detail.body)) }
    const onInvalid = (evt: CustomEvent<{ peerId: { toString: () => string }, error: HyperspaceError }>): void => { invalid.push({ from: evt.detail.peerId.toString(), error: evt.detail.error }) }
    const original = node.gossip.validate.bind(node.gossip)
    const spy = vi.spyOn(node.gossip, 'validate').mockImplementation(async (peer, msg) => {
      const verdict = await original(peer, msg)
      if (msg.topic === topic()) verdicts.push(verdict)
      return verdict
    })
    node.gossip.addEventListener('receipt', onReceipt)
    node.gossip.addEventListener('invalid', onInvalid)
    try {
      await during()
      await until(() => verdicts.length >= settle.verdicts && received.length + invalid.length >= (settle.events ?? settle.verdicts), `${settle.verdicts} verdicts`)
    } finally {
      node.gossip.removeEventListener('receipt', onReceipt)
      node.gossip.removeEventListener('invalid', onInvalid)
      spy.mockRestore()
    }
    return { received, invalid, verdicts }
  }

  it('delivers a valid countersigned receipt to every other node', async () => {
    const r = await receipt()
    let atC: Awaited<ReturnType<typeof watch>> | undefined
    const atB = await watch(b, async () => {
      atC = await watch(c, async () => { await a.gossip.publish(r) }, { verdicts: 1 })
    }, { verdicts: 1 })
    await until(() => atC !== undefined, 'c')
    expect(atB.received).toEqual([receiptId(r.body)])
    expect(atB.verdicts).toEqual([TopicValidatorResult.Accept])
    expect(atB.invalid).toEqual([])
    expect(atC?.received ?? []).toContain(receiptId(r.body))
  })

  it('checks receipts of servers that are not established only within budgets, per server and in all; an established server\'s always', async () => {
    let checks = 0
    const counting: typeof verifyPulseSignature = async (...args) => { checks++; return await verifyPulseSignature(...args) }
    const gossip = new ReceiptGossip(a.libp2p, { networkId: NET, verify: counting, currentRound: () => ROUND, established: peer => peer === a.peerId, now: () => 1_000_000 })
    const verdict = async (r: SignedReceipt): Promise<TopicValidatorResult> =>
      await gossip.validate(mallory.libp2p.peerId, { type: 'signed', topic: topic(), data: encodeSignedReceipt(r) } as unknown as Message)
    // Two free keys sign receipts without end: past its server's budget, one is ignored unchecked.
    const verdicts: TopicValidatorResult[] = []
    for (let i = 0; i <= STRANGER_RECEIPTS_PER_SERVER.burst; i++) verdicts.push(await verdict(await countersign(await signAsClient({ ...(await receipt()).body, server: c.peerId }, b.signer), c.signer)))
    expect(verdicts.filter(v => v === TopicValidatorResult.Accept)).toHaveLength(STRANGER_RECEIPTS_PER_SERVER.burst)
    expect(verdicts.at(-1)).toBe(TopicValidatorResult.Ignore)
    expect(checks).toBe(2 * STRANGER_RECEIPTS_PER_SERVER.burst)
    // More server keys: all strangers together stop at theirs.
    let accepted = STRANGER_RECEIPTS_PER_SERVER.burst
    while (accepted < STRANGER_RECEIPTS.burst) {
      const server = pulseSigner(await generateKeyPair('Ed25519'))
      for (let i = 0; i < STRANGER_RECEIPTS_PER_SERVER.burst && accepted < STRANGER_RECEIPTS.burst; i++, accepted++) {
        expect(await verdict(await countersign(await signAsClient({ ...(await receipt()).body, server: server.peerId }, b.signer), server))).toBe(TopicValidatorResult.Accept)
      }
    }
    const another = pulseSigner(await generateKeyPair('Ed25519'))
    expect(await verdict(await countersign(await signAsClient({ ...(await receipt()).body, server: another.peerId }, b.signer), another))).toBe(TopicValidatorResult.Ignore)
    // An established server's receipt is checked and taken as ever.
    expect(await verdict(await receipt())).toBe(TopicValidatorResult.Accept)
  })

  it("forgeries naming a server that is not established do not spend that server's budget", async () => {
    const gossip = new ReceiptGossip(a.libp2p, { networkId: NET, verify: verifyPulseSignature, currentRound: () => ROUND, established: () => false, now: () => 1_000_000 })
    const verdict = async (r: SignedReceipt): Promise<TopicValidatorResult> =>
      await gossip.validate(mallory.libp2p.peerId, { type: 'signed', topic: topic(), data: encodeSignedReceipt(r) } as unknown as Message)
    const genuine = async (): Promise<SignedReceipt> => await countersign(await signAsClient({ ...(await receipt()).body, server: c.peerId }, b.signer), c.signer)
    // Mallory signs as client and makes up c's signature as server.
    for (let i = 0; i <= STRANGER_RECEIPTS_PER_SERVER.burst; i++) {
      const forged = { ...(await signAsClient({ ...(await receipt()).body, server: c.peerId, client: mallory.peerId }, mallory.signer)), serverSig: crypto.getRandomValues(new Uint8Array(64)) }
      expect(await verdict(forged)).toBe(TopicValidatorResult.Reject)
    }
    for (let i = 0; i < STRANGER_RECEIPTS_PER_SERVER.burst; i++) expect(await verdict(await genuine())).toBe(TopicValidatorResult.Accept)
    expect(await verdict(await genuine())).toBe(TopicValidatorResult.Ignore)
  })

  it('rejects a forged or unsigned receipt and reports the sender', async () => {
    const r = await receipt()
    const serverSig = new Uint8Array(r.serverSig as Uint8Array)
    serverSig[5] = (serverSig[5] as number) ^ 0x40
    const forged = encodeSignedReceipt({ ...r, serverSig })
    const unsigned = encodeSignedReceipt(await signAsClient({ ...r.body, job: crypto.getRandomValues(new Uint8Array(16)) }, b.signer))
    const atA = await watch(a, async () => {
      await mallory.libp2p.services.pubsub.publish(topic(), forged)
      await mallory.libp2p.services.pubsub.publish(topic(), unsigned)
    }, { verdicts: 2 })
    expect(atA.received).toEqual([])
    expect(atA.verdicts).toEqual([TopicValidatorResult.Reject, TopicValidatorResult.Reject])
    expect(atA.invalid.map(i => i.from)).toEqual([mallory.peerId, mallory.peerId])
    expect(atA.invalid[0]?.error).toBeInstanceOf(BadSignatureError)
    expect(atA.invalid[1]?.error).toBeInstanceOf(UnsignedReceiptError)
  })

  it('rejects a receipt claiming more units than one job can hold, and reports the sender', async () => {
    // A colluding client and server can sign anything between themselves; what one job can hold is
    // bounded by the protocol: max_tokens (1024), one embedding batch (64 texts), one block (1 MiB).
    const inflated = [
      await receipt({ units: 1025 }),
      await receipt({ kind: 'embedding', units: 65 }),
      await receipt({ kind: 'storage', units: 1024 * 1024 + 1 })
    ]
    const atCaps = [
      await receipt({ units: 1024 }),
      await receipt({ kind: 'embedding', units: 64 }),
      await receipt({ kind: 'storage', units: 1024 * 1024 })
    ]
    const atC = await watch(c, async () => {
      for (const r of [...inflated, ...atCaps]) await mallory.libp2p.services.pubsub.publish(topic(), encodeSignedReceipt(r))
    }, { verdicts: 6 })
    expect(atC.verdicts).toEqual([...inflated.map(() => TopicValidatorResult.Reject), ...atCaps.map(() => TopicValidatorResult.Accept)])
    expect(atC.invalid.map(i => [i.from, i.error.code])).toEqual(inflated.map(() => [mallory.peerId, 'ERR_RECEIPT_UNITS']))
    expect(atC.received).toEqual(atCaps.map(r => receiptId(r.body)))
  })

  it('a receipt verifies in every committee: it carries nothing committee-specific, and a third node takes it without blaming its forwarder', async () => {
    // With K > 1 committees each committee has its own seed chain, so the server and client of a job
    // and a node that forwards their receipt can each know a different seed for the round: receipts
    // of version 1 carried the client's seed, and the server or a forwarder of another committee
    // refused them (and blamed the honest forwarder). A receipt is now dated by its round alone.
    const atC = await watch(c, async () => {
      const result = await b.service.request(a.peerId, request('across committees'), () => {})
      expect(Object.keys(decodeMessage(result.receipt.bodyBytes, 2048, 2)).sort()).toEqual(['cached', 'client', 'job', 'kind', 'model', 'nonce', 'out', 'round', 'server', 'ts', 'units', 'v'])
      await b.libp2p.services.pubsub.publish(topic(), encodeSignedReceipt(result.receipt))
    }, { verdicts: 1 })
    expect(atC.invalid).toEqual([])
    expect(atC.verdicts).toEqual([TopicValidatorResult.Accept])
    expect(atC.received).toHaveLength(1)
  })

  /** A receipt message of wire version `v` around `body`, signed by both parties and forwarded by B: C ignores it and blames no one. */
  async function expectForwardIgnored (v: number, body: Uint8Array): Promise<void> {
    const cs = await b.signer.sign(concat(utf8('hyperspace-receipt/client/1'), body))
    const ss = await a.signer.sign(concat(utf8('hyperspace-receipt/server/1'), body, cs))
    const atC = await watch(c, async () => {
      await b.libp2p.services.pubsub.publish(topic(), new Uint8Array(encode({ v, body, cs, ss })))
    }, { verdicts: 1, events: 0 })
    expect(atC.verdicts).toEqual([TopicValidatorResult.Ignore])
    expect(atC.invalid).toEqual([])
    expect(atC.received).toEqual([])
  }

  it('ignores a receipt of another version without blaming the node that forwarded it', async () => {
    // A node on the previous release forwards version 1 receipts, which were valid for it.
    const body = new Uint8Array(encode({
      v: 1, job: crypto.getRandomValues(new Uint8Array(16)), nonce: crypto.getRandomValues(new Uint8Array(16)), kind: 'inference',
      server: a.peerId, client: b.peerId, model: MODEL, units: 10, out: sha256Of(utf8('text')), round: ROUND, seed: new Uint8Array(32), ts: Date.now()
    }))
    await expectForwardIgnored(1, body)
  })

  it('ignores a receipt of a kind of work this release does not know, without blaming the node that forwarded it', async () => {
    // A newer release's kind (proxy and orchestration were such): valid where it was made, so its forwarders are honest.
    const body = new Uint8Array(encode({
      v: 2, job: crypto.getRandomValues(new Uint8Array(16)), nonce: crypto.getRandomValues(new Uint8Array(16)), kind: 'teleport',
      server: a.peerId, client: b.peerId, model: MODEL, units: 10, cached: false, out: sha256Of(utf8('text')), round: ROUND, ts: Date.now()
    }))
    await expectForwardIgnored(2, body)
  })

  it('ignores a replayed or stale receipt without blaming the sender', async () => {
    const r = await receipt()
    const first = await watch(c, async () => { await a.gossip.publish(r) }, { verdicts: 1 })
    expect(first.received).toEqual([receiptId(r.body)])
    // The same receipt again, from another node (a new gossip message, so gossip's own dedup does not catch it).
    const stale = await receipt({ round: ROUND - 10 })
    const again = await watch(c, async () => {
      await b.libp2p.services.pubsub.publish(topic(), encodeSignedReceipt(r))
      await b.libp2p.services.pubsub.publish(topic(), encodeSignedReceipt(stale))
    }, { verdicts: 2, events: 0 })
    expect(again.verdicts).toEqual([TopicValidatorResult.Ignore, TopicValidatorResult.Ignore])
    expect(again.received).toEqual([])
    expect(again.invalid).toEqual([])
    // The publisher itself refuses to publish a receipt twice.
    expect(await rejectionOf(a.gossip.publish(r))).toBeInstanceOf(HyperspaceError)
  })
})
