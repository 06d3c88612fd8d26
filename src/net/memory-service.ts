import { JobService } from './job-service.ts'
import { retryLostStream, type JobStreamOpener } from './job-streams.ts'
import { abortStream, readFrame, withTimeout } from './stream-helpers.ts'
import { lpStream } from '@libp2p/utils'
import {
  BadSignatureError, HyperspaceError, InvalidVectorError, MalformedMessageError, MemoryVersionAheadError, OversizeMessageError, PeerBusyError, errorMessage
} from '../core/errors.ts'
import { MEMORY_LIMITS } from '../core/memory/limits.ts'
import { spaceDims } from '../core/memory/spaces.ts'
import {
  MEMORY_PROTOCOL, MEMORY_REQUEST_MAX_BYTES, MEMORY_RESPONSE_MAX_BYTES, MemoryOffError, RemoteMemoryError, decodeMemoryRequest, decodeMemoryResponse, encodeMemoryRequest, encodeMemoryResponse, verifyMemoryPut,
  type MemoryQuery, type MemoryRequest, type MemoryResponse
} from '../core/wire/memory.ts'
import type { PeerRateLimit } from '../core/jobs/admission.ts'
import type { MemoryHit } from '../core/memory/merge.ts'
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
  /** An owner without a verified pulse history in this node's view: its puts share the newcomers' budget. */
  isNewcomer: (owner: string) => boolean
  /** The memory capability is on and the store is loaded. */
  serving: () => boolean
  scheduler: Scheduler
  rateLimit: PeerRateLimit
  /** A peer sent a malformed, oversize or badly signed request. */
  onInvalid?: (peerId: string, reason: string) => void
}

/** A peer that does not answer in this time is counted as failed; a put or query is one small frame each way. */
export const MEMORY_REQUEST_TIMEOUT_MS = 5_000
/**
 * Requests served at once, from all peers together and from one peer: each holds its frame (up to
 * 17 KiB) and a place in the store's write line. Past either a request is answered busy before its
 * frame is read; one peer that stalls its requests holds a quarter of the places for 5 s at most.
 */
export const MEMORY_MAX_IN_FLIGHT = 64
export const MEMORY_MAX_IN_FLIGHT_PER_PEER = 16

function refusal (err: unknown): MemoryResponse {
  const code = err instanceof HyperspaceError ? err.code : 'ERR_INTERNAL'
  return { type: 'error', code, message: errorMessage(err).slice(0, 500) }
}

/** What only a broken or hostile peer sends (a version mismatch can be an honest older node). */
function isInvalid (err: unknown): boolean {
  return err instanceof MalformedMessageError || err instanceof OversizeMessageError || err instanceof BadSignatureError
}

/**
 * `/hyperspace/memory/1.0.0` on both sides: one request and one response per stream. Serves signed
 * puts (stored when the store's owner, version and budget checks pass) and queries (top k by cosine
 * in one space) from this node's VectorStore, and sends this node's requests to peers. A refusal
 * travels as an error frame naming what was refused; nothing a peer sends can do more than end its
 * own stream.
 */
export class MemoryService extends JobService {
  private inFlight = 0
  /** Requests in flight per peer; a peer is listed only while it has one. */
  private readonly inFlightFrom = new Map<string, number>()

  constructor (libp2p: Libp2p, private readonly options: MemoryServiceOptions) {
    super(libp2p, MEMORY_PROTOCOL, 32, options.streams)
  }

  /** Sends an owner's signed put; resolves with what the holder did, rejects with what it refused. */
  async put (peerId: string, put: SignedVector, signal?: AbortSignal): Promise<PutOutcome> {
    const response = await this.request(peerId, { type: 'put', ...put }, signal)
    if ((response.type !== 'stored' && response.type !== 'held') || response.key !== put.key) {
      throw new RemoteMemoryError(peerId, 'ERR_MALFORMED_MESSAGE', `answered a put with ${response.type}`)
    }
    return response.type
  }

  async query (peerId: string, query: Omit<MemoryQuery, 'type'>, signal?: AbortSignal): Promise<MemoryHit[]> {
    const response = await this.request(peerId, { type: 'query', ...query }, signal)
    if (response.type !== 'hits') throw new RemoteMemoryError(peerId, 'ERR_MALFORMED_MESSAGE', `answered a query with ${response.type}`)
    return response.hits.slice(0, query.k)
  }

  /** Puts and queries are idempotent: a lost stream is tried once more. */
  private async request (peerId: string, request: MemoryRequest, signal?: AbortSignal): Promise<MemoryResponse> {
    return await retryLostStream(this.libp2p, peerId, async () => await this.exchange(peerId, request, signal), signal !== undefined ? { signal } : {})
  }

  private async exchange (peerId: string, request: MemoryRequest, signal?: AbortSignal): Promise<MemoryResponse> {
    const deadline = withTimeout(signal, MEMORY_REQUEST_TIMEOUT_MS)
    const stream = await this.streams.open(peerId, MEMORY_PROTOCOL, deadline)
    try {
      const lp = lpStream(stream, { maxDataLength: MEMORY_RESPONSE_MAX_BYTES })
      await lp.write(encodeMemoryRequest(request), { signal: deadline })
      const response = decodeMemoryResponse((await lp.read({ signal: deadline })).subarray())
      await stream.close().catch(() => {})
      if (response.type === 'error') throw new RemoteMemoryError(peerId, response.code, response.message)
      return response
    } catch (err) {
      abortStream(stream, err)
      throw err
    }
  }

  protected async serve (stream: Stream, from: string): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: MEMORY_REQUEST_MAX_BYTES })
    const deadline = AbortSignal.timeout(MEMORY_REQUEST_TIMEOUT_MS)
    // Admitted before the frame is read, so a flood costs this node neither memory nor parsing; the
    // place is held until the answer is written (a client that does not read holds it until the deadline).
    const admitted = this.admit(from)
    try {
      let response: MemoryResponse
      try {
        if (!admitted) throw new PeerBusyError(this.libp2p.peerId.toString())
        response = await this.answer(decodeMemoryRequest(await readFrame(lp, deadline, MEMORY_REQUEST_MAX_BYTES)))
      } catch (err) {
        if (isInvalid(err)) this.options.onInvalid?.(from, `memory: ${errorMessage(err)}`)
        response = refusal(err)
      }
      await lp.write(encodeMemoryResponse(response), { signal: deadline })
      await stream.close()
    } finally {
      if (admitted) this.release(from)
    }
  }

  /** Takes a place among the requests in flight and one of the peer's tokens, or says there is none. */
  private admit (from: string): boolean {
    const o = this.options
    const fromPeer = this.inFlightFrom.get(from) ?? 0
    if (this.inFlight >= MEMORY_MAX_IN_FLIGHT || fromPeer >= MEMORY_MAX_IN_FLIGHT_PER_PEER || !o.rateLimit.take(from, o.scheduler.now())) return false
    this.inFlight++
    this.inFlightFrom.set(from, fromPeer + 1)
    return true
  }

  private release (from: string): void {
    this.inFlight--
    const fromPeer = (this.inFlightFrom.get(from) ?? 1) - 1
    if (fromPeer > 0) this.inFlightFrom.set(from, fromPeer)
    else this.inFlightFrom.delete(from)
  }

  private async answer (request: MemoryRequest): Promise<MemoryResponse> {
    const o = this.options
    if (!o.serving()) throw new MemoryOffError()
    const dims = spaceDims(request.space)
    if (dims !== undefined && request.vector.length !== dims) throw new InvalidVectorError(`${request.vector.length} dimensions in space ${request.space} of ${dims}`)
    if (request.type === 'query') {
      return { type: 'hits', hits: o.store.query(request.space, request.vector, request.k) }
    }
    if (request.version - o.scheduler.now() > MEMORY_LIMITS.versionAheadMs) throw new MemoryVersionAheadError(request.version, MEMORY_LIMITS.versionAheadMs)
    await verifyMemoryPut(o.networkId, request, o.verify)
    return { type: await o.store.put(request, { newcomer: o.isNewcomer(request.owner) }), key: request.key }
  }
}
