import { HyperspaceError, InvalidVectorError } from '../core/errors.ts'
import { VectorIndex, type IndexHit } from '../core/memory/vector-index.ts'
import type { HyperspaceDb, StoredVector } from './database.ts'

/**
 * The vectors this node holds for the replicated memory: kept in IndexedDB (so they survive reloads)
 * and mirrored into one in-memory VectorIndex per space (model id) for fast search. A bound on the
 * number held keeps one node from filling its quota; a full store refuses new keys and keeps all it has.
 */

export const DEFAULT_MAX_VECTORS = 100_000

export class MemoryFullError extends HyperspaceError {
  override name = 'MemoryFullError'

  constructor (limit: number) { super('ERR_MEMORY_FULL', `This node's memory is full: it holds its limit of ${limit} vectors`) }
}

/** What a holder knows about one key besides its vector and meta (which live in the index). */
interface Held {
  space: string
  from: string
  storedAt: number
  version: number
}

export interface HeldVector extends Held {
  key: string
  vector: Float32Array
  meta: string
}

export interface PutVector {
  key: string
  space: string
  vector: Float32Array
  meta: string
  /** The peer that sent it: per-peer quotas count by this. */
  from: string
  version: number
}

export class VectorStore {
  private networkId?: string
  private readonly spaces = new Map<string, VectorIndex<string>>()
  private readonly held = new Map<string, Held>()
  private readonly perPeer = new Map<string, number>()

  constructor (private readonly db: HyperspaceDb, readonly maxVectors = DEFAULT_MAX_VECTORS) {}

  /** Reads the network's vectors into memory, replacing whatever was loaded before. */
  async load (networkId: string): Promise<void> {
    const stored = await this.db.getAll('vectors', IDBKeyRange.bound([networkId, ''], [networkId, '\uffff']))
    this.networkId = networkId
    this.spaces.clear()
    this.held.clear()
    this.perPeer.clear()
    for (const v of stored) this.remember(v)
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

  /** Vectors held that `peer` sent. */
  countFrom (peer: string): number {
    return this.perPeer.get(peer) ?? 0
  }

  keys (): string[] {
    return [...this.held.keys()]
  }

  get (key: string): HeldVector | undefined {
    const held = this.held.get(key)
    const entry = held === undefined ? undefined : this.spaces.get(held.space)?.get(key)
    return held === undefined || entry === undefined ? undefined : { key, ...held, vector: entry.vector, meta: entry.meta }
  }

  /**
   * Stores or replaces a vector, unless a higher version of the key is held (then it keeps that one and
   * says false). A new key on a full store throws MemoryFullError and changes nothing.
   */
  async put (v: PutVector): Promise<boolean> {
    const networkId = this.requireNetwork()
    if ((this.held.get(v.key)?.version ?? -1) > v.version) return false
    if (!this.held.has(v.key) && this.held.size >= this.maxVectors) throw new MemoryFullError(this.maxVectors)
    const index = this.spaces.get(v.space)
    // Checked before writing, so the database never holds what the index would refuse.
    if (index !== undefined && index.dims !== v.vector.length) throw new InvalidVectorError(`${v.vector.length} dimensions in space ${v.space} of ${index.dims}`)
    const record: StoredVector = { networkId, key: v.key, space: v.space, vector: v.vector, meta: v.meta, from: v.from, storedAt: Date.now(), version: v.version }
    await this.db.put('vectors', record)
    this.forget(v.key)
    this.remember(record)
    return true
  }

  async delete (key: string): Promise<boolean> {
    const networkId = this.requireNetwork()
    if (!this.held.has(key)) return false
    await this.db.delete('vectors', [networkId, key])
    this.forget(key)
    return true
  }

  /** The `k` vectors of `space` most similar to `vector`; none when the space is unknown here. */
  query (space: string, vector: Float32Array, k: number): Array<IndexHit<string>> {
    const index = this.spaces.get(space)
    if (index === undefined) return []
    if (index.dims !== vector.length) throw new InvalidVectorError(`${vector.length} dimensions in space ${space} of ${index.dims}`)
    return index.query(vector, k)
  }

  private requireNetwork (): string {
    if (this.networkId === undefined) throw new HyperspaceError('ERR_MEMORY_NOT_LOADED', 'The vector store is not loaded yet')
    return this.networkId
  }

  private remember (v: StoredVector): void {
    let index = this.spaces.get(v.space)
    if (index === undefined) {
      index = new VectorIndex<string>(v.vector.length)
      this.spaces.set(v.space, index)
    }
    index.add(v.key, v.vector, v.meta)
    this.held.set(v.key, { space: v.space, from: v.from, storedAt: v.storedAt, version: v.version ?? 0 })
    this.perPeer.set(v.from, this.countFrom(v.from) + 1)
  }

  private forget (key: string): void {
    const held = this.held.get(key)
    if (held === undefined) return
    const index = this.spaces.get(held.space)
    index?.remove(key)
    if (index?.size === 0) this.spaces.delete(held.space)
    this.held.delete(key)
    const count = this.countFrom(held.from) - 1
    if (count > 0) this.perPeer.set(held.from, count)
    else this.perPeer.delete(held.from)
  }
}
