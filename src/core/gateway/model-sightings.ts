/** Model ids remembered as seen: enough for any real network, bounded against made-up ones. */
export const MAX_SEEN_MODELS = 4096
/** Model ids remembered as recently not found, oldest forgotten first. */
export const MAX_MISSED_MODELS = 1024
/**
 * How long a model no routing tier found is answered 404 at once. Finding nobody costs a DHT lookup
 * and a want's whole offer wait (seconds) and a want on the inference topic: a client repeating a
 * made-up name gets its 404 without either, and a server that starts serving the model is reached
 * once this has passed.
 */
export const MISS_TTL_MS = 30_000

/**
 * What the gateway knows of a model id: when it was first seen served (named in an announcement, or
 * reached through the DHT or broadcast tier), and whether a recent request found nobody serving it.
 */
export class ModelSightings {
  private readonly seenAt = new Map<string, number>()
  private readonly missedAt = new Map<string, number>()

  seen (model: string, at: number): void {
    this.missedAt.delete(model)
    if (!this.seenAt.has(model) && this.seenAt.size < MAX_SEEN_MODELS) this.seenAt.set(model, at)
  }

  firstSeen (model: string): number | undefined {
    return this.seenAt.get(model)
  }

  /** No tier found a server of a model never seen served. */
  missed (model: string, at: number): void {
    if (this.seenAt.has(model)) return
    this.missedAt.delete(model)
    this.missedAt.set(model, at)
    if (this.missedAt.size > MAX_MISSED_MODELS) {
      const oldest = this.missedAt.keys().next().value
      if (oldest !== undefined) this.missedAt.delete(oldest)
    }
  }

  missedRecently (model: string, now: number): boolean {
    const at = this.missedAt.get(model)
    if (at === undefined) return false
    if (now - at < MISS_TTL_MS) return true
    this.missedAt.delete(model)
    return false
  }
}
