/** What the queue orders: it stamps each entry with its time and its place in the order of pushes. */
export interface Scheduled {
  time: number
  seq: number
}

function earlier (a: Scheduled, b: Scheduled): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq)
}

/** A binary min-heap. */
class Heap<T> {
  private readonly items: T[] = []

  constructor (private readonly before: (a: T, b: T) => boolean) {}

  get size (): number { return this.items.length }

  peek (): T | undefined { return this.items[0] }

  push (item: T): void {
    const items = this.items
    let i = items.length
    items.push(item)
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!this.before(item, items[parent] as T)) break
      items[i] = items[parent] as T
      i = parent
    }
    items[i] = item
  }

  pop (): T | undefined {
    const items = this.items
    const top = items[0]
    const last = items.pop()
    if (items.length === 0 || last === undefined) return top
    let i = 0
    for (;;) {
      const left = 2 * i + 1
      if (left >= items.length) break
      const right = left + 1
      const child = right < items.length && this.before(items[right] as T, items[left] as T) ? right : left
      if (!this.before(items[child] as T, last)) break
      items[i] = items[child] as T
      i = child
    }
    items[i] = last
    return top
  }
}

/**
 * Events in time order, then in the order they were pushed, which keeps a simulation deterministic.
 * A large run has hundreds of thousands of events in flight; rather than one heap of all of them, they
 * wait in buckets of one millisecond, each sorted only when its turn comes, with a heap of the bucket
 * times. Events pushed into the millisecond being run go to a small heap of their own.
 */
export class EventQueue<T extends Scheduled> {
  private readonly keys = new Heap<number>((a, b) => a < b)
  private readonly buckets = new Map<number, T[]>()
  private current: T[] = []
  private cursor = 0
  private currentKey = -Infinity
  private readonly late = new Heap<T>(earlier)
  private seq = 0

  push (time: number, item: T): void {
    item.time = time
    item.seq = this.seq++
    const key = Math.floor(time)
    if (key <= this.currentKey) {
      this.late.push(item)
      return
    }
    const bucket = this.buckets.get(key)
    if (bucket !== undefined) {
      bucket.push(item)
      return
    }
    this.buckets.set(key, [item])
    this.keys.push(key)
  }

  /** The time of the earliest event; Infinity when empty. */
  peekTime (): number {
    return this.next()?.time ?? Infinity
  }

  pop (): T | undefined {
    const item = this.next()
    if (item === undefined) return undefined
    if (item === this.current[this.cursor]) this.cursor++
    else this.late.pop()
    return item
  }

  /** The earliest event, loading the next bucket when this millisecond is done. */
  private next (): T | undefined {
    for (;;) {
      const sorted = this.current[this.cursor]
      const late = this.late.peek()
      if (sorted !== undefined || late !== undefined) {
        if (sorted === undefined) return late
        return late !== undefined && earlier(late, sorted) ? late : sorted
      }
      const key = this.keys.pop()
      if (key === undefined) return undefined
      this.current = (this.buckets.get(key) as T[]).sort((a, b) => a.time - b.time || a.seq - b.seq)
      this.buckets.delete(key)
      this.cursor = 0
      this.currentKey = key
    }
  }
}
