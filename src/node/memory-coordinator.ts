import { HyperspaceError, InvalidRequestError, InvalidVectorError, errorMessage } from '../core/errors.ts'
import { spaceDims } from '../core/memory/spaces.ts'
import type { JobStreamOpener } from '../net/job-streams.ts'
import { isFiniteVector, norm } from '../core/embedding/vectors.ts'
import { PeerRateLimit } from '../core/jobs/admission.ts'
import { MEMORY_LIMITS, queryPeerLimit } from '../core/memory/limits.ts'
import { utf8 } from '../core/crypto/bytes.ts'
import { FORGED_HIT, mergeAnswers, type HolderAnswer } from '../core/memory/merge.ts'
import { holdersAmong, holdersFor, keyHash, placePeers } from '../core/memory/placement.ts'
import { isSignedHit, memoryResponseMaxBytes, signMemoryPut, type SignedHit } from '../core/wire/memory.ts'
import { MemoryService } from '../net/memory-service.ts'
import type { MemoryApi, MemoryInput, MemoryOptions, MemoryPutResult, MemoryQueryResult } from './api.ts'
import type { Availability } from '../core/capabilities.ts'
import type { PulseSigner, PulseVerifier } from '../core/crypto/signing.ts'
import { pauseFor, type Scheduler } from '../core/scheduler.ts'
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
/** Peer-set changes come in bursts (a page closing drops several connections): one repair per burst. */
const REPAIR_DEBOUNCE_MS = 500
/** Registry entries expire silently; this is how soon a repair notices. */
const REPAIR_CHECK_MS = 10_000
/** Pushes to one new holder in flight at once. */
const PUSH_CONCURRENCY = 4
const BUSY_RETRY_MS = 1_000
const BUSY_RETRIES = 5
/**
 * Repairs run again at each check (REPAIR_CHECK_MS) while one of their pushes or hand-offs failed (a
 * timeout, a busy or lost stream, a holder's passing error), at most this many times: a repair runs
 * only when the peers change, so a push lost to a passing failure left a key short of a copy for good.
 */
const REPAIR_ATTEMPTS = 6

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
  /** The holder candidates at the last repair: the keys' old holders are computed from it. */
  private lastPeers = new Set<string>()
  /** A repair some of whose pushes or hand-offs failed: the candidates before it, and how often it ran. */
  private unfinished?: { before: string[], attempts: number }
  private repairing?: Promise<void>
  private repairAgain = false
  private cancelRepair?: () => void
  private stopCheck?: () => void
  private stopped = false
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
  }

  private get self (): string {
    return this.libp2p.peerId.toString()
  }

  private isNewcomer (owner: string): boolean {
    return owner !== this.self && !this.o.established(owner)
  }

  async start (): Promise<void> {
    await this.service.start()
    this.lastPeers = new Set(this.candidates())
    this.stopCheck = this.o.scheduler.every(REPAIR_CHECK_MS, () => { this.peersChanged() })
    this.sync()
  }

  async stop (): Promise<void> {
    this.stopped = true
    this.stopCheck?.()
    this.cancelRepair?.()
    await this.service.stop()
    await this.repairing
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

  /** The set of memory peers may have changed: re-replicate soon (once per burst of changes). */
  peersChanged (): void {
    if (this.stopped || this.cancelRepair !== undefined) return
    this.cancelRepair = this.o.scheduler.after(REPAIR_DEBOUNCE_MS, () => {
      this.cancelRepair = undefined
      this.repair()
    })
  }

  private repair (): void {
    if (this.repairing !== undefined) {
      this.repairAgain = true
      return
    }
    this.repairing = this.repairOnce().catch(err => { console.warn('hyperspace: memory re-replication failed', err) }).finally(() => {
      this.repairing = undefined
      if (this.repairAgain && !this.stopped) {
        this.repairAgain = false
        this.repair()
      }
    })
  }

  /**
   * For each key held where this node is among the R closest candidates now, pushes the vector to
   * the holders that were not holders before the change: a departed holder's replacement, or a new
   * peer that is closer. Every remaining holder pushes (an idempotent put), so no one needs to agree
   * on who does it. A key this node is no longer among the R closest for is handed off.
   */
  /** Queries this one peer, without its own store or the others: a spot-check of its memory (capability-prober.ts). */
  async queryOn (peerId: string, space: string, vector: Float32Array, { signal }: CancelOptions = {}): Promise<void> {
    await this.service.query(peerId, { space, vector, k: 1 }, signal)
  }

  private async repairOnce (): Promise<void> {
    const current = this.candidates()
    const before = this.unfinished?.before ?? [...this.lastPeers]
    // Announcements repeat every 30 s: most calls find the same peers and have nothing to do.
    if (this.unfinished === undefined && current.length === before.length && current.every(p => this.lastPeers.has(p))) return
    this.lastPeers = new Set(current)
    if (!this.holding()) return
    const self = this.self
    const pushes = new Map<string, string[]>()
    const handoffs: Array<{ key: string, holders: string[] }> = []
    // Each peer is placed once per repair, not once per key: announcements of fresh keys start a
    // repair every debounce, and a holder may hold tens of thousands of keys.
    const [placedNow, placedBefore] = [placePeers(current), placePeers(before)]
    for (const key of this.o.store.keys()) {
      const hash = keyHash(key)
      const now = holdersAmong(hash, placedNow, this.replicas)
      if (!now.includes(self)) {
        if (now.length === this.replicas) handoffs.push({ key, holders: now })
        continue
      }
      const was = new Set(holdersAmong(hash, placedBefore, this.replicas))
      for (const target of now) {
        if (target === self || was.has(target)) continue
        const keys = pushes.get(target)
        if (keys === undefined) pushes.set(target, [key])
        else keys.push(key)
      }
    }
    const pushed = await Promise.all([...pushes].map(async ([target, keys]) => await this.pushAll(target, keys)))
    const handed = await this.handOff(handoffs)
    if (pushed.every(Boolean) && handed) {
      this.unfinished = undefined
      return
    }
    const attempts = (this.unfinished?.attempts ?? 0) + 1
    this.unfinished = attempts < REPAIR_ATTEMPTS ? { before, attempts } : undefined
    if (this.unfinished === undefined) console.warn(`hyperspace: memory re-replication still incomplete after ${attempts} attempts; it runs again when the peers change`)
  }

  /**
   * An extra copy (a closer peer joined) is deleted only once each of the R holders it is due to holds
   * it: each answered the put stored or held, or refused it as stale (it holds a newer version of the
   * same owner), so nothing is lost. Their word is all there is to go by, so at least one of them must
   * be established: fresh keys placed closest to a key and answering "stored" would otherwise have
   * every honest holder drop it. They are sent the copy all the same.
   */
  /** Whether every hand-off went as far as it could: false when a push of one failed (not for want of an established holder). */
  private async handOff (handoffs: Array<{ key: string, holders: string[] }>): Promise<boolean> {
    const queue = [...handoffs]
    let complete = true
    const worker = async (): Promise<void> => {
      for (let next = queue.shift(); next !== undefined && !this.stopped; next = queue.shift()) {
        const put = await this.o.store.signed(next.key)
        if (put === undefined) continue
        const results = await Promise.allSettled(next.holders.map(async holder => { await this.pushOne(holder, put) }))
        const taken = results.every(r => r.status === 'fulfilled' || (r.reason instanceof HyperspaceError && r.reason.code === 'ERR_MEMORY_STALE'))
        if (!taken) complete = false
        if (taken && next.holders.some(holder => this.o.established(holder)) && this.o.store.entry(next.key)?.version === put.version) await this.o.store.delete(next.key)
      }
    }
    await Promise.all(Array.from({ length: PUSH_CONCURRENCY }, worker))
    if (handoffs.length > 0) this.o.onChange()
    return complete
  }

  /** Whether every push went. */
  private async pushAll (target: string, keys: string[]): Promise<boolean> {
    const queue = [...keys]
    let complete = true
    const worker = async (): Promise<void> => {
      for (let key = queue.shift(); key !== undefined && !this.stopped; key = queue.shift()) {
        const put = await this.o.store.signed(key)
        if (put === undefined) continue
        await this.pushOne(target, put).catch(err => {
          complete = false
          console.warn('hyperspace: could not re-replicate', key.slice(0, 64), 'to', target, errorMessage(err))
        })
      }
    }
    await Promise.all(Array.from({ length: PUSH_CONCURRENCY }, worker))
    return complete
  }

  private async pushOne (target: string, put: SignedVector): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.service.put(target, put)
        return
      } catch (err) {
        if (!(err instanceof HyperspaceError && err.code === 'ERR_PEER_BUSY') || attempt >= BUSY_RETRIES) throw err
        await pauseFor(this.o.scheduler, BUSY_RETRY_MS)
      }
    }
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
