import { HyperspaceError, InvalidRequestError, InvalidVectorError, errorMessage } from '../core/errors.ts'
import { spaceDims } from '../core/memory/spaces.ts'
import type { JobStreamOpener } from '../net/job-streams.ts'
import { isFiniteVector, norm } from '../core/embedding/vectors.ts'
import { PeerRateLimit } from '../core/jobs/admission.ts'
import { MEMORY_LIMITS, queryPeerLimit } from '../core/memory/limits.ts'
import { utf8 } from '../core/crypto/bytes.ts'
import { FORGED_HIT, mergeAnswers, type HolderAnswer } from '../core/memory/merge.ts'
import { holdersFor, keyHash } from '../core/memory/placement.ts'
import { isSignedHit, memoryResponseMaxBytes, signMemoryPut, type SignedHit } from '../core/wire/memory.ts'
import { MemoryService } from '../net/memory-service.ts'
import { MemoryRepair } from './memory-repair.ts'
import type { MemoryApi, MemoryInput, MemoryOptions, MemoryPutResult, MemoryQueryResult } from './api.ts'
import type { Availability } from '../core/capabilities.ts'
import type { PulseSigner, PulseVerifier } from '../core/crypto/signing.ts'
import type { Scheduler } from '../core/scheduler.ts'
import type { SignedVector, VectorStore } from '../storage/vector-store.ts'
import type { Libp2p } from '@libp2p/interface'
import type { CancelOptions } from '../core/progress.ts'

export interface MemoryCoordinatorOptions {
  /** How job streams reach peers (see src/net/job-streams.ts). */
  streams?: JobStreamOpener
  networkId: string
  scheduler: Scheduler
  /** Signs this node's puts: it owns the keys it writes. */
  signer: PulseSigner
  /** Checks the owner's signature of each put this node is sent. */
  verify: PulseVerifier
  /** The vectors this node holds, within its budgets. */
  store: VectorStore
  /**
   * A peer with a verified pulse history in this node's view (aged, or a bootstrap relay): owners
   * that are not share the newcomers' budget on this holder, since identities cost nothing.
   */
  established: (peerId: string) => boolean
  /** The memory capability is on: this node holds vectors for the network. */
  enabled: () => boolean
  /** The other peers whose memory works now (announced and not seen leaving since). */
  peers: () => string[]
  /** Embeds texts (here or on a peer) and says with which model. */
  embed: (texts: string[], signal?: AbortSignal) => Promise<{ model: string, vectors: number[][] }>
  replicas?: number
  /** Puts one peer may send per minute (and in a burst); its queries have a rate of their own (memory-service.ts). */
  putRate?: { perMinute: number, burst: number }
  /** The capability's state changed (the store loaded): status and announcement follow. */
  onChange: () => void
  /** A peer sent a malformed, oversize or badly signed request, or answered a query with a hit its owner did not sign. */
  onInvalid?: (peerId: string, reason: string) => void
}

export class MemoryPutError extends HyperspaceError {
  override name = 'MemoryPutError'

  constructor (key: string, failed: Array<{ holder: string, error: string }>) {
    super('ERR_MEMORY_PUT', failed.length === 0
      ? `No memory peer to store ${key.slice(0, 64)} on`
      : `No memory peer stored ${key.slice(0, 64)}: ${failed.map(f => `${f.holder}: ${f.error}`).join('; ')}`)
  }
}

/** Re-replication pushes thousands of puts in a burst; a client's own use is far below this. */
const DEFAULT_PUT_RATE = { perMinute: 6_000, burst: 500 }
function parseMeta (meta: string): unknown {
  if (meta === '') return undefined
  try {
    return JSON.parse(meta)
  } catch {
    return meta
  }
}

/**
 * The replicated vector memory on this node: `put` stores a vector on the R memory peers closest to
 * SHA-256(key), `query` asks every memory peer and merges their top k, and when the set of memory
 * peers changes (one leaves or joins) each key this node holds is pushed to the holders that the
 * change made new, so every key keeps R copies as long as one copy is left.
 */
export class MemoryCoordinator implements MemoryApi {
  private readonly service: MemoryService
  private readonly replicas: number
  private loading?: Promise<void>
  private failure?: string
  private readonly repairs: MemoryRepair
  /** The version of this node's last put: its versions increase even within one millisecond. */
  private lastVersion = 0

  constructor (private readonly libp2p: Libp2p, private readonly o: MemoryCoordinatorOptions) {
    this.replicas = o.replicas ?? MEMORY_LIMITS.defaultReplicas
    const putRate = o.putRate ?? DEFAULT_PUT_RATE
    this.service = new MemoryService(libp2p, {
      ...(o.streams !== undefined ? { streams: o.streams } : {}),
      ...(o.onInvalid !== undefined ? { onInvalid: o.onInvalid } : {}),
      networkId: o.networkId,
      store: o.store,
      verify: o.verify,
      isNewcomer: owner => this.isNewcomer(owner),
      serving: () => this.holding(),
      scheduler: o.scheduler,
      putRateLimit: new PeerRateLimit(putRate.perMinute, putRate.burst)
    })
    this.repairs = new MemoryRepair({
      scheduler: o.scheduler,
      store: o.store,
      replicas: this.replicas,
      self: this.self,
      candidates: () => this.candidates(),
      holding: () => this.holding(),
      established: o.established,
      put: async (target, put) => { await this.service.put(target, put) },
      onChange: o.onChange
    })
  }

  private get self (): string {
    return this.libp2p.peerId.toString()
  }

  private isNewcomer (owner: string): boolean {
    return owner !== this.self && !this.o.established(owner)
  }

  async start (): Promise<void> {
    await this.service.start()
    this.repairs.start()
    this.sync()
  }

  async stop (): Promise<void> {
    // The repair stops starting pushes at once; the service's stop ends those under way.
    const repaired = this.repairs.stop()
    await this.service.stop()
    await repaired
  }

  /** Loads the store when the capability is on; a load that failed is tried again on the next call. */
  sync (): void {
    if (!this.o.enabled() || this.o.store.loaded || this.loading !== undefined) return
    this.failure = undefined
    this.loading = this.o.store.load(this.o.networkId, owner => this.isNewcomer(owner)).then(() => {
      // Keys held from an earlier visit go to whoever should hold them now.
      this.peersChanged()
    }, err => {
      this.failure = errorMessage(err)
      console.warn('hyperspace: the vector store could not be loaded', this.failure)
    }).finally(() => {
      this.loading = undefined
      this.o.onChange()
    })
  }

  availability (): Availability {
    if (this.o.store.loaded) return { available: true }
    if (this.failure !== undefined) return { available: false, reason: `the vector store could not be loaded: ${this.failure}` }
    return { available: false, reason: 'loading the vector store' }
  }

  held (): number {
    return this.o.store.loaded ? this.o.store.size : 0
  }

  async put (key: string, input: MemoryInput, meta?: unknown, options: MemoryOptions = {}): Promise<MemoryPutResult> {
    if (typeof key !== 'string' || key === '' || utf8(key).byteLength > MEMORY_LIMITS.keyBytes) {
      throw new InvalidRequestError(`a key is a non-empty string of at most ${MEMORY_LIMITS.keyBytes} UTF-8 bytes`)
    }
    const metaText = meta === undefined ? '' : JSON.stringify(meta)
    if (typeof metaText !== 'string' || utf8(metaText).byteLength > MEMORY_LIMITS.metaBytes) {
      throw new InvalidRequestError(`meta must be JSON of at most ${MEMORY_LIMITS.metaBytes} UTF-8 bytes`)
    }
    const { space, vector } = await this.vectorOf(input, options)
    this.lastVersion = Math.max(this.o.scheduler.now(), this.lastVersion + 1)
    const put = await signMemoryPut(this.o.networkId, { space, key, vector, meta: metaText, version: this.lastVersion, owner: this.self }, this.o.signer)
    const ranked = holdersFor(keyHash(key), this.candidates(), Number.MAX_SAFE_INTEGER)
    const holders: string[] = []
    const failed: MemoryPutResult['failed'] = []
    // The R closest first; each that fails is replaced by the next closest, so R copies exist if R peers can take one.
    let next = 0
    while (holders.length < this.replicas && next < ranked.length) {
      const wave = ranked.slice(next, next + this.replicas - holders.length)
      next += wave.length
      const results = await Promise.allSettled(wave.map(async holder => { await this.putOn(holder, put, options.signal) }))
      results.forEach((result, i) => {
        const holder = wave[i] as string
        if (result.status === 'fulfilled') holders.push(holder)
        else failed.push({ holder, error: errorMessage(result.reason) })
      })
    }
    if (holders.length === 0) throw new MemoryPutError(key, failed)
    const order = new Map(ranked.map((id, i) => [id, i]))
    holders.sort((a, b) => (order.get(a) ?? 0) - (order.get(b) ?? 0))
    return { key, space, holders, stored: holders.length, failed }
  }

  async query (input: MemoryInput, k = 10, options: MemoryOptions = {}): Promise<MemoryQueryResult> {
    if (!Number.isInteger(k) || k < 1 || k > MEMORY_LIMITS.k) throw new InvalidRequestError(`k must be an integer from 1 to ${MEMORY_LIMITS.k}`)
    const { space, vector } = await this.vectorOf(input, options)
    // Established peers first: fresh keys announced earlier would otherwise fill every place.
    const listed = this.o.peers()
    const limit = queryPeerLimit(memoryResponseMaxBytes({ type: 'query', space, vector, k }))
    const peers = [...listed.filter(this.o.established), ...listed.filter(peer => !this.o.established(peer))].slice(0, limit)
    const asks: Array<Promise<HolderAnswer>> = peers.map(async holder => {
      try {
        return { holder, hits: await this.service.query(holder, { space, vector, k }, options.signal) }
      } catch (err) {
        return { holder, error: errorMessage(err) }
      }
    })
    if (this.holding()) asks.push(this.ownAnswer(space, vector, k))
    const verify = async (hit: SignedHit): Promise<boolean> => await isSignedHit(this.o.networkId, space, hit, this.o.verify)
    const merged = await mergeAnswers(await Promise.all(asks), vector, k, verify)
    for (const { holder, error } of merged.failed) if (error === FORGED_HIT) this.o.onInvalid?.(holder, `memory: ${error}`)
    return {
      space,
      hits: merged.hits.map(h => ({ key: h.key, owner: h.owner, score: h.score, meta: parseMeta(h.meta), holders: h.holders })),
      asked: merged.asked,
      answered: merged.answered
    }
  }

  /** This node's own store answers too; its puts were checked when they were stored. */
  private async ownAnswer (space: string, vector: Float32Array, k: number): Promise<HolderAnswer> {
    const holder = this.self
    try {
      const found = this.o.store.query(space, vector, k)
      return { holder, hits: await this.o.store.signedHits(space, vector.length, found.map(hit => hit.key)), trusted: true }
    } catch (err) {
      return { holder, error: errorMessage(err) }
    }
  }

  /** The set of memory peers may have changed: re-replicate soon (memory-repair.ts). */
  peersChanged (): void {
    this.repairs.peersChanged()
  }

  /** Queries this one peer, without its own store or the others: a spot-check of its memory (capability-prober.ts). */
  async queryOn (peerId: string, space: string, vector: Float32Array, { signal }: CancelOptions = {}): Promise<void> {
    await this.service.query(peerId, { space, vector, k: 1 }, signal)
  }

  private async putOn (holder: string, put: SignedVector, signal?: AbortSignal): Promise<void> {
    if (holder === this.self) await this.o.store.put(put)
    else await this.service.put(holder, put, signal)
  }

  /** This node holds vectors for the network: the capability is on and the store is loaded. */
  private holding (): boolean {
    return this.o.enabled() && this.o.store.loaded
  }

  /** The peers a key may be placed on: the memory peers, and this node when it holds memory. */
  private candidates (): string[] {
    const peers = this.o.peers().filter(p => p !== this.self)
    return this.holding() ? [...peers, this.self] : peers
  }

  private async vectorOf (input: MemoryInput, options: MemoryOptions): Promise<{ space: string, vector: Float32Array }> {
    if (typeof input === 'string') {
      const { model, vectors } = await this.o.embed([input], options.signal)
      const vector = checked(Float32Array.from(vectors[0] ?? []))
      return inSpace(options.space ?? model, vector)
    }
    if (!(input instanceof Float32Array) && !Array.isArray(input)) throw new InvalidRequestError('input must be a text or an array of numbers')
    const vector = checked(Float32Array.from(input))
    return inSpace(options.space ?? `raw-${vector.length}`, vector)
  }
}

function inSpace (space: string, vector: Float32Array): { space: string, vector: Float32Array } {
  const dims = spaceDims(space)
  if (dims !== undefined && vector.length !== dims) throw new InvalidVectorError(`${vector.length} dimensions in space ${space} of ${dims}`)
  return { space, vector }
}

function checked (vector: Float32Array): Float32Array {
  if (vector.length === 0 || vector.length > MEMORY_LIMITS.dims) throw new InvalidVectorError(`${vector.length} dimensions, not 1 to ${MEMORY_LIMITS.dims}`)
  if (!isFiniteVector(vector) || norm(vector) === 0) throw new InvalidVectorError('it must be finite and not zero')
  return vector
}
