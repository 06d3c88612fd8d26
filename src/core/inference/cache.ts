import { encodeMessage } from '../wire/cbor.ts'
import { sha256Of, toHex } from '../crypto/bytes.ts'
import { isDeterministic, type ValidChatRequest } from './request.ts'
import type { EngineCompletion } from './chat.ts'

/**
 * The caching capability: identical deterministic requests (greedy, or a fixed seed) give identical
 * output, so a bounded least-recently-used map answers them without running the model again.
 */
export function cacheKey (request: ValidChatRequest): string | undefined {
  if (!isDeterministic(request)) return undefined
  const { seed, ...rest } = request
  // Canonical CBOR of every field that changes the output (stream does not, and is not in a ValidChatRequest).
  return toHex(sha256Of(encodeMessage(seed === undefined ? rest : { ...rest, seed })))
}

export class CompletionCache {
  private readonly entries = new Map<string, EngineCompletion>()
  private chars = 0

  constructor (private readonly maxEntries = 256, private readonly maxChars = 1_000_000) {}

  get size (): number { return this.entries.size }

  get (key: string): EngineCompletion | undefined {
    const hit = this.entries.get(key)
    if (hit === undefined) return undefined
    this.entries.delete(key)
    this.entries.set(key, hit)
    return hit
  }

  set (key: string, value: EngineCompletion): void {
    if (value.text.length > this.maxChars) return
    this.delete(key)
    this.entries.set(key, value)
    this.chars += value.text.length
    for (const [oldest, entry] of this.entries) {
      if (this.entries.size <= this.maxEntries && this.chars <= this.maxChars) break
      this.entries.delete(oldest)
      this.chars -= entry.text.length
    }
  }

  private delete (key: string): void {
    const old = this.entries.get(key)
    if (old === undefined) return
    this.entries.delete(key)
    this.chars -= old.text.length
  }
}
