/**
 * A one-consumer async iterable fed by pushes: what turns streamed deltas into the `for await`
 * of an OpenAI `stream: true` call. Ending with an error makes the consumer's loop throw it.
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = []
  private waiting?: { resolve: (r: IteratorResult<T>) => void, reject: (err: unknown) => void }
  private ended = false
  private failure?: { error: unknown }

  /** `onCancel` runs when the consumer stops reading early (a `break` out of its loop). */
  constructor (private readonly onCancel?: () => void) {}

  push (item: T): void {
    if (this.ended) return
    if (this.waiting !== undefined) {
      const { resolve } = this.waiting
      this.waiting = undefined
      resolve({ value: item, done: false })
    } else {
      this.items.push(item)
    }
  }

  end (error?: unknown): void {
    if (this.ended) return
    this.ended = true
    if (error !== undefined) this.failure = { error }
    const waiting = this.waiting
    this.waiting = undefined
    if (waiting === undefined) return
    if (this.failure !== undefined) waiting.reject(this.failure.error)
    else waiting.resolve({ value: undefined, done: true })
  }

  [Symbol.asyncIterator] (): AsyncIterator<T> {
    return {
      next: async () => {
        const item = this.items.shift()
        if (item !== undefined) return { value: item, done: false }
        if (this.ended) {
          if (this.failure !== undefined) throw this.failure.error
          return { value: undefined, done: true }
        }
        return await new Promise((resolve, reject) => { this.waiting = { resolve, reject } })
      },
      return: async () => {
        if (!this.ended) this.onCancel?.()
        this.end()
        return { value: undefined, done: true }
      }
    }
  }
}
