import { MemoryBudgetError, type MemoryBudgetResource, type MemoryBudgetScope } from '../errors.ts'
import type { BudgetLimits, MemoryBudgetLimits } from './limits.ts'

/**
 * What a holder's vectors cost and whether one more fits: vectors, bytes and spaces, counted for the
 * holder as a whole and for each owner (the writer who signed the put). A holder checks a put here
 * before it stores or allocates anything for it, and loads from its database by the same rule.
 */

/** What one held vector costs, and whether it is counted in the newcomers' pool. */
export interface Charge {
  owner: string
  space: string
  bytes: number
  newcomer: boolean
}

/**
 * The per-vector bookkeeping a holder keeps besides the vector, key, meta, space and owner strings:
 * map entries, objects and the index's slot. Measured on Node 20 (V8): a loaded store takes about
 * 430 bytes per vector besides those; rounded up.
 */
export const RECORD_OVERHEAD_BYTES = 512

const encoder = new TextEncoder()

/** What holding a vector costs in memory: its float32 values, its strings and the bookkeeping. */
export function heldBytes (v: { owner: string, space: string, key: string, meta: string, dims: number }): number {
  return 4 * v.dims + encoder.encode(v.key).byteLength + encoder.encode(v.meta).byteLength +
    encoder.encode(v.space).byteLength + v.owner.length + RECORD_OVERHEAD_BYTES
}

class Usage {
  vectors = 0
  bytes = 0
  /** Vectors per space; a space is counted while it holds one. */
  readonly spaces = new Map<string, number>()

  add (charge: Charge, sign: 1 | -1): void {
    this.vectors += sign
    this.bytes += sign * charge.bytes
    const count = (this.spaces.get(charge.space) ?? 0) + sign
    if (count > 0) this.spaces.set(charge.space, count)
    else this.spaces.delete(charge.space)
  }

  /** The first limit that `next` in place of `previous` would cross; a change that does not grow a resource never does. */
  exceeded (limits: BudgetLimits, next: Charge, previous?: Charge): { resource: MemoryBudgetResource, limit: number } | undefined {
    if (previous === undefined && this.vectors + 1 > limits.vectors) return { resource: 'vectors', limit: limits.vectors }
    const bytes = next.bytes - (previous?.bytes ?? 0)
    if (bytes > 0 && this.bytes + bytes > limits.bytes) return { resource: 'bytes', limit: limits.bytes }
    const newSpace = !this.spaces.has(next.space)
    const freesSpace = previous !== undefined && previous.space !== next.space && this.spaces.get(previous.space) === 1
    if (newSpace && !freesSpace && this.spaces.size + 1 > limits.spaces) return { resource: 'spaces', limit: limits.spaces }
    return undefined
  }
}

export class MemoryBudget {
  private readonly total = new Usage()
  private readonly owners = new Map<string, Usage>()
  private readonly newcomers = new Usage()

  constructor (readonly limits: MemoryBudgetLimits) {}

  /**
   * Throws MemoryBudgetError when `next` (replacing `previous`, the same key's charge) would not fit.
   * `pool: false` leaves the newcomers' pool unchecked (while loading, when standing is not known yet).
   */
  check (next: Charge, previous?: Charge, pool = true): void {
    // Only the owner replaces a key, so `previous` is the owner's own; checked all the same.
    const sameOwner = previous?.owner === next.owner ? previous : undefined
    this.fail('holder', this.total.exceeded(this.limits.holder, next, previous))
    this.fail('owner', (this.owners.get(next.owner) ?? new Usage()).exceeded(this.limits.owner, next, sameOwner))
    if (pool && next.newcomer) this.fail('newcomers', this.newcomers.exceeded(this.limits.newcomers, next, previous?.newcomer === true ? previous : undefined))
  }

  /** Counts `next` in place of `previous`; call after `check` passed and the vector was stored. */
  commit (next: Charge, previous?: Charge): void {
    if (previous !== undefined) this.release(previous)
    this.total.add(next, 1)
    if (next.newcomer) this.newcomers.add(next, 1)
    let owner = this.owners.get(next.owner)
    if (owner === undefined) {
      owner = new Usage()
      this.owners.set(next.owner, owner)
    }
    owner.add(next, 1)
  }

  release (charge: Charge): void {
    this.total.add(charge, -1)
    if (charge.newcomer) this.newcomers.add(charge, -1)
    const owner = this.owners.get(charge.owner)
    if (owner === undefined) return
    owner.add(charge, -1)
    if (owner.vectors <= 0) this.owners.delete(charge.owner)
  }

  clear (): void {
    for (const usage of [this.total, this.newcomers]) {
      usage.vectors = 0
      usage.bytes = 0
      usage.spaces.clear()
    }
    this.owners.clear()
  }

  /** What the holder, or one owner, uses now. */
  usage (owner?: string): BudgetLimits {
    const usage = owner === undefined ? this.total : this.owners.get(owner)
    return { vectors: usage?.vectors ?? 0, bytes: usage?.bytes ?? 0, spaces: usage?.spaces.size ?? 0 }
  }

  private fail (scope: MemoryBudgetScope, exceeded: { resource: MemoryBudgetResource, limit: number } | undefined): void {
    if (exceeded !== undefined) throw new MemoryBudgetError(scope, exceeded.resource, exceeded.limit)
  }
}
