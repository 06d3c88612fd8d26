import '../../src/relay/polyfills.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { lpStream } from '@libp2p/utils'
import { encode } from 'cborg'
import fc from 'fast-check'
import { type Libp2p } from 'libp2p'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cidForBlock, type BlockCid } from '../../src/core/blocks/cid.ts'
import { BLOCKS_PROTOCOL, decodeBlocksClientFrame, decodeBlocksServerFrame, encodeBlocksClientFrame } from '../../src/core/wire/blocks.ts'
import {
  EMBED_PROTOCOL, decodeEmbedClientFrame, decodeEmbedServerFrame, decodeVectors, EMBED_JOB_FRAMES
} from '../../src/core/wire/embed.ts'
import { HyperspaceError, JobDeadlineError, StreamBudgetError } from '../../src/core/errors.ts'
import { answerBudget, FIRST_TOKEN_ALLOWANCE_MS, MAX_TOKEN_BYTES, PER_TOKEN_ALLOWANCE_MS } from '../../src/core/inference/answer-budget.ts'
import { JobQueue, PeerRateLimit } from '../../src/core/jobs/admission.ts'
import { validateChatRequest } from '../../src/core/inference/request.ts'
import { INFERENCE_JOB_FRAMES, INFERENCE_PROTOCOL, MAX_DELTA_CHARS, decodeClientFrame, encodeClientFrame } from '../../src/core/wire/inference.ts'
import { equalBytes, utf8 } from '../../src/core/crypto/bytes.ts'
import { systemScheduler } from '../../src/core/scheduler.ts'
import { BlockService } from '../../src/net/block-service.ts'
import { EmbedService } from '../../src/net/embed-service.ts'
import { InferenceService, type InferenceServiceOptions, type LocalRun } from '../../src/net/inference-service.ts'
import { pulseSigner, verifyPulseSignature } from '../../src/net/pulse-keys.ts'
import type { ValidChatRequest } from '../../src/core/inference/request.ts'
import type { PulseSigner } from '../../src/core/crypto/signing.ts'
import type { Stream } from '@libp2p/interface'
import { rejectionOf, sleep, until } from './waiting.ts'
import { memoryLibp2p } from './memory-libp2p.ts'

const { encodeClient: encodeEmbedClientFrame, encodeServer: encodeEmbedServerFrame } = EMBED_JOB_FRAMES
const { encodeServer: encodeServerFrame } = INFERENCE_JOB_FRAMES

/**
 * Streams against peers that break the rules: real libp2p nodes (memory transport, noise, yamux) run
 * the real services; the attacker is a raw stream driven by the test. A client that stops reading
 * pauses its stream, so flow control stops the server's writes exactly as a real one would.
 */

const ROUND = 90_000
const MODEL = 'stories260K'
/** The servers' write deadline here: short, so the tests wait for it and not for the real 10 s. */
const WRITE_TIMEOUT_MS = 400

interface Peer {
  libp2p: Libp2p
  signer: PulseSigner
}

async function makePeer (name: string): Promise<Peer> {
  const privateKey = await generateKeyPair('Ed25519')
  const libp2p = await memoryLibp2p(name, { privateKey })
  return { libp2p, signer: pulseSigner(privateKey) }
}

/** What every job service needs, around the given queue. */
function jobs (peer: Peer, queue: JobQueue): JobOptions {
  return {
    signer: peer.signer,
    verify: verifyPulseSignature,
    scheduler: systemScheduler,
    queue,
    rateLimit: new PeerRateLimit(600, 64),
    currentRound: () => ROUND,
    onReceipt: async () => {},
    writeTimeoutMs: WRITE_TIMEOUT_MS
  }
}

type JobOptions = Pick<InferenceServiceOptions, 'signer' | 'verify' | 'scheduler' | 'queue' | 'rateLimit' | 'currentRound' | 'onReceipt' | 'writeTimeoutMs'>

function request (maxTokens: number): ValidChatRequest {
  return validateChatRequest({ model: MODEL, messages: [{ role: 'user', content: 'hello' }], max_tokens: maxTokens, temperature: 0 })
}

/** Opens a raw stream from `from` to `to` and sends one frame; the caller reads or stalls. */
async function rawStream (from: Libp2p, to: Libp2p, protocol: string, first: Uint8Array): Promise<{ stream: Stream, lp: ReturnType<typeof lpStream> }> {
  const stream = await from.dialProtocol(to.peerId, protocol)
  const lp = lpStream(stream, { maxDataLength: 2 * 1024 * 1024 })
  await lp.write(first)
  return { stream, lp }
}

/** Resolves when the stream is gone (closed, reset or aborted). */
async function streamGone (stream: Stream): Promise<void> {
  if (stream.status !== 'open') return
  await new Promise<void>(resolve => { stream.addEventListener('close', () => { resolve() }, { once: true }) })
}

/** A client that stops reading holds the server's one slot until the write deadline frees it, and its stream ends. */
async function expectStalledReaderLosesSlot (stream: Stream, queue: JobQueue): Promise<void> {
  stream.pause()
  await until(() => queue.length === 1, 'the attacker to hold the slot')
  const heldAt = Date.now()
  await until(() => queue.length === 0, 'the slot to be freed', WRITE_TIMEOUT_MS + 3_000)
  expect(Date.now() - heldAt).toBeLessThan(WRITE_TIMEOUT_MS + 1_000)
  await streamGone(stream)
}

let serverPeer: Peer
let clientPeer: Peer
let server: Libp2p
let client: Libp2p
let attacker: Libp2p

beforeAll(async () => {
  const [s, c, a] = await Promise.all([makePeer('server'), makePeer('client'), makePeer('attacker')])
  serverPeer = s
  clientPeer = c
  server = s.libp2p
  client = c.libp2p
  attacker = a.libp2p
  await Promise.all([client, attacker].map(async n => await n.dial(server.getMultiaddrs())))
})

afterAll(async () => {
  await Promise.all([server, client, attacker].map(async n => { await n.stop() }))
})

describe('inference server: a client that stops reading', () => {
  it('loses its slot within the write deadline, the engine stops, and the next client is served', async () => {
    const queue = new JobQueue(1, 1)
    let engineStopped: unknown
    let stoppedAfter = 0
    let runs = 0
    const service = new InferenceService(server, {
      ...jobs(serverPeer, queue),
      serves: model => model === MODEL,
      // Each token is a long piece, so the answer outgrows the reader's flow-control window.
      run: async (req, onDelta, signal): Promise<LocalRun> => {
        runs++
        const stalling = runs === 1
        for (let i = 0; i < (stalling ? 10_000 : 3); i++) {
          if (signal.aborted) {
            engineStopped = signal.reason
            stoppedAfter = i
            throw signal.reason
          }
          onDelta(stalling ? 'x'.repeat(MAX_DELTA_CHARS) : `t${i} `)
          await sleep(1)
        }
        return { completion: { text: 't0 t1 t2 ', finishReason: 'stop', promptTokens: 1, completionTokens: 3 }, cached: false }
      }
    })
    await service.start()
    try {
      // The attacker stops reading at once, before flow control has widened its window.
      const { stream } = await rawStream(attacker, server, INFERENCE_PROTOCOL, encodeClientFrame({ t: 'job', job: new Uint8Array(16), req: request(1024) }))
      stream.pause()
      await until(() => queue.length === 1, 'the attacker to hold the slot')
      // The answer would take over ten seconds; the slot is free once the reader's window (256 KiB) is
      // full and the write deadline has passed.
      await until(() => queue.length === 0, 'the slot to be freed')
      await until(() => engineStopped !== undefined, 'the engine to be stopped')
      expect(engineStopped).toMatchObject({ name: 'StreamStalledError', code: 'ERR_STREAM_STALLED' })
      // Stopped mid-answer: the write deadline freed the slot, not the answer's end (state, not a stopwatch).
      expect(stoppedAfter).toBeGreaterThan(0)
      expect(stoppedAfter).toBeLessThan(10_000)
      await streamGone(stream)
      expect(stream.status).not.toBe('open')

      // The slot serves an honest client.
      const honest = new InferenceService(client, { ...jobs(clientPeer, new JobQueue(1, 0)), serves: () => false, run: async () => { throw new Error('not a server') } })
      const answer = await honest.request(server.peerId.toString(), request(8), () => {})
      expect(answer.completion.text).toBe('t0 t1 t2 ')
    } finally {
      await service.stop()
    }
  })
})

describe('inference client: a server that floods the answer', () => {
  /** A server that accepts and then sends `piece` as a delta until the stream is gone; resolves with the frames it got out. */
  function floodingServer (piece: string): { sent: () => number, done: Promise<unknown> } {
    let sent = 0
    let resolveDone: (reason: unknown) => void = () => {}
    const done = new Promise<unknown>(resolve => { resolveDone = resolve })
    void server.handle(INFERENCE_PROTOCOL, async stream => {
      const lp = lpStream(stream, { maxDataLength: 256 * 1024 })
      try {
        decodeClientFrame((await lp.read()).subarray())
        await lp.write(encodeServerFrame({ t: 'accept', nonce: new Uint8Array(16) }))
        for (;;) {
          await lp.write(encodeServerFrame({ t: 'delta', text: piece }))
          sent++
        }
      } catch (err) {
        resolveDone(err)
      }
    })
    return { sent: () => sent, done }
  }

  const honestClient = (): InferenceService => new InferenceService(client, { ...jobs(clientPeer, new JobQueue(1, 0)), serves: () => false, run: async () => { throw new Error('not a server') } })

  it('cuts off a server that sends more delta frames than max_tokens allows', async () => {
    const flood = floodingServer('a')
    try {
      const budget = answerBudget(8)
      const deltas: string[] = []
      const err = await rejectionOf(honestClient().request(server.peerId.toString(), request(8), text => { deltas.push(text) }))
      expect(err).toBeInstanceOf(StreamBudgetError)
      expect(err).toMatchObject({ code: 'ERR_STREAM_BUDGET' })
      expect(deltas).toHaveLength(budget.frames)
      // The stream is reset: the flood stops.
      await flood.done
      expect(flood.sent()).toBeLessThan(budget.frames + 400)
    } finally {
      await server.unhandle(INFERENCE_PROTOCOL)
    }
  })

  it('cuts off a server that sends more text than max_tokens allows', async () => {
    const flood = floodingServer('é'.repeat(MAX_DELTA_CHARS))
    try {
      const budget = answerBudget(8)
      let received = 0
      const err = await rejectionOf(honestClient().request(server.peerId.toString(), request(8), text => { received += utf8(text).byteLength }))
      expect(err).toBeInstanceOf(StreamBudgetError)
      expect((err as Error).message).toContain('bytes of text')
      expect(received).toBeLessThanOrEqual(budget.bytes)
      await flood.done
    } finally {
      await server.unhandle(INFERENCE_PROTOCOL)
    }
  })

  it('budgets the answer by max_tokens, with an overall deadline', () => {
    expect(answerBudget(1)).toEqual({ bytes: MAX_TOKEN_BYTES, frames: 2, deadlineMs: FIRST_TOKEN_ALLOWANCE_MS + PER_TOKEN_ALLOWANCE_MS })
    const largest = answerBudget(1024)
    expect(largest.bytes).toBe(256 * 1024)
    expect(largest.frames).toBe(1024 + 256)
    expect(largest.deadlineMs).toBe(30_000 + 512_000)
    expect(new JobDeadlineError('p', 1).code).toBe('ERR_JOB_DEADLINE')
  })
})

describe('block server: a client that stops reading', () => {
  it('loses its slot within the write deadline and the next client gets the block', async () => {
    const bytes = new Uint8Array(1024 * 1024).map((_, i) => i * 7 % 251)
    const cid = await cidForBlock(bytes)
    const queue = new JobQueue(1, 0)
    const blocks = new Map<string, Uint8Array>([[cid.toString(), bytes]])
    const service = new BlockService(server, {
      ...jobs(serverPeer, queue),
      serving: () => true,
      read: async (wanted: BlockCid) => blocks.get(wanted.toString())
    })
    await service.start()
    try {
      const { stream } = await rawStream(attacker, server, BLOCKS_PROTOCOL, encodeBlocksClientFrame({ t: 'want', cid, job: new Uint8Array(16) }))
      await expectStalledReaderLosesSlot(stream, queue)

      const honest = new BlockService(client, { ...jobs(clientPeer, new JobQueue(1, 0)), serving: () => false, read: async () => undefined })
      const fetched = await honest.fetch(server.peerId.toString(), cid)
      expect(equalBytes(fetched.block.bytes, bytes)).toBe(true)
    } finally {
      await service.stop()
    }
  })
})

describe('block server: a slow reader', () => {
  it('is waited for while it keeps taking some of the block', async () => {
    const bytes = new Uint8Array(1024 * 1024).map((_, i) => i * 13 % 251)
    const cid = await cidForBlock(bytes)
    const queue = new JobQueue(1, 0)
    const service = new BlockService(server, { ...jobs(serverPeer, queue), serving: () => true, read: async () => bytes })
    await service.start()
    try {
      const { stream, lp } = await rawStream(attacker, server, BLOCKS_PROTOCOL, encodeBlocksClientFrame({ t: 'want', cid, job: new Uint8Array(16) }))
      // Grants one flow-control window (256 KiB or so) at a time, a little more often than the write
      // deadline: the block takes longer than the deadline to arrive, but something moves within each.
      stream.pause()
      const trickle = setInterval(() => {
        stream.resume()
        stream.pause()
      }, WRITE_TIMEOUT_MS * 3 / 4)
      const started = Date.now()
      try {
        const frame = decodeBlocksServerFrame((await lp.read({ signal: AbortSignal.timeout(20_000) })).subarray())
        expect(frame.t === 'block' && equalBytes(frame.bytes, bytes)).toBe(true)
      } finally {
        clearInterval(trickle)
      }
      expect(Date.now() - started).toBeGreaterThan(WRITE_TIMEOUT_MS)
      stream.abort(new Error('done'))
    } finally {
      await service.stop()
    }
  })
})

describe('embed server: a client that stops reading', () => {
  it('loses its slot within the write deadline', async () => {
    const queue = new JobQueue(1, 0)
    const dims = 4096
    const service = new EmbedService(server, {
      ...jobs(serverPeer, queue),
      serves: () => true,
      run: async texts => ({ dims, vectors: texts.map(() => new Float32Array(dims).fill(0.5)) })
    })
    await service.start()
    try {
      // 64 vectors of 4096 dimensions: 1 MiB, more than the reader's window even after it has grown
      // during the protocol negotiation.
      const texts = Array.from({ length: 64 }, (_, i) => `text ${i}`)
      const { stream } = await rawStream(attacker, server, EMBED_PROTOCOL, encodeEmbedClientFrame({ t: 'job', job: new Uint8Array(16), model: 'all-MiniLM-L6-v2', texts }))
      await expectStalledReaderLosesSlot(stream, queue)
    } finally {
      await service.stop()
    }
  })
})

describe('frame decoders under fuzzing throw only named errors', () => {
  const decoders = {
    embedClient: decodeEmbedClientFrame,
    embedServer: decodeEmbedServerFrame,
    blocksClient: decodeBlocksClientFrame,
    blocksServer: decodeBlocksServerFrame
  }
  const types = ['job', 'sign', 'accept', 'busy', 'error', 'result', 'countersign', 'want', 'block', 'not-found', 'x']
  const fields = ['job', 'model', 'texts', 'receipt', 'nonce', 'retryMs', 'code', 'message', 'dims', 'count', 'vectors', 'cid', 'bytes']
  const value = fc.oneof(
    fc.string({ maxLength: 40 }), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null),
    fc.uint8Array({ maxLength: 80 }), fc.array(fc.string({ maxLength: 20 }), { maxLength: 5 }), fc.array(fc.integer(), { maxLength: 5 })
  )
  /** Maps shaped like frames (right version, a known type, plausible keys): they reach the field checks. */
  const frameLike = fc.record({
    v: fc.oneof(fc.constant(1), fc.integer()),
    t: fc.constantFrom(...types),
    rest: fc.dictionary(fc.constantFrom(...fields), value, { maxKeys: 6 })
  }).map(({ v, t, rest }) => encode({ ...rest, v, t }))

  const named = (decode: (bytes: Uint8Array) => unknown, bytes: Uint8Array): boolean => {
    try {
      decode(bytes)
      return true
    } catch (err) {
      return err instanceof HyperspaceError
    }
  }

  for (const [name, decode] of Object.entries(decoders)) {
    it(`${name}: random bytes`, () => {
      fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), bytes => named(decode, bytes)), { numRuns: 500 })
    })
    it(`${name}: frame-shaped maps`, () => {
      fc.assert(fc.property(frameLike, bytes => named(decode, bytes)), { numRuns: 1_000 })
    })
  }

  it('embed vectors: any bytes, dims and count', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 256 }), fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 8 }), (bytes, dims, count) => named(b => decodeVectors(b, dims, count), bytes)))
  })

  it('embed result frames with a single byte changed', () => {
    const valid = encodeEmbedServerFrame({ t: 'result', dims: 4, count: 2, vectors: new Uint8Array(32) })
    fc.assert(fc.property(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 }), (at, byte) => {
      const bytes = valid.slice()
      bytes[at] = byte
      return named(decodeEmbedServerFrame, bytes)
    }))
  })
})
