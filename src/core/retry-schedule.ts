import { Backoff, type BackoffOptions } from './backoff.ts'

/**
 * When to try a lost link again: exponential backoff with full jitter (Backoff), bounded by maxMs, and
 * counted from the start of the previous attempt rather than from its failure. An attempt that hung
 * until its timeout (a dead uplink drops packets silently) has already waited that long, so the next
 * one starts at once: a dial is then always under way, its TCP SYN retransmissions notice a restored
 * uplink within seconds, and the cost stays one connection attempt per timeout. An attempt refused at
 * once (the relay is down, the browser offline) waits out the whole delay, so many pages do not hammer
 * a restarting relay. A network change (`reset`) starts over from the shortest delay.
 */
export class RetrySchedule {
  private readonly backoff: Backoff
  private lastStartedAt: number | undefined

  constructor (options: BackoffOptions) {
    this.backoff = new Backoff(options)
  }

  /** An attempt starts at `now`. */
  started (now: number): void {
    this.lastStartedAt = now
  }

  /** The wait from `now` until the next attempt: the backoff's next delay less what the last attempt took. */
  delay (now: number): number {
    const wait = this.backoff.next()
    return Math.max(0, wait - (now - (this.lastStartedAt ?? now)))
  }

  /** The link works again, or the network changed: the next failure waits the shortest delay. */
  reset (): void {
    this.backoff.reset()
    this.lastStartedAt = undefined
  }
}
