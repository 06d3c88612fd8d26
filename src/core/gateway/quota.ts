import { QuotaExceededError } from './errors.ts'

/** What one API key may use: both budgets refill evenly over a minute, and a full minute's worth may come at once. */
export interface KeyLimits {
  requestsPerMinute: number
  tokensPerMinute: number
}

const MINUTE_MS = 60_000

/** A budget that refills continuously up to its capacity. */
class Bucket {
  private level: number
  private at: number

  constructor (private readonly capacity: number, now: number) {
    this.level = capacity
    this.at = now
  }

  current (now: number): number {
    this.level = Math.min(this.capacity, this.level + (now - this.at) * this.capacity / MINUTE_MS)
    this.at = now
    return this.level
  }

  take (amount: number, now: number): void {
    this.level = this.current(now) - amount
  }

  /** Whole seconds until the level is back to `needed`: what `retry-after` says. */
  secondsUntil (needed: number, now: number): number {
    const missing = needed - this.current(now)
    return Math.max(1, Math.ceil(missing * MINUTE_MS / this.capacity / 1000))
  }
}

/**
 * Per-key request-rate and token quotas. A request is admitted when the key has a request left and
 * its token budget is not spent; the tokens an answer used are charged afterwards, because nobody
 * knows them before (a request for 1,024 tokens may stop after 3). A large answer can so overdraw
 * the budget once, and the key then waits until it has refilled.
 */
export class QuotaBook {
  private readonly buckets = new Map<string, { requests: Bucket, tokens: Bucket }>()

  constructor (private readonly limitsOf: (key: string) => KeyLimits) {}

  private of (key: string, now: number): { requests: Bucket, tokens: Bucket } {
    let b = this.buckets.get(key)
    if (b === undefined) {
      const limits = this.limitsOf(key)
      b = { requests: new Bucket(limits.requestsPerMinute, now), tokens: new Bucket(limits.tokensPerMinute, now) }
      this.buckets.set(key, b)
    }
    return b
  }

  /** Counts one request, or throws QuotaExceededError with the seconds to wait. */
  admit (key: string, now: number): void {
    const b = this.of(key, now)
    if (b.requests.current(now) < 1) throw new QuotaExceededError('requests', b.requests.secondsUntil(1, now))
    if (b.tokens.current(now) <= 0) throw new QuotaExceededError('tokens', b.tokens.secondsUntil(1, now))
    b.requests.take(1, now)
  }

  /** Charges the tokens a finished (or cut-off) answer used. */
  charge (key: string, tokens: number, now: number): void {
    if (tokens > 0) this.of(key, now).tokens.take(tokens, now)
  }
}
