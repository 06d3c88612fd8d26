import { JobStreams, retryLostStream, type JobStreamOpener } from './job-streams.ts'
import { abortStream, withTimeout } from './stream-helpers.ts'
import { lpStream } from '@libp2p/utils'
import { HyperspaceError, InvalidVectorError, PeerBusyError, errorMessage } from '../core/errors.ts'
import { spaceDims } from '../core/memory/spaces.ts'
import {
  MEMORY_REQUEST_MAX_BYTES, MEMORY_RESPONSE_MAX_BYTES, decodeMemoryRequest, decodeMemoryResponse, encodeMemoryRequest, encodeMemoryResponse,
  type MemoryPut, type MemoryQuery, type MemoryRequest, type MemoryResponse
} from '../core/memory/codec.ts'
import type { PeerRateLimit } from '../core/inference/admission.ts'
import type { MemoryHit } from '../core/memory/merge.ts'
import type { Scheduler } from '../core/scheduler.ts'
import type { VectorStore } from '../storage/vector-store.ts'
import type { Connection, Libp2p, Stream } from '@libp2p/interface'

export const MEMORY_PROTOCOL = '/hyperspace/memory/1.0.0'

/** A peer refused or failed a memory request; `code` is the peer's ERR_ code. */
export class RemoteMemoryError extends HyperspaceError {
  override name = 'RemoteMemoryError'

  constructor (peerId: string, code: string, message: string) { super(code.startsWith('ERR_') ? code : 'ERR_REMOTE', `Peer ${peerId}: ${message}`) }
}

export class MemoryQuotaError extends HyperspaceError {
  override name = 'MemoryQuotaError'

  constructor (quota: number) { super('ERR_MEMORY_QUOTA', `This node already holds ${quota} vectors from you, its limit per peer`) }
}

export class MemoryOffError extends HyperspaceError {
  override name = 'MemoryOffError'

  constructor () { super('ERR_MEMORY_OFF', 'This node does not serve memory') }
}

export interface MemoryServiceOptions {
  /** How job streams reach a peer (default: over whichever connection exists). */
  streams?: JobStreamOpener
  store: VectorStore
  /** The memory capability is on and the store is loaded. */
  serving: () => boolean
  scheduler: Scheduler
  rateLimit: PeerRateLimit
  /** Vectors one peer may have stored on this node. */
  quotaPerPeer: number
}

/** A peer that does not answer in this time is counted as failed; a put or query is one small frame each way. */
export const MEMORY_REQUEST_TIMEOUT_MS = 5_000


function refusal (err: unknown): MemoryResponse {
  const code = err instanceof HyperspaceError ? err.code : 'ERR_INTERNAL'
  return { type: 'error', code, message: errorMessage(err).slice(0, 500) }
}

/**
 * `/hyperspace/memory/1.0.0` on both sides: one request and one response per stream. Serves puts
 * (store or replace, within the per-peer quota and rate limit) and queries (top k by cosine in one
 * space) from this node's VectorStore, and sends this node's requests to peers. A refusal travels as
 * an error frame; nothing a peer sends can do more than end its own stream.
 */
export class MemoryService {
  private readonly streams: JobStreamOpener

  constructor (private readonly libp2p: Libp2p, private readonly options: MemoryServiceOptions) {
    this.streams = options.streams ?? new JobStreams(libp2p)
  }

  async start (): Promise<void> {
    await this.libp2p.handle(MEMORY_PROTOCOL, this.onStream, { maxInboundStreams: 32, runOnLimitedConnection: true })
  }

  async stop (): Promise<void> {
    await this.libp2p.unhandle(MEMORY_PROTOCOL)
  }

  async put (peerId: string, put: Omit<MemoryPut, 'type'>, signal?: AbortSignal): Promise<void> {
    const response = await this.request(peerId, { type: 'put', ...put }, signal)
    if (response.type !== 'stored' || response.key !== put.key) throw new RemoteMemoryError(peerId, 'ERR_MALFORMED_MESSAGE', `answered a put with ${response.type}`)
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

  private readonly onStream = (stream: Stream, connection: Connection): void => {
    this.serve(stream, connection.remotePeer.toString()).catch(err => {
      abortStream(stream, err)
    })
  }

  private async serve (stream: Stream, from: string): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: MEMORY_REQUEST_MAX_BYTES })
    const deadline = AbortSignal.timeout(MEMORY_REQUEST_TIMEOUT_MS)
    let response: MemoryResponse
    try {
      const request = decodeMemoryRequest((await lp.read({ signal: deadline })).subarray())
      response = await this.answer(request, from)
    } catch (err) {
      response = refusal(err)
    }
    await lp.write(encodeMemoryResponse(response), { signal: deadline })
    await stream.close()
  }

  private async answer (request: MemoryRequest, from: string): Promise<MemoryResponse> {
    const o = this.options
    if (!o.serving()) throw new MemoryOffError()
    if (!o.rateLimit.take(from, o.scheduler.now())) throw new PeerBusyError(this.libp2p.peerId.toString())
    const dims = spaceDims(request.space)
    if (dims !== undefined && request.vector.length !== dims) throw new InvalidVectorError(`${request.vector.length} dimensions in space ${request.space} of ${dims}`)
    if (request.type === 'query') {
      return { type: 'hits', hits: o.store.query(request.space, request.vector, request.k) }
    }
    // Replacing a key costs no quota: the count it would add is already held.
    if (!o.store.has(request.key) && o.store.countFrom(from) >= o.quotaPerPeer) throw new MemoryQuotaError(o.quotaPerPeer)
    await o.store.put({ key: request.key, space: request.space, vector: request.vector, meta: request.meta, version: request.version, from })
    return { type: 'stored', key: request.key }
  }
}
