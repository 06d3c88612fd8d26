/** Exponential backoff with full jitter, so many pages reconnecting to one relay do not arrive in step. */
export interface BackoffOptions {
  initialMs: number
  maxMs: number
  factor?: number
  random?: () => number
}

export class Backoff {
  private attempt = 0
  private readonly initialMs: number
  private readonly maxMs: number
  private readonly factor: number
  private readonly random: () => number

  constructor (options: BackoffOptions) {
    this.initialMs = options.initialMs
    this.maxMs = options.maxMs
    this.factor = options.factor ?? 2
    this.random = options.random ?? Math.random
  }

  get attempts (): number { return this.attempt }

  /** The delay before the next try; each call widens the window until it reaches maxMs. */
  next (): number {
    const ceiling = Math.min(this.maxMs, this.initialMs * this.factor ** this.attempt)
    this.attempt++
    return Math.round(this.initialMs / 2 + this.random() * (ceiling - this.initialMs / 2))
  }

  reset (): void { this.attempt = 0 }
}
