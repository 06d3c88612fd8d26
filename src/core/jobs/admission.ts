import { PeerBusyError } from '../errors.ts'

/**
 * Admission for served jobs: a fixed number run at once, a short bounded line waits, and anything
 * beyond is refused as busy at once, so a flood costs the server nothing and the client fails over.
 */
export class JobQueue {
  private running = 0
  private readonly waiting: Array<() => void> = []

  constructor (readonly slots: number, readonly maxWaiting: number, private readonly self = 'this node') {}

  /** Jobs running or waiting: what the node announces as its queue. */
  get length (): number { return this.running + this.waiting.length }

  /** Resolves with a release function once a slot is free; throws PeerBusyError when the line is full. */
  async acquire (signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted()
    if (this.running < this.slots) {
      this.running++
      return this.releaser()
    }
    if (this.waiting.length >= this.maxWaiting) throw new PeerBusyError(this.self)
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.waiting.indexOf(go)
        if (i >= 0) this.waiting.splice(i, 1)
        reject(signal?.reason)
      }
      const go = (): void => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      }
      this.waiting.push(go)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
    return this.releaser()
  }

  private releaser (): () => void {
    let released = false
    return () => {
      if (released) return
      released = true
      const next = this.waiting.shift()
      if (next !== undefined) next()
      else this.running--
    }
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
}
