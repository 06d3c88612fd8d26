import { PeerBusyError } from '../errors.ts'
import type { CancelOptions } from '../progress.ts'

/** What a client's job request takes. */
export interface JobRequestOptions extends CancelOptions {
  /** The job is run for a peer the client does not count established (wire/frame.ts's ForStranger). */
  forStranger?: boolean
}

/** Whose job asks for a place, and until when it waits. */
export interface AcquireOptions {
  /** The peer the job is for: places are shared fairly between peers. */
  peer?: string
  /** The peer has a verified history (routing.ts's Established): it may take reserved slots and goes first. */
  established?: boolean
  signal?: AbortSignal
}

interface Waiter {
  peer: string
  established: boolean
  go: () => void
  refuse: (err: Error) => void
}

/**
 * Admission for served jobs: a fixed number run at once, a short bounded line waits, and anything
 * beyond is refused as busy at once, so a flood costs the server nothing and the client fails over.
 *
 * Places are shared between peers: one peer's burst must not keep everyone else out. A peer that
 * finds the line full takes the place of the newest waiting job of the peer holding the most places,
 * when that peer holds at least two more than it; that job is refused as busy, as it would have been
 * had it come last. A freed slot goes to the waiting job whose peer holds the fewest places (oldest
 * first). One peer runs at most `perPeer` jobs at once, and its next waits even beside a free slot: a
 * peer that reads its answers slowly holds its slots as long as it likes, and must not hold them all.
 *
 * Fresh keys cost nothing, so sharing fairly between peers alone lets a swarm of strangers fill every
 * slot and place in line. Established peers (a verified history) come first: strangers together run
 * at most `slots - reserved` jobs, an established peer that finds the line full takes the place of
 * the newest waiting stranger before anyone else's, and a freed slot goes to an established waiter
 * before any stranger.
 */
export class JobQueue {
  private running = 0
  private strangersRunning = 0
  private readonly runningBy = new Map<string, number>()
  private readonly waiting: Waiter[] = []

  constructor (
    readonly slots: number,
    readonly maxWaiting: number,
    private readonly self = 'this node',
    readonly perPeer = slots,
    /** Slots only established peers may take. */
    readonly reserved = 0
  ) {}

  /** Jobs running or waiting: what the node announces as its queue. */
  get length (): number { return this.running + this.waiting.length }

  /** Resolves with a release function once a slot is free; throws PeerBusyError when the line is full. */
  async acquire (options: AcquireOptions = {}): Promise<() => void> {
    const { peer = '', established = false, signal } = options
    signal?.throwIfAborted()
    if (this.mayStart(peer, established)) {
      this.start(peer, established)
      return this.releaser(peer, established)
    }
    if (this.waiting.length >= this.maxWaiting) this.makeRoomFor(peer, established)
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        this.leave(waiter)
        reject(signal?.reason)
      }
      const waiter: Waiter = {
        peer,
        established,
        go: () => {
          signal?.removeEventListener('abort', onAbort)
          resolve()
        },
        refuse: err => {
          signal?.removeEventListener('abort', onAbort)
          reject(err)
        }
      }
      this.waiting.push(waiter)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
    return this.releaser(peer, established)
  }

  /** Makes room in a full line: an established peer's job takes the newest stranger's place first. */
  private makeRoomFor (peer: string, established: boolean): void {
    const stranger = established ? this.waiting.findLast(w => !w.established) : undefined
    if (stranger === undefined) this.bumpFor(peer)
    else this.bump(stranger)
  }

  /** Makes room in a full line for `peer`, or throws PeerBusyError when it holds as much as anyone. */
  private bumpFor (peer: string): void {
    let victim: Waiter | undefined
    // The swap must leave the other peer holding at least as many places as this one then holds.
    let most = this.held(peer) + 2
    for (const waiter of this.waiting) {
      const held = this.held(waiter.peer)
      if (waiter.peer !== peer && held >= most) {
        most = held
        victim = waiter
      }
    }
    if (victim === undefined) throw new PeerBusyError(this.self)
    this.bump(this.waiting.findLast(w => w.peer === victim.peer) ?? victim)
  }

  /** Refuses a waiting job as busy, as it would have been had it come last. */
  private bump (waiter: Waiter): void {
    this.leave(waiter)
    waiter.refuse(new PeerBusyError(this.self))
  }

  /** A slot is free, the peer runs less than its share, and a stranger finds more than the reserved slots in use. */
  private mayStart (peer: string, established: boolean): boolean {
    return this.running < this.slots &&
      (this.runningBy.get(peer) ?? 0) < this.perPeer &&
      (established || this.strangersRunning < this.slots - this.reserved)
  }

  private held (peer: string): number {
    return (this.runningBy.get(peer) ?? 0) + this.waiting.filter(w => w.peer === peer).length
  }

  private leave (waiter: Waiter): void {
    const i = this.waiting.indexOf(waiter)
    if (i >= 0) this.waiting.splice(i, 1)
  }

  private start (peer: string, established: boolean): void {
    this.running++
    if (!established) this.strangersRunning++
    this.runningBy.set(peer, (this.runningBy.get(peer) ?? 0) + 1)
  }

  private releaser (peer: string, established: boolean): () => void {
    let released = false
    return () => {
      if (released) return
      released = true
      this.running--
      if (!established) this.strangersRunning--
      const left = (this.runningBy.get(peer) ?? 1) - 1
      if (left > 0) this.runningBy.set(peer, left)
      else this.runningBy.delete(peer)
      const next = this.nextWaiter()
      if (next === undefined) return
      this.leave(next)
      this.start(next.peer, next.established)
      next.go()
    }
  }

  /** An established waiter that may start, else a stranger that may: the fairest of its group. */
  private nextWaiter (): Waiter | undefined {
    return this.fairestWaiter(true) ?? this.fairestWaiter(false)
  }

  /** The waiting job of the group that may start whose peer holds the fewest places; the oldest among equals. */
  private fairestWaiter (established: boolean): Waiter | undefined {
    let next: Waiter | undefined
    let fewest = Infinity
    for (const waiter of this.waiting) {
      if (waiter.established !== established || !this.mayStart(waiter.peer, established)) continue
      const held = this.held(waiter.peer)
      if (held < fewest) {
        fewest = held
        next = waiter
      }
    }
    return next
  }
}

/** A token bucket: `burst` at once, refilled at `perMinute`. */
export class TokenBucket {
  private tokens: number
  private at: number | undefined

  constructor (private readonly perMinute: number, private readonly burst: number) {
    this.tokens = burst
  }

  /** Takes one token; false when there is none left. */
  take (now: number): boolean {
    this.tokens = Math.min(this.burst, this.tokens + (now - (this.at ?? now)) * this.perMinute / 60_000)
    this.at = now
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }

  /** Returns a token taken for work that turned out not to count. */
  refund (): void {
    this.tokens = Math.min(this.burst, this.tokens + 1)
  }
}

/** A token bucket per peer: `burst` jobs at once, refilled at `perMinute`; the least recently seen of `maxPeers` is forgotten. */
export class PeerRateLimit {
  private readonly buckets = new Map<string, TokenBucket>()

  constructor (private readonly perMinute: number, private readonly burst: number, private readonly maxPeers = 4096) {}

  /** Takes one token for the peer; false when it has none left. */
  take (peerId: string, now: number): boolean {
    const bucket = this.buckets.get(peerId) ?? new TokenBucket(this.perMinute, this.burst)
    this.buckets.delete(peerId)
    if (this.buckets.size >= this.maxPeers) {
      const oldest = this.buckets.keys().next().value
      if (oldest !== undefined) this.buckets.delete(oldest)
    }
    this.buckets.set(peerId, bucket)
    return bucket.take(now)
  }

  /** Returns a token taken for the peer, if it is still remembered. */
  refund (peerId: string): void {
    this.buckets.get(peerId)?.refund()
  }
}
