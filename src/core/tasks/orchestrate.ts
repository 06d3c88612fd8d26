import { errorMessage } from '../errors.ts'
import { NoTaskWorkerError } from './errors.ts'
import { ShardBoard, type Shard, type ShardRun } from './shards.ts'
import type { Scheduler } from '../scheduler.ts'

/**
 * Runs a batch over workers (peers, and this node itself under its own peer id): shards go to every
 * worker that can take one, a few at a time each, as fast as each returns them, so a fast worker
 * takes more shards than a slow one. A shard whose worker fails or leaves goes back to the board and
 * is run by another worker (never again by the one it failed on); a worker that fails twice is
 * dropped for the rest of the task; one that says busy is left alone for a moment. New workers that
 * appear during the batch are taken on. Pure: the network comes in through the ports.
 */
export interface TaskWorkers<I, R> {
  /** Workers that could run shards now, best first, none of `exclude`. */
  candidates: (exclude: ReadonlySet<string>, signal: AbortSignal) => Promise<string[]>
  /** Runs one shard's inputs on the worker: one result per input, in order. */
  run: (worker: string, inputs: I[], signal: AbortSignal) => Promise<{ results: R[], receipt?: string }>
}

export interface TaskProgress {
  /** Inputs whose results are in. */
  done: number
  total: number
  /** Shards finished, of `shardCount`. */
  shards: number
  shardCount: number
}

export interface OrchestrateOptions<R> {
  /** What the task needs, for errors ("embeddings of model2vec-64d"). */
  what: string
  shardSize: number
  scheduler: Pick<Scheduler, 'now' | 'after'>
  /** Shards one worker holds at once (a queued second one hides the round trip). */
  perWorker?: number
  /** Workers used at once. */
  maxWorkers?: number
  /** Failures of one shard before the task fails. */
  maxAttempts?: number
  signal?: AbortSignal
  onProgress?: (progress: TaskProgress) => void
  /** A shard's results are in (streamed on by a node orchestrating for a peer). */
  onShard?: (shard: Shard, results: R[], run: ShardRun) => void
  /** The task itself is wrong: fail it rather than try elsewhere. */
  isFinal?: (err: unknown) => boolean
  /** The worker is busy: try it again a little later. */
  isBusy?: (err: unknown) => boolean
  /** How often the candidates are asked again while shards run (peers come and go); 2 s by default. */
  refreshMs?: number
}

export interface TaskOutcome<R> {
  results: R[]
  shards: ShardRun[]
}

/** Failures before a worker is dropped for the rest of the task. */
const WORKER_FAILURES = 2
/** Consecutive busy answers before a worker is dropped. */
const WORKER_BUSY = 20
const BUSY_PAUSE_MS = 1_000
const FAILURE_PAUSE_MS = 500

interface Worker {
  id: string
  inFlight: number
  failures: number
  busy: number
  pausedUntil: number
}

export async function orchestrate<I, R> (inputs: readonly I[], ports: TaskWorkers<I, R>, o: OrchestrateOptions<R>): Promise<TaskOutcome<R>> {
  const perWorker = o.perWorker ?? 2
  const maxWorkers = o.maxWorkers ?? 16
  const board = new ShardBoard<R>(inputs.length, o.shardSize, o.maxAttempts ?? 4)
  const stop = new AbortController()
  const signal = o.signal === undefined ? stop.signal : AbortSignal.any([o.signal, stop.signal])
  const workers = new Map<string, Worker>()
  const dropped = new Map<string, string>()
  let inFlight = 0
  let refreshing: Promise<void> | undefined
  let refreshedAt = -Infinity
  const cancelTimers = new Set<() => void>()
  let onAbort = (): void => {}

  return await new Promise<TaskOutcome<R>>((resolve, reject) => {
    let settled = false
    const finish = (err?: unknown): void => {
      if (settled) return
      settled = true
      for (const cancel of cancelTimers) cancel()
      // Whatever still runs for this task stops: its results are no longer wanted.
      stop.abort(err ?? new Error('the task is complete'))
      if (err !== undefined) reject(err)
      else resolve({ results: board.merged(), shards: board.runs() })
    }
    onAbort = () => { finish(o.signal?.reason ?? new Error('aborted')) }
    o.signal?.addEventListener('abort', onAbort, { once: true })
    if (o.signal?.aborted === true) { onAbort(); return }
    if (board.complete) { finish(); return }

    const refresh = async (): Promise<void> => {
      refreshing ??= (async () => {
        try {
          const found = await ports.candidates(new Set([...workers.keys(), ...dropped.keys()]), signal)
          for (const id of found) {
            if (workers.size >= maxWorkers) break
            if (!workers.has(id) && !dropped.has(id)) workers.set(id, { id, inFlight: 0, failures: 0, busy: 0, pausedUntil: 0 })
          }
        } finally {
          refreshedAt = o.scheduler.now()
          refreshing = undefined
        }
      })()
      await refreshing
    }

    const later = (ms: number): void => {
      const cancel = o.scheduler.after(ms, () => {
        cancelTimers.delete(cancel)
        fill()
      })
      cancelTimers.add(cancel)
    }

    const start = (worker: Worker, shard: Shard): void => {
      worker.inFlight++
      inFlight++
      const began = o.scheduler.now()
      ports.run(worker.id, inputs.slice(shard.start, shard.start + shard.count), signal).then(({ results, receipt }) => {
        const run: ShardRun = { peer: worker.id, count: shard.count, ms: o.scheduler.now() - began, ...(receipt !== undefined ? { receipt } : {}) }
        board.finish(shard, results, run)
        worker.failures = 0
        worker.busy = 0
        o.onShard?.(shard, results, run)
        o.onProgress?.({ done: board.done, total: board.total, shards: board.runs().length, shardCount: board.shardCount })
      }).catch(err => {
        if (settled) return
        if (o.isFinal?.(err) === true) throw err
        if (o.isBusy?.(err) === true) {
          board.release(shard)
          worker.pausedUntil = o.scheduler.now() + BUSY_PAUSE_MS
          if (++worker.busy >= WORKER_BUSY) drop(worker, errorMessage(err))
          later(BUSY_PAUSE_MS)
          return
        }
        worker.failures++
        worker.pausedUntil = o.scheduler.now() + FAILURE_PAUSE_MS
        if (worker.failures >= WORKER_FAILURES) drop(worker, errorMessage(err))
        board.fail(shard, worker.id, errorMessage(err))
        later(FAILURE_PAUSE_MS)
      }).catch(err => { finish(err) }).finally(() => {
        worker.inFlight--
        inFlight--
        if (!settled) fill()
      })
    }

    const drop = (worker: Worker, why: string): void => {
      workers.delete(worker.id)
      dropped.set(worker.id, why)
    }

    /** Starts every shard some free worker can take; when nothing runs and nothing can, asks for workers again or gives up. */
    const fill = (): void => {
      if (settled) return
      if (board.complete) return finish()
      const now = o.scheduler.now()
      let paused = false
      for (const worker of workers.values()) {
        if (worker.pausedUntil > now) {
          paused = true
          continue
        }
        while (worker.inFlight < perWorker) {
          const shard = board.take(worker.id)
          if (shard === undefined) break
          start(worker, shard)
        }
      }
      if (now - refreshedAt >= (o.refreshMs ?? 2_000) && refreshing === undefined && workers.size < maxWorkers) {
        refresh().then(() => { if (inFlight === 0) fill() }, err => { if (inFlight === 0) finish(err) })
        return
      }
      if (inFlight > 0 || paused || refreshing !== undefined) return
      // Nothing runs, nobody is paused, and the candidates were just asked: nobody left to run the rest.
      finish(new NoTaskWorkerError(o.what, [...dropped].map(([id, why]) => `${id.slice(-8)}: ${why}`)))
    }
    refresh().then(() => { fill() }, err => { finish(err) })
  }).finally(() => {
    o.signal?.removeEventListener('abort', onAbort)
  })
}
