import { HyperspaceError, InvalidVectorError, MemoryBudgetError, MemoryNotOwnerError, MemoryStaleError } from '../core/errors.ts'
import { isFiniteVector, norm } from '../core/embedding/vectors.ts'
import { MemoryBudget, heldBytes, type Charge } from '../core/memory/budget.ts'
import { MEMORY_BUDGET, MEMORY_LIMITS, type BudgetLimits, type MemoryBudgetLimits } from '../core/memory/limits.ts'
import { spaceDims } from '../core/memory/spaces.ts'
import { VectorIndex, type IndexHit } from '../core/memory/vector-index.ts'
import { compareBytes } from '../core/crypto/bytes.ts'
import { MEMORY_SIGNATURE_BYTES, isOwnerId, type MemoryPut, type SignedHit } from '../core/wire/memory.ts'
import type { HyperspaceDb, StoredVector } from './database.ts'

/**
 * The vectors this node holds for the replicated memory: kept in IndexedDB (so they survive reloads)
 * and mirrored into one in-memory VectorIndex per space (model id) for fast search. Budgets
 * (src/core/memory/budget.ts) bound what the holder keeps and what each owner has on it; a put is
 * checked against them, its owner and its version before anything is written or allocated for it,
 * and a load keeps only what the same budgets admit.
 */

/** What a holder knows about one key besides its vector and meta (which live in the index). */
export interface HeldEntry extends Charge {
  version: number
}

/** A signed put as a holder keeps it (the wire put without its type). */
export type SignedVector = Omit<MemoryPut, 'type'>

/** What a put did: stored it, or found this very put (same version and signature) already held. */
export type PutOutcome = 'stored' | 'held'

const encoder = new TextEncoder()

export class VectorStore {
  private networkId?: string
  private readonly spaces = new Map<string, VectorIndex<string>>()
  private readonly held = new Map<string, HeldEntry>()
  private readonly budget: MemoryBudget
  /** Puts, deletes and loads run one at a time, so each put's checks see every earlier outcome. */
  private writes: Promise<unknown> = Promise.resolve()

  constructor (private readonly db: HyperspaceDb, limits: MemoryBudgetLimits = MEMORY_BUDGET) {
    this.budget = new MemoryBudget(limits)
  }

  /**
   * Reads the network's vectors into memory, replacing whatever was loaded before. Records are read
   * one at a time and admitted by the budgets in key order; what they do not admit, and records that
   * are malformed or unsigned (stored before memory protocol version 2), are deleted. Owners that
   * `isNewcomer` names are counted in the newcomers' pool, but the pool does not refuse what was
   * stored: standing is learnt as the pulse history loads, and a reload must not lose vectors for it.
   */
  async load (networkId: string, isNewcomer: (owner: string) => boolean = () => false): Promise<void> {
    await this.serially(async () => {
      this.networkId = undefined
      this.spaces.clear()
      this.held.clear()
      this.budget.clear()
      const tx = this.db.transaction('vectors', 'readwrite')
      let dropped = 0
      for (let cursor = await tx.store.openCursor(IDBKeyRange.bound([networkId, ''], [networkId, '\uffff'])); cursor !== null; cursor = await cursor.continue()) {
        if (this.admitStored(cursor.value, isNewcomer)) continue
        await cursor.delete()
        dropped++
      }
      await tx.done
      this.networkId = networkId
      if (dropped > 0) console.warn(`hyperspace: dropped ${dropped} stored memory vectors that are unsigned, malformed or over the budgets`)
    })
  }

  get loaded (): boolean {
    return this.networkId !== undefined
  }

  get size (): number {
    return this.held.size
  }

  has (key: string): boolean {
    return this.held.has(key)
  }

  keys (): string[] {
    return [...this.held.keys()]
  }

  /** Who owns a held key, in which space, at which version, and what it costs. */
  entry (key: string): HeldEntry | undefined {
    return this.held.get(key)
  }

  /** What the holder, or one owner, has used of its budgets. */
  usage (owner?: string): BudgetLimits {
    return this.budget.usage(owner)
  }

  /** Bytes the indexes' vector arrays take, free rows included. */
  get indexBytes (): number {
    let bytes = 0
    for (const index of this.spaces.values()) bytes += index.allocatedBytes
    return bytes
  }

  /** A held key as its owner signed it (from IndexedDB: the index keeps normalized copies). */
  async signed (key: string): Promise<SignedVector | undefined> {
    const networkId = this.requireNetwork()
    if (!this.held.has(key)) return undefined
    const record = await this.db.get('vectors', [networkId, key])
    return record === undefined ? undefined : { key, space: record.space, vector: record.vector, meta: record.meta, version: record.version, owner: record.owner, sig: record.sig }
  }

  /**
   * Stores a put whose signature the caller has checked. Refuses, changing nothing: a key another
   * owner holds (MemoryNotOwnerError), an older version, or the same version with a smaller
   * signature (MemoryStaleError: every holder keeps the same one of two puts of one version),
   * dimensions other than the space's (InvalidVectorError), and what the budgets do not admit
   * (MemoryBudgetError). A `newcomer` owner (no verified pulse history in this holder's view) is
   * also held to the newcomers' shared pool.
   */
  async put (v: SignedVector, standing: { newcomer: boolean } = { newcomer: false }): Promise<PutOutcome> {
    return await this.serially(async () => {
      const networkId = this.requireNetwork()
      const held = this.held.get(v.key)
      if (held !== undefined) {
        if (held.owner !== v.owner) throw new MemoryNotOwnerError(v.key)
        if (v.version < held.version) throw new MemoryStaleError(v.key, held.version)
        if (v.version === held.version) {
          const order = compareBytes(v.sig, (await this.db.get('vectors', [networkId, v.key]))?.sig ?? new Uint8Array(0))
          if (order === 0) return 'held'
          if (order < 0) throw new MemoryStaleError(v.key, held.version)
        }
      }
      this.checkDims(v.space, v.vector.length)
      const charge = chargeOf(v, standing.newcomer)
      this.budget.check(charge, held)
      const record: StoredVector = {
        networkId, key: v.key, space: v.space, vector: v.vector, meta: v.meta, owner: v.owner, version: v.version, sig: v.sig, storedAt: Date.now()
      }
      await this.db.put('vectors', record)
      if (held !== undefined) this.unindex(v.key, held)
      this.budget.commit(charge, held)
      this.index(record, charge)
      return 'stored'
    })
  }

  async delete (key: string): Promise<boolean> {
    return await this.serially(async () => {
      const networkId = this.requireNetwork()
      const held = this.held.get(key)
      if (held === undefined) return false
      await this.db.delete('vectors', [networkId, key])
      this.unindex(key, held)
      this.budget.release(held)
      return true
    })
  }

  /** The `k` vectors of `space` most similar to `vector`; none when the space is unknown here. */
  query (space: string, vector: Float32Array, k: number): Array<IndexHit<string>> {
    this.checkDims(space, vector.length)
    return this.spaces.get(indexedSpace(space, vector.length))?.query(vector, k) ?? []
  }

  /**
   * Keys a query found, as their owners signed them, for a peer that checks each signature and
   * computes the similarity itself. A key deleted or replaced since the search comes as it is now
   * (when still of this space and length), or not at all.
   */
  async signedHits (space: string, dims: number, keys: readonly string[]): Promise<SignedHit[]> {
    const networkId = this.requireNetwork()
    if (keys.length === 0) return []
    const tx = this.db.transaction('vectors', 'readonly')
    const records = await Promise.all(keys.map(async key => await tx.store.get([networkId, key])))
    await tx.done
    return records.filter((r): r is StoredVector => r !== undefined && r.space === space && r.vector.length === dims)
      .map(r => ({ key: r.key, vector: r.vector, meta: r.meta, version: r.version, owner: r.owner, sig: r.sig }))
  }

  private async serially<T> (task: () => Promise<T>): Promise<T> {
    const run = this.writes.then(task)
    this.writes = run.catch(() => {})
    return await run
  }

  private requireNetwork (): string {
    if (this.networkId === undefined) throw new HyperspaceError('ERR_MEMORY_NOT_LOADED', 'The vector store is not loaded yet')
    return this.networkId
  }

  /** The dimensions a space's name says it has, when it says (`raw-<d>`, a built-in model). */
  private checkDims (space: string, dims: number): void {
    const expected = spaceDims(space)
    if (expected !== undefined && dims !== expected) throw new InvalidVectorError(`${dims} dimensions in space ${space} of ${expected}`)
  }

  /** Indexes a stored record when it is well formed and the budgets admit it; says whether it did. */
  private admitStored (record: StoredVector, isNewcomer: (owner: string) => boolean): boolean {
    if (!wellFormed(record)) return false
    const charge = chargeOf(record, isNewcomer(record.owner))
    try {
      this.checkDims(record.space, record.vector.length)
      this.budget.check(charge, undefined, false)
    } catch (err) {
      if (err instanceof MemoryBudgetError || err instanceof InvalidVectorError) return false
      throw err
    }
    this.budget.commit(charge)
    this.index(record, charge)
    return true
  }

  private index (record: StoredVector, charge: Charge): void {
    let index = this.spaces.get(charge.space)
    if (index === undefined) {
      index = new VectorIndex<string>(record.vector.length)
      this.spaces.set(charge.space, index)
    }
    index.add(record.key, record.vector, record.meta)
    this.held.set(record.key, { ...charge, version: record.version })
  }

  private unindex (key: string, held: HeldEntry): void {
    const index = this.spaces.get(held.space)
    index?.remove(key)
    if (index?.size === 0) this.spaces.delete(held.space)
    this.held.delete(key)
  }
}

function chargeOf (v: { owner: string, space: string, key: string, meta: string, vector: Float32Array }, newcomer: boolean): Charge {
  return { owner: v.owner, space: indexedSpace(v.space, v.vector.length), bytes: heldBytes({ owner: v.owner, space: v.space, key: v.key, meta: v.meta, dims: v.vector.length }), newcomer }
}

/**
 * Where a vector is indexed and budgeted: its space, and for a space whose name says no dimensions,
 * its dimensions too. Such a space took them from its first vector, so one vector of a fresh key
 * (1 dimension in a deployment's own model's space) refused every honest put there for good.
 */
function indexedSpace (space: string, dims: number): string {
  return spaceDims(space) === undefined ? `${space}#${dims}` : space
}

function text (value: unknown, maxBytes: number): boolean {
  return typeof value === 'string' && encoder.encode(value).byteLength <= maxBytes
}

/** The shape a put takes when it is stored; anything else in the database is not this version's. */
function wellFormed (record: StoredVector): boolean {
  const r = record as unknown as Record<string, unknown>
  const vector = r.vector
  return text(r.key, MEMORY_LIMITS.keyBytes) && r.key !== '' && text(r.space, MEMORY_LIMITS.spaceBytes) && r.space !== '' &&
    text(r.meta, MEMORY_LIMITS.metaBytes) && isOwnerId(r.owner) &&
    typeof r.version === 'number' && Number.isSafeInteger(r.version) && r.version >= 0 &&
    r.sig instanceof Uint8Array && r.sig.byteLength === MEMORY_SIGNATURE_BYTES &&
    vector instanceof Float32Array && vector.length > 0 && vector.length <= MEMORY_LIMITS.dims && isFiniteVector(vector) && norm(vector) > 0
}
