import { JobClientStream, JobServerStream } from './job-stream.ts'
import { jobClientCodec, jobServerCodec } from './job-codecs.ts'
import { PeerStreams } from './peer-streams.ts'
import { JobService, type ReceiptedJobServiceOptions } from './job-service.ts'
import { resetAfter, withTimeout } from './stream-helpers.ts'
import { JobDeadlineError, MalformedMessageError, RemoteInferenceError, errorMessage } from '../core/errors.ts'
import { encodeVectors } from '../core/wire/embed.ts'
import { OrchestrationOffError, TaskInputError } from '../core/tasks/errors.ts'
import {
  PartAssembler, TASK_JOB_FRAMES, TASK_JOB_ID_BYTES, TASK_NONCE_BYTES, TASK_PROTOCOL, taskOutputHash, type ShardTuple,
  type TaskServerFrame
} from '../core/wire/tasks.ts'
import type { SignedReceipt } from '../core/receipts/receipt.ts'
import type { TaskProgress } from '../core/tasks/orchestrate.ts'
import type { ShardRun } from '../core/tasks/shards.ts'
import type { ValidTask } from '../core/tasks/request.ts'
import type { Libp2p, Stream } from '@libp2p/interface'

/** A task's results as the orchestrator has them: vectors (embed) or answers (chat), in input order. */
export interface OrchestratedTask {
  model: string
  dims?: number
  results: Array<Float32Array | string>
  shards: ShardTuple[]
  /** The shards as the orchestrator saw them (with the underlying jobs' receipts); not sent. */
  runs?: ShardRun[]
}

/** A range of finished results, streamed to the client as it comes. */
export type PartSink = (start: number, results: Array<Float32Array | string>, dims?: number) => void

export interface TaskServiceOptions extends ReceiptedJobServiceOptions {
  /** Whether this node orchestrates peers' tasks now (its orchestration capability is on). */
  serving: () => boolean
  /** Runs a peer's task here (never handing it on), streaming each shard's results to `part`. */
  run: (task: ValidTask, client: string, signal: AbortSignal, part: PartSink) => Promise<OrchestratedTask>
}

export interface RemoteTask extends OrchestratedTask {
  receipt?: SignedReceipt
}

const TASK_READ_TIMEOUT_MS = 10_000
const ACCEPT_TIMEOUT_MS = 15_000
/** The most a client waits between two frames: the orchestrator sends progress at least this often. */
const FRAME_TIMEOUT_MS = 45_000
const HEARTBEAT_MS = 15_000
/** The whole task, on both sides. */
export const TASK_DEADLINE_MS = 10 * 60_000
const BUSY_RETRY_MS = 5_000

const CLIENT_CODEC = jobClientCodec(TASK_JOB_FRAMES, (peerId, code, message) => code === 'ERR_ORCHESTRATION_OFF'
  ? new OrchestrationOffError(peerId)
  : code === 'ERR_TASK_INPUT' ? new TaskInputError(message) : new RemoteInferenceError(peerId, code, message))

/**
 * Task streams one peer may have open here at once, over all its connections: a peer runs one task
 * here at a time, and each stream holds its unread task frame (up to 3 MiB) until it is read; two let
 * a finished task's stream close while the next one starts. Past them a stream is answered busy
 * before its frame is read (of at most MAX_INBOUND_STREAMS per connection, which libp2p resets).
 */
const MAX_STREAMS_PER_PEER = 2
const MAX_INBOUND_STREAMS = 8

/**
 * `/hyperspace/task/1.0.0` on both sides: hands a whole batch to a peer that orchestrates it, and
 * orchestrates peers' batches here: one task at a time per peer, a few at once in all, a per-peer
 * rate, every frame bounded, and the orchestration receipt at the end.
 */
export class TaskService extends JobService {
  /** Peers with a task running here: one each. */
  private readonly active = new Set<string>()
  private readonly streamsByPeer = new PeerStreams(MAX_STREAMS_PER_PEER)

  constructor (libp2p: Libp2p, private readonly o: TaskServiceOptions) {
    super(libp2p, TASK_PROTOCOL, MAX_INBOUND_STREAMS, o.streams)
  }

  /** Asks the peer to orchestrate the task; results arrive in parts and are checked to cover every input once. */
  async request (peerId: string, task: ValidTask, onProgress?: (progress: TaskProgress) => void, signal?: AbortSignal): Promise<RemoteTask> {
    const whole = withTimeout(signal, TASK_DEADLINE_MS)
    return await JobClientStream.run(this.streams, peerId, CLIENT_CODEC, withTimeout(whole, ACCEPT_TIMEOUT_MS), async client => {
      const job = crypto.getRandomValues(new Uint8Array(TASK_JOB_ID_BYTES))
      await client.send({ t: 'task', job, task }, whole)
      const first = await client.accepted(withTimeout(whole, ACCEPT_TIMEOUT_MS))
      const parts = new PartAssembler(task)
      let received = 0
      for (;;) {
        const frame = await client.read(withTimeout(whole, FRAME_TIMEOUT_MS))
        if (frame.t === 'progress') continue
        if (frame.t === 'part') {
          parts.add(frame)
          onProgress?.({ done: parts.done, total: parts.total, shards: ++received, shardCount: 0 })
          continue
        }
        if (frame.t !== 'done') throw new MalformedMessageError(`expected part or done, got ${frame.t}`)
        const results = parts.merged()
        const outcome: OrchestratedTask = { model: frame.model, results, shards: frame.shards, ...(parts.dims !== undefined ? { dims: parts.dims } : {}) }
        try {
          const receipt = await client.exchangeReceipt(this.o, {
            job, nonce: first.nonce, kind: 'orchestration', server: peerId, client: this.o.signer.peerId, model: frame.model,
            units: task.inputs.length, cached: false, output: taskOutputHash(results, parts.dims), round: this.o.currentRound(), ts: Date.now()
          }, whole)
          return { ...outcome, receipt }
        } catch (err) {
          // The receipt's failure costs the orchestrator its points, not the client its results.
          whole.throwIfAborted()
          console.warn('hyperspace: no orchestration receipt from', peerId, errorMessage(err))
          return outcome
        }
      }
    })
  }

  protected async serve (stream: Stream, client: string): Promise<void> {
    const o = this.o
    const server = new JobServerStream(stream, client, jobServerCodec(TASK_JOB_FRAMES, o.writeTimeoutMs))
    if (!this.streamsByPeer.track(client, stream)) return await server.busy(BUSY_RETRY_MS)
    const frame = await server.first('task', TASK_READ_TIMEOUT_MS)
    if (frame === undefined) return
    if (!o.serving()) {
      await server.fail(new OrchestrationOffError(o.signer.peerId))
      return
    }
    // One task at a time per peer: a second one is busy until the first ends. Recorded before the
    // wait for a place, or a second task arriving meanwhile would pass this check too.
    if (this.active.has(client)) return await server.busy(BUSY_RETRY_MS)
    this.active.add(client)
    let release: (() => void) | undefined
    try {
      release = await server.admit(o, server.gone, BUSY_RETRY_MS)
    } finally {
      if (release === undefined) this.active.delete(client)
    }
    if (release === undefined) return
    const nonce = crypto.getRandomValues(new Uint8Array(TASK_NONCE_BYTES))
    const cancelDeadline = resetAfter(stream, TASK_DEADLINE_MS, () => new JobDeadlineError(client, TASK_DEADLINE_MS))
    // Frames go out one after another, whatever order the shards finish in. A client that stops taking
    // them stops the task: its workers are freed rather than run on for nobody until the deadline.
    const stalled = new AbortController()
    let sending: Promise<void> = Promise.resolve()
    const send = (f: TaskServerFrame): void => {
      sending = sending.then(async () => { await server.send(f) })
      sending.catch(err => { stalled.abort(err) })
    }
    let done = 0
    const heartbeat = o.scheduler.every(HEARTBEAT_MS, () => { send({ t: 'progress', done, total: frame.task.inputs.length }) })
    let outcome: OrchestratedTask
    try {
      await server.send({ t: 'accept', nonce })
      outcome = await o.run(frame.task, client, AbortSignal.any([server.gone, stalled.signal, AbortSignal.timeout(TASK_DEADLINE_MS)]), (start, results, dims) => {
        done += results.length
        send(typeof results[0] === 'string'
          ? { t: 'part', start, texts: results as string[] }
          : { t: 'part', start, dims: dims ?? 0, vectors: encodeVectors(results as Float32Array[], dims ?? 0) })
      })
      heartbeat()
      await sending
      await server.send({ t: 'done', model: outcome.model, shards: outcome.shards })
    } catch (err) {
      heartbeat()
      cancelDeadline()
      release()
      this.active.delete(client)
      await sending.catch(() => {})
      await server.fail(err)
      return
    } finally {
      heartbeat()
      cancelDeadline()
      release()
      this.active.delete(client)
    }
    await server.countersign(o, {
      job: frame.job, nonce, server: o.signer.peerId, client, model: outcome.model, output: taskOutputHash(outcome.results, outcome.dims),
      kind: 'orchestration', cached: false, units: frame.task.inputs.length, unitName: 'inputs'
    })
  }
}
