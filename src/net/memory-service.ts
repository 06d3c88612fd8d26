import { JobService } from './job-service.ts'
import { PeerStreams } from './peer-streams.ts'
import { retryLostStream, type JobStreamOpener } from './job-streams.ts'
import { abortStream, closeStream, readFrame, withTimeout } from './stream-helpers.ts'
import { lpStream } from '@libp2p/utils'
import {
  BadSignatureError, InvalidVectorError, MalformedMessageError, MemoryVersionAheadError, OversizeMessageError, PeerBusyError, errorMessage
} from '../core/errors.ts'
import { MEMORY_LIMITS, MEMORY_SERVING } from '../core/memory/limits.ts'
import { errorFrame } from '../core/wire/frame.ts'
import { spaceDims } from '../core/memory/spaces.ts'
import {
  MEMORY_PROTOCOL, MEMORY_REQUEST_MAX_BYTES, MemoryOffError, RemoteMemoryError, decodeMemoryRequest, decodeMemoryResponse, encodeMemoryRequest, encodeMemoryResponse, memoryResponseMaxBytes, verifyMemoryPut,
  type MemoryPut, type MemoryQuery, type MemoryRequest, type MemoryResponse, type SignedHit
} from '../core/wire/memory.ts'
import { PeerRateLimit } from '../core/jobs/admission.ts'
import type { PulseVerifier } from '../core/crypto/signing.ts'
import type { Scheduler } from '../core/scheduler.ts'
import type { PutOutcome, SignedVector, VectorStore } from '../storage/vector-store.ts'
import type { Libp2p, Stream } from '@libp2p/interface'

export interface MemoryServiceOptions {
  /** How job streams reach a peer (default: over whichever connection exists). */
  streams?: JobStreamOpener
  /** Signatures of puts are for this network only. */
  networkId: string
  store: VectorStore
  /** Checks an owner's signature of a put. */
  verify: PulseVerifier
  /** A peer without a verified pulse history in this node's view: its puts share the newcomers' budget, its requests fewer places. */
  isNewcomer: (peer: string) => boolean
  /** The memory capability is on and the store is loaded. */
  serving: () => boolean
  /** Its clock also times the queries served. */
  scheduler: Scheduler
  /** Puts one peer may send: re-replication pushes thousands in a burst. */
  putRateLimit: PeerRateLimit
  /** Queries one peer may send (default MEMORY_SERVING.queriesPerMinute, MEMORY_SERVING.queryBurst). */
  queryRateLimit?: PeerRateLimit
  /** A peer sent a malformed, oversize or badly signed request. */
  onInvalid?: (peerId: string, reason: string) => void
}

const MINUTE_MS = 60_000

/** The error frame's code and message, in the memory protocol's own response shape. */
function refusal (err: unknown): MemoryResponse {
  const { code, message } = errorFrame(err)
  return { type: 'error', code, message }
}

/** What only a broken or hostile peer sends (a version mismatch can be an honest older node). */
function isInvalid (err: unknown): boolean {
  return err instanceof MalformedMessageError || err instanceof OversizeMessageError || err instanceof BadSignatureError
}

/** The time spent on peers' queries, each as measured when it ended, over the last minute. */
class QueryTime {
  private readonly spans: Array<{ end: number, ms: number }> = []
  private total = 0

  /** Milliseconds spent on queries that ended in the minute before `now`. */
  lastMinute (now: number): number {
    for (let first = this.spans[0]; first !== undefined && first.end <= now - MINUTE_MS; first = this.spans[0]) {
      this.spans.shift()
      this.total -= first.ms
    }
    return this.total
  }

  add (start: number, end: number): void {
    if (end <= start) return
    this.spans.push({ end, ms: end - start })
    this.total += end - start
  }
}

/**
 * `/hyperspace/memory/1.0.0` on both sides: one request and one response per stream. Serves signed
 * puts (stored when the store's owner, version and budget checks pass) and queries (top k by cosine
 * in one space) from this node's VectorStore, and sends this node's requests to peers. A refusal
 * travels as an error frame naming what was refused; nothing a peer sends can do more than end its
 * own stream.
 */
export class MemoryService extends JobService {
  /** Requests that arrived and are being answered, from all peers. */
  private answering = 0
  /** Of those, from senders without a verified history. */
  private newcomersAnswering = 0
  private readonly streamsByPeer = new PeerStreams(MEMORY_SERVING.maxStreamsPerPeer)
  private readonly queryRateLimit: PeerRateLimit
  private readonly queryTime = new QueryTime()

  constructor (libp2p: Libp2p, private readonly options: MemoryServiceOptions) {
    super(libp2p, MEMORY_PROTOCOL, 32, options.streams)
    this.queryRateLimit = options.queryRateLimit ?? new PeerRateLimit(MEMORY_SERVING.queriesPerMinute, MEMORY_SERVING.queryBurst)
  }

  /** Sends an owner's signed put; resolves with what the holder did, rejects with what it refused. */
  async put (peerId: string, put: SignedVector, signal?: AbortSignal): Promise<PutOutcome> {
    const response = await this.request(peerId, { type: 'put', ...put }, signal)
    if ((response.type !== 'stored' && response.type !== 'held') || response.key !== put.key) {
      throw new RemoteMemoryError(peerId, 'ERR_MALFORMED_MESSAGE', `answered a put with ${response.type}`)
    }
    return response.type
  }

  async query (peerId: string, query: Omit<MemoryQuery, 'type'>, signal?: AbortSignal): Promise<SignedHit[]> {
    const response = await this.request(peerId, { type: 'query', ...query }, signal)
    if (response.type !== 'hits') throw new RemoteMemoryError(peerId, 'ERR_MALFORMED_MESSAGE', `answered a query with ${response.type}`)
    return response.hits.slice(0, query.k)
  }

  /** Puts and queries are idempotent: a lost stream is tried once more. */
  private async request (peerId: string, request: MemoryRequest, signal?: AbortSignal): Promise<MemoryResponse> {
    return await retryLostStream(this.libp2p, peerId, async () => await this.exchange(peerId, request, signal), signal !== undefined ? { signal } : {})
  }

  private async exchange (peerId: string, request: MemoryRequest, signal?: AbortSignal): Promise<MemoryResponse> {
    const deadline = withTimeout(signal, MEMORY_SERVING.requestTimeoutMs)
    const stream = await this.streams.open(peerId, MEMORY_PROTOCOL, deadline)
    try {
      const maxBytes = memoryResponseMaxBytes(request)
      const lp = lpStream(stream, { maxDataLength: maxBytes })
      await lp.write(encodeMemoryRequest(request), { signal: deadline })
      const response = decodeMemoryResponse((await lp.read({ signal: deadline })).subarray(), maxBytes)
      await closeStream(stream)
      if (response.type === 'error') throw new RemoteMemoryError(peerId, response.code, response.message)
      return response
    } catch (err) {
      abortStream(stream, err)
      throw err
    }
  }

  protected async serve (stream: Stream, from: string): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: MEMORY_REQUEST_MAX_BYTES })
    const deadline = AbortSignal.timeout(MEMORY_SERVING.requestTimeoutMs)
    // One of the peer's own places before its frame is read; one of the node's once it has arrived.
    const release = this.streamsByPeer.take(from)
    try {
      let response: MemoryResponse
      try {
        if (release === undefined) throw new PeerBusyError(this.self)
        response = await this.admitted(from, decodeMemoryRequest(await readFrame(lp, deadline, MEMORY_REQUEST_MAX_BYTES)))
      } catch (err) {
        if (isInvalid(err)) this.options.onInvalid?.(from, `memory: ${errorMessage(err)}`)
        response = refusal(err)
      }
      await lp.write(encodeMemoryResponse(response), { signal: deadline })
      await closeStream(stream)
    } finally {
      release?.()
    }
  }

  private get self (): string {
    return this.libp2p.peerId.toString()
  }

  /** Answers a request that arrived, in one of the node's places; busy when none is free. */
  private async admitted (from: string, request: MemoryRequest): Promise<MemoryResponse> {
    const newcomer = this.options.isNewcomer(from)
    if (this.answering >= MEMORY_SERVING.maxInFlight || (newcomer && this.newcomersAnswering >= MEMORY_SERVING.newcomersInFlight)) throw new PeerBusyError(this.self)
    this.answering++
    if (newcomer) this.newcomersAnswering++
    try {
      return request.type === 'query' ? await this.answerQuery(from, request) : await this.answerPut(from, request)
    } finally {
      this.answering--
      if (newcomer) this.newcomersAnswering--
    }
  }

  /** Busy while the node has spent its share of the minute on queries, or past the peer's query rate. */
  private async answerQuery (from: string, request: MemoryQuery): Promise<MemoryResponse> {
    const o = this.options
    const start = o.scheduler.now()
    if (this.queryTime.lastMinute(start) >= MEMORY_SERVING.queryMsPerMinute || !this.queryRateLimit.take(from, start)) throw new PeerBusyError(this.self)
    this.checkServable(request)
    const found = o.store.query(request.space, request.vector, request.k)
    // The search is the work the budget bounds; reading k records back is small and waits on IndexedDB.
    this.queryTime.add(start, o.scheduler.now())
    return { type: 'hits', hits: await o.store.signedHits(request.space, request.vector.length, found.map(hit => hit.key)) }
  }

  private async answerPut (from: string, request: MemoryPut): Promise<MemoryResponse> {
    const o = this.options
    if (!o.putRateLimit.take(from, o.scheduler.now())) throw new PeerBusyError(this.self)
    this.checkServable(request)
    if (request.version - o.scheduler.now() > MEMORY_LIMITS.versionAheadMs) throw new MemoryVersionAheadError(request.version, MEMORY_LIMITS.versionAheadMs)
    await verifyMemoryPut(o.networkId, request, o.verify)
    return { type: await o.store.put(request, { newcomer: o.isNewcomer(request.owner) }), key: request.key }
  }

  /** Memory is served here, and the vector has its space's dimensions. */
  private checkServable (request: MemoryRequest): void {
    if (!this.options.serving()) throw new MemoryOffError()
    const dims = spaceDims(request.space)
    if (dims !== undefined && request.vector.length !== dims) throw new InvalidVectorError(`${request.vector.length} dimensions in space ${request.space} of ${dims}`)
  }
}
