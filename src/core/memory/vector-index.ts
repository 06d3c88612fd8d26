import { InvalidVectorError } from '../errors.ts'
import { isFiniteVector, norm, type Vector } from '../embedding/vectors.ts'
import { MEMORY_LIMITS } from './limits.ts'

/**
 * A holder's in-memory search over the vectors it keeps: one contiguous Float32Array of unit
 * vectors, so a query is a single pass of dot products (cosine similarity) over memory the CPU
 * prefetches well, and a k-entry min-heap keeps the best k without sorting the rest.
 * At the sizes a browser holds (up to ~10^5 vectors) an exact scan answers in milliseconds; an
 * approximate index would add memory and recall loss for little gain.
 * The array grows with what the index holds (doubling, from one row) and halves when a quarter is in
 * use: an index never reserves memory for vectors it was not given, so a holder's budget in bytes
 * bounds its memory (the array is at most twice the vectors' size as it grows, four times after
 * removals, and halving only at a quarter keeps a key that comes and goes from copying the array).
 */

export interface IndexHit<M> {
  key: string
  score: number
  meta: M
}

export interface IndexEntry<M> {
  key: string
  /** The stored, unit-length copy. */
  vector: Float32Array
  meta: M
}

export class VectorIndex<M> {
  private data = new Float32Array(0)
  private readonly keys: string[] = []
  private readonly metas: M[] = []
  private readonly slots = new Map<string, number>()

  constructor (readonly dims: number) {
    if (!Number.isInteger(dims) || dims < 1 || dims > MEMORY_LIMITS.dims) throw new InvalidVectorError(`an index of ${dims} dimensions`)
  }

  get size (): number {
    return this.keys.length
  }

  /** Bytes of the vector array, including rows kept free for growth. */
  get allocatedBytes (): number {
    return this.data.byteLength
  }

  has (key: string): boolean {
    return this.slots.has(key)
  }

  get (key: string): IndexEntry<M> | undefined {
    const slot = this.slots.get(key)
    return slot === undefined ? undefined : this.entry(slot)
  }

  /** Stores the unit vector of `vector` under `key`, replacing what the key held. */
  add (key: string, vector: Vector, meta: M): void {
    const unit = this.unit(vector)
    let slot = this.slots.get(key)
    if (slot === undefined) {
      slot = this.keys.length
      if ((slot + 1) * this.dims > this.data.length) this.resize(Math.max(1, 2 * this.rows))
      this.keys.push(key)
      this.metas.push(meta)
      this.slots.set(key, slot)
    } else {
      this.metas[slot] = meta
    }
    this.data.set(unit, slot * this.dims)
  }

  /** Removes a key; the last vector moves into its slot so storage stays contiguous. */
  remove (key: string): boolean {
    const slot = this.slots.get(key)
    if (slot === undefined) return false
    const last = this.keys.length - 1
    if (slot !== last) {
      const lastKey = this.keys[last] as string
      this.data.copyWithin(slot * this.dims, last * this.dims, (last + 1) * this.dims)
      this.keys[slot] = lastKey
      this.metas[slot] = this.metas[last] as M
      this.slots.set(lastKey, slot)
    }
    this.keys.pop()
    this.metas.pop()
    this.slots.delete(key)
    if (this.keys.length <= this.rows / 4) this.resize(Math.floor(this.rows / 2))
    return true
  }

  /** The `k` stored vectors most similar to `vector` (cosine), best first. */
  query (vector: Vector, k: number): Array<IndexHit<M>> {
    if (!Number.isInteger(k) || k < 0) throw new RangeError(`query: k = ${k} is not a count`)
    const q = this.unit(vector)
    const heap = new TopK(Math.min(k, this.keys.length))
    if (heap.capacity === 0) return []
    const { data, dims } = this
    const rows = this.keys.length
    const tail = dims - (dims % 4)
    for (let row = 0, base = 0; row < rows; row++, base += dims) {
      let s0 = 0
      let s1 = 0
      let s2 = 0
      let s3 = 0
      let d = 0
      for (; d < tail; d += 4) {
        s0 += (data[base + d] as number) * (q[d] as number)
        s1 += (data[base + d + 1] as number) * (q[d + 1] as number)
        s2 += (data[base + d + 2] as number) * (q[d + 2] as number)
        s3 += (data[base + d + 3] as number) * (q[d + 3] as number)
      }
      for (; d < dims; d++) s0 += (data[base + d] as number) * (q[d] as number)
      heap.offer(s0 + s1 + s2 + s3, row)
    }
    return heap.drain().map(({ score, row }) => ({ key: this.keys[row] as string, score, meta: this.metas[row] as M }))
  }

  * entries (): IterableIterator<IndexEntry<M>> {
    for (let slot = 0; slot < this.keys.length; slot++) yield this.entry(slot)
  }

  private entry (slot: number): IndexEntry<M> {
    return {
      key: this.keys[slot] as string,
      vector: this.data.slice(slot * this.dims, (slot + 1) * this.dims),
      meta: this.metas[slot] as M
    }
  }

  private unit (vector: Vector): Float32Array {
    if (vector.length !== this.dims) throw new InvalidVectorError(`${vector.length} dimensions where the index has ${this.dims}`)
    if (!isFiniteVector(vector)) throw new InvalidVectorError('a component is not a finite number')
    const n = norm(vector)
    if (n === 0) throw new InvalidVectorError('the zero vector has no direction')
    const out = new Float32Array(this.dims)
    for (let i = 0; i < this.dims; i++) out[i] = (vector[i] as number) / n
    return out
  }

  /** Rows the array has room for. */
  private get rows (): number {
    return this.data.length / this.dims
  }

  private resize (rows: number): void {
    const data = new Float32Array(rows * this.dims)
    data.set(this.data.subarray(0, this.keys.length * this.dims))
    this.data = data
  }
}

/** The best `capacity` (score, row) pairs seen: a min-heap whose root is the worst one kept. */
class TopK {
  private readonly scores: Float64Array
  private readonly rows: Int32Array
  private count = 0

  constructor (readonly capacity: number) {
    this.scores = new Float64Array(capacity)
    this.rows = new Int32Array(capacity)
  }

  offer (score: number, row: number): void {
    if (this.count < this.capacity) {
      this.siftUp(this.count++, score, row)
    } else if (score > (this.scores[0] as number)) {
      this.siftDown(0, score, row)
    }
  }

  /** Everything kept, best first; empties the heap. */
  drain (): Array<{ score: number, row: number }> {
    const out = new Array<{ score: number, row: number }>(this.count)
    while (this.count > 0) {
      out[this.count - 1] = { score: this.scores[0] as number, row: this.rows[0] as number }
      const last = --this.count
      if (last > 0) this.siftDown(0, this.scores[last] as number, this.rows[last] as number)
    }
    return out
  }

  private siftUp (at: number, score: number, row: number): void {
    let i = at
    while (i > 0) {
      const parent = (i - 1) >> 1
      if ((this.scores[parent] as number) <= score) break
      this.scores[i] = this.scores[parent] as number
      this.rows[i] = this.rows[parent] as number
      i = parent
    }
    this.scores[i] = score
    this.rows[i] = row
  }

  /** Places (score, row) at `at` and moves it down below smaller children; uses this.count as the size. */
  private siftDown (at: number, score: number, row: number): void {
    let i = at
    for (;;) {
      const left = 2 * i + 1
      if (left >= this.count) break
      const right = left + 1
      const child = right < this.count && (this.scores[right] as number) < (this.scores[left] as number) ? right : left
      if ((this.scores[child] as number) >= score) break
      this.scores[i] = this.scores[child] as number
      this.rows[i] = this.rows[child] as number
      i = child
    }
    this.scores[i] = score
    this.rows[i] = row
  }
}
