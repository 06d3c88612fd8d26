import { HyperspaceError, errorMessage } from '../core/errors.ts'
import { holdersAmong, keyHash, placePeers } from '../core/memory/placement.ts'
import { pauseFor, type Scheduler } from '../core/scheduler.ts'
import type { SignedVector, VectorStore } from '../storage/vector-store.ts'

export interface MemoryRepairOptions {
  scheduler: Scheduler
  /** The vectors this node holds. */
  store: VectorStore
  /** Copies each key keeps. */
  replicas: number
  /** This node's peer id. */
  self: string
  /** The peers a key may be placed on now: the memory peers, and this node when it holds memory. */
  candidates: () => string[]
  /** This node holds vectors for the network (the capability is on and the store loaded). */
  holding: () => boolean
  /** A peer with a verified pulse history in this node's view (see MemoryCoordinatorOptions). */
  established: (peerId: string) => boolean
  /** Sends one signed put to a holder. */
  put: (target: string, put: SignedVector) => Promise<void>
  /** Keys were handed off (and maybe deleted here): status follows. */
  onChange: () => void
}

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

/**
 * Re-replication of the keys this node holds: when the set of memory peers changes (one leaves or
 * joins, or a registry entry expires), each key goes to the holders the change made new, and a key
 * this node should no longer hold is handed off, so every key keeps R copies as long as one is left.
 */
export class MemoryRepair {
  /** The holder candidates at the last repair: the keys' old holders are computed from it. */
  private lastPeers = new Set<string>()
  /** A repair some of whose pushes or hand-offs failed: the candidates before it, and how often it ran. */
  private unfinished?: { before: string[], attempts: number }
  private repairing?: Promise<void>
  private repairAgain = false
  private cancelRepair?: () => void
  private stopCheck?: () => void
  private stopped = false

  constructor (private readonly o: MemoryRepairOptions) {}

  start (): void {
    this.lastPeers = new Set(this.o.candidates())
    this.stopCheck = this.o.scheduler.every(REPAIR_CHECK_MS, () => { this.peersChanged() })
  }

  async stop (): Promise<void> {
    this.stopped = true
    this.stopCheck?.()
    this.cancelRepair?.()
    await this.repairing
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
  private async repairOnce (): Promise<void> {
    const current = this.o.candidates()
    const before = this.unfinished?.before ?? [...this.lastPeers]
    // Announcements repeat every 30 s: most calls find the same peers and have nothing to do.
    if (this.unfinished === undefined && current.length === before.length && current.every(p => this.lastPeers.has(p))) return
    this.lastPeers = new Set(current)
    if (!this.o.holding()) return
    const self = this.o.self
    const pushes = new Map<string, string[]>()
    const handoffs: Array<{ key: string, holders: string[] }> = []
    // Each peer is placed once per repair, not once per key: announcements of fresh keys start a
    // repair every debounce, and a holder may hold tens of thousands of keys.
    const [placedNow, placedBefore] = [placePeers(current), placePeers(before)]
    for (const key of this.o.store.keys()) {
      const hash = keyHash(key)
      const now = holdersAmong(hash, placedNow, this.o.replicas)
      if (!now.includes(self)) {
        if (now.length === this.o.replicas) handoffs.push({ key, holders: now })
        continue
      }
      const was = new Set(holdersAmong(hash, placedBefore, this.o.replicas))
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
   * every honest holder drop it. They are sent the copy all the same. Whether every hand-off went as
   * far as it could: false when a push of one failed (not for want of an established holder).
   */
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
        await this.o.put(target, put)
        return
      } catch (err) {
        if (!(err instanceof HyperspaceError && err.code === 'ERR_PEER_BUSY') || attempt >= BUSY_RETRIES) throw err
        await pauseFor(this.o.scheduler, BUSY_RETRY_MS)
      }
    }
  }
}
