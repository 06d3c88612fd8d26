/**
 * A seeded pseudo-random generator (sfc32) and the distributions the network model draws from.
 * Everything random in a simulation comes from one of these, so a seed reproduces a run exactly.
 */
export class Rng {
  private a: number
  private b: number
  private c: number
  private d: number

  constructor (seed: number) {
    this.a = 0x9E3779B9
    this.b = 0x243F6A88
    this.c = 0xB7E15162
    this.d = seed >>> 0
    for (let i = 0; i < 16; i++) this.next()
  }

  /** Uniform in [0, 1). */
  next (): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0
    this.d = (this.d + 1) >>> 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) >>> 0
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0
    this.c = (this.c + t) >>> 0
    return t / 4294967296
  }

  /** An independent stream for one purpose, so adding draws in one place does not shift all others. */
  fork (label: string): Rng {
    let h = this.d ^ 0x811C9DC5
    for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193)
    return new Rng((h ^ Math.floor(this.next() * 4294967296)) >>> 0)
  }

  int (below: number): number {
    return Math.floor(this.next() * below)
  }

  uniform (low: number, high: number): number {
    return low + (high - low) * this.next()
  }

  bytes (length: number): Uint8Array {
    const out = new Uint8Array(length)
    for (let i = 0; i < length; i++) out[i] = this.int(256)
    return out
  }

  /** Standard normal (Box-Muller). */
  normal (): number {
    const u = 1 - this.next()
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next())
  }

  /** Log-normal with the given median and shape: the usual fit for access latencies and bandwidths. */
  lognormal (median: number, sigma: number): number {
    return median * Math.exp(sigma * this.normal())
  }

  /** An index drawn with the given weights. */
  weighted (weights: readonly number[]): number {
    let x = this.next() * weights.reduce((sum, w) => sum + w, 0)
    for (const [i, w] of weights.entries()) {
      x -= w
      if (x < 0) return i
    }
    return weights.length - 1
  }

  pick<T> (items: readonly T[]): T {
    return items[this.int(items.length)] as T
  }
}
