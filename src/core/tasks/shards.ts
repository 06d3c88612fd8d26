import { TaskShardFailedError } from './errors.ts'

/**
 * The shards of a batch and who ran what: pure bookkeeping, no clocks and no network. A shard is a
 * contiguous range of inputs; its results land at their inputs' places, so the merged results are in
 * input order whoever ran which shard and in whatever order they finished.
 */
export interface Shard {
  index: number
  start: number
  count: number
}

/** What one finished shard cost: the worker (a peer id) that ran it, its inputs and its time. */
export interface ShardRun {
  peer: string
  count: number
  ms: number
  /** The underlying job's countersigned receipt (hex job id), when a peer ran it. */
  receipt?: string
}

/** Consecutive ranges of at most `size` inputs covering 0..total-1. */
export function planShards (total: number, size: number): Shard[] {
  if (!Number.isSafeInteger(total) || total < 0) throw new RangeError('total must be a whole number')
  if (!Number.isSafeInteger(size) || size < 1) throw new RangeError('size must be at least 1')
  const shards: Shard[] = []
  for (let start = 0; start < total; start += size) shards.push({ index: shards.length, start, count: Math.min(size, total - start) })
  return shards
}

type State = 'pending' | 'running' | 'done'

interface Entry {
  shard: Shard
  state: State
  /** Workers it failed on, with why: it is not given to them again while another worker can take it. */
  failures: Array<{ worker: string, error: string }>
  run?: ShardRun
}

/**
 * Hands out shards to workers and collects their results. A failed shard goes back to pending (no
 * shard is lost), and is not given again to a worker it failed on; after `maxAttempts` failures the
 * task fails with TaskShardFailedError.
 */
export class ShardBoard<R> {
  private readonly entries: Entry[]
  private readonly results: Array<R | undefined>
  private finished = 0
  private doneInputs = 0

  constructor (readonly total: number, size: number, private readonly maxAttempts = 4) {
    this.entries = planShards(total, size).map(shard => ({ shard, state: 'pending', failures: [] }))
    this.results = new Array<R | undefined>(total).fill(undefined)
  }

  get shardCount (): number { return this.entries.length }
  /** Inputs whose results are in. */
  get done (): number { return this.doneInputs }
  get complete (): boolean { return this.finished === this.entries.length }
  get running (): number { return this.entries.filter(e => e.state === 'running').length }
  get pending (): number { return this.entries.filter(e => e.state === 'pending').length }

  /** The lowest pending shard this worker has not failed on, now running; undefined when there is none for it. */
  take (worker: string): Shard | undefined {
    const entry = this.entries.find(e => e.state === 'pending' && !e.failures.some(f => f.worker === worker))
    if (entry === undefined) return undefined
    entry.state = 'running'
    return entry.shard
  }

  /** The shard's results, one per input; anything else is a failure of the worker (thrown as RangeError). */
  finish (shard: Shard, results: readonly R[], run: ShardRun): void {
    const entry = this.running_(shard)
    if (results.length !== shard.count) throw new RangeError(`${results.length} results for a shard of ${shard.count}`)
    results.forEach((r, i) => { this.results[shard.start + i] = r })
    entry.state = 'done'
    entry.run = run
    this.finished++
    this.doneInputs += shard.count
  }

  /** The shard goes back to pending; throws TaskShardFailedError once it failed `maxAttempts` times. */
  fail (shard: Shard, worker: string, error: string): void {
    const entry = this.running_(shard)
    entry.failures.push({ worker, error })
    entry.state = 'pending'
    if (entry.failures.length >= this.maxAttempts) {
      throw new TaskShardFailedError(shard.index, entry.failures.map(f => `${f.worker.slice(-8)}: ${f.error}`))
    }
  }

  /** A shard handed back without fault of its worker (busy, stopped): pending again, no attempt counted. */
  release (shard: Shard): void {
    this.running_(shard).state = 'pending'
  }

  /** Every result in input order; only once complete. */
  merged (): R[] {
    if (!this.complete) throw new RangeError('the task is not complete')
    return this.results as R[]
  }

  /** The finished shards in input order. */
  runs (): ShardRun[] {
    return this.entries.flatMap(e => e.run === undefined ? [] : [e.run])
  }

  /** The results of a finished shard, for streaming them on. */
  resultsOf (shard: Shard): R[] {
    return this.results.slice(shard.start, shard.start + shard.count) as R[]
  }

  private running_ (shard: Shard): Entry {
    const entry = this.entries[shard.index]
    if (entry === undefined || entry.shard !== shard || entry.state !== 'running') throw new RangeError(`shard ${shard.index} is not running`)
    return entry
  }
}
