import { encodeMessage } from './cbor.ts'
import { EMBED_LIMITS } from '../embedding/limits.ts'
import { MAX_MODEL_DIMS } from '../embedding/models.ts'
import { decodeVectors, encodeVectors } from './embed.ts'
import { MalformedMessageError } from '../errors.ts'
import { REQUEST_LIMITS, isModelId, type ValidChatRequest } from '../inference/request.ts'
import { answerBudget } from '../inference/answer-budget.ts'
import { concat, sha256Of, u32be, utf8 } from '../crypto/bytes.ts'
import { TaskInputError } from '../tasks/errors.ts'
import { TASK_LIMITS, validateTask, type ValidTask } from '../tasks/request.ts'
import { bytesOf, clientFrameDecoder, decodeAccept, encodeFrame, jobFrames, serverFrameDecoder, textOf, uintOf } from './frame.ts'
import type { JobServerFrame, SignFrame } from './frame.ts'

/**
 * Frames of `/hyperspace/task/1.0.0`, each a length-prefixed strict-CBOR map, one task per stream:
 *
 *   client: task (job, kind, model?, inputs) ──▶ server: accept | busy | error
 *                                                server: progress | part (results of a range) ... | error
 *                                                server: done (model, dims, shards)
 *   client: sign (receipt) ────────────────────▶ server: countersign | error
 *
 * The orchestrator streams each shard's results as they come (`part`, a range of inputs), so no frame
 * holds the whole batch; the client puts them in place and checks that every input got exactly one.
 */
export const TASK_PROTOCOL = '/hyperspace/task/1.0.0'
export const TASK_WIRE_VERSION = 1
export const TASK_JOB_ID_BYTES = 16
export const TASK_NONCE_BYTES = 16
/** The inputs' bytes plus CBOR's headers and a chat request's fields (at most 64 messages of ~40 bytes each). */
export const TASK_FRAME_MAX_BYTES = TASK_LIMITS.inputBytes + TASK_LIMITS.embedInputs * 9 + TASK_LIMITS.chatInputs * 4096 + 1024
/** A part holds at most one embed batch of the largest vectors, or a few answers of max_tokens × 256 bytes. */
export const TASK_PART_MAX_INPUTS = EMBED_LIMITS.batch
export const TASK_PART_FRAME_MAX_BYTES = EMBED_LIMITS.batch * MAX_MODEL_DIMS * 4 + 1024
/** Every other server frame (done lists at most one entry per input of a chat task) and the sign frame. */
export const TASK_SMALL_FRAME_MAX_BYTES = 64 * 1024
const MAX_SHARDS_LISTED = TASK_LIMITS.chatInputs
const MAX_PEER_CHARS = 128

/** What a part or done frame says of one shard: who ran it, its inputs, its time in ms. */
export type ShardTuple = [string, number, number]

export type TaskClientFrame =
  | { t: 'task', job: Uint8Array, task: ValidTask }
  | SignFrame

export type TaskServerFrame = JobServerFrame<
  | { t: 'progress', done: number, total: number }
  | { t: 'part', start: number, dims: number, vectors: Uint8Array }
  | { t: 'part', start: number, texts: string[] }
  | { t: 'done', model: string, shards: ShardTuple[] }
>

/** A chat request on the wire: its fields without the model (the task's) and without an absent seed. */
function chatFields (r: ValidChatRequest): Record<string, unknown> {
  return { messages: r.messages, max_tokens: r.max_tokens, temperature: r.temperature, top_p: r.top_p, stop: r.stop, ...(r.seed !== undefined ? { seed: r.seed } : {}) }
}

export function encodeTaskClientFrame (frame: TaskClientFrame): Uint8Array {
  if (frame.t === 'sign') return encodeFrame(TASK_WIRE_VERSION, frame)
  const { task } = frame
  const inputs = task.kind === 'embed' ? task.inputs : task.inputs.map(chatFields)
  return encodeMessage({ v: TASK_WIRE_VERSION, t: 'task', job: frame.job, kind: task.kind, ...(task.model !== undefined ? { model: task.model } : {}), inputs })
}

export const decodeTaskClientFrame = clientFrameDecoder<TaskClientFrame>({ version: TASK_WIRE_VERSION, maxBytes: TASK_FRAME_MAX_BYTES, signMaxBytes: TASK_SMALL_FRAME_MAX_BYTES }, {
  task: m => {
    const job = bytesOf(m.job, 'job', TASK_JOB_ID_BYTES, TASK_JOB_ID_BYTES)
    try {
      return { t: 'task', job, task: validateTask({ kind: m.kind, model: m.model, inputs: m.inputs }) }
    } catch (err) {
      if (err instanceof TaskInputError) throw new MalformedMessageError(`task: ${err.message}`)
      throw err
    }
  }
})

export const decodeTaskServerFrame = serverFrameDecoder<TaskServerFrame>({ version: TASK_WIRE_VERSION, maxBytes: TASK_PART_FRAME_MAX_BYTES, smallMaxBytes: TASK_SMALL_FRAME_MAX_BYTES, largeType: 'part' }, {
  accept: m => decodeAccept(m, TASK_NONCE_BYTES),
  progress: m => ({ t: 'progress', done: uintOf(m.done, 'done', 0, TASK_LIMITS.embedInputs), total: uintOf(m.total, 'total', 1, TASK_LIMITS.embedInputs) }),
  part: m => {
    const start = uintOf(m.start, 'start', 0, TASK_LIMITS.embedInputs - 1)
    if (m.texts !== undefined) {
      if (!Array.isArray(m.texts) || m.texts.length === 0 || m.texts.length > TASK_PART_MAX_INPUTS) throw new MalformedMessageError(`texts must be 1 to ${TASK_PART_MAX_INPUTS} answers`)
      const texts = m.texts.map((text: unknown, i) => textOf(text, `texts[${i}]`, REQUEST_LIMITS.maxTokens * 256))
      return { t: 'part', start, texts }
    }
    const dims = uintOf(m.dims, 'dims', 1, MAX_MODEL_DIMS)
    const vectors = bytesOf(m.vectors, 'vectors', TASK_PART_FRAME_MAX_BYTES)
    const count = vectors.byteLength / (dims * 4)
    if (!Number.isInteger(count) || count < 1 || count > TASK_PART_MAX_INPUTS) throw new MalformedMessageError(`vectors must be 1 to ${TASK_PART_MAX_INPUTS} × ${dims} float32s`)
    return { t: 'part', start, dims, vectors }
  },
  done: m => {
    if (!Array.isArray(m.shards) || m.shards.length > MAX_SHARDS_LISTED) throw new MalformedMessageError(`shards must be at most ${MAX_SHARDS_LISTED}`)
    const shards = m.shards.map((s: unknown): ShardTuple => {
      if (!Array.isArray(s) || s.length !== 3) throw new MalformedMessageError('a shard must be [peer, count, ms]')
      return [textOf(s[0], 'peer', MAX_PEER_CHARS), uintOf(s[1], 'count', 1, TASK_LIMITS.embedInputs), uintOf(s[2], 'ms', 0, 3_600_000)]
    })
    if (!isModelId(m.model)) throw new MalformedMessageError('model is not a model id')
    return { t: 'done', model: m.model, shards }
  }
})

/** The task job stream's frames both ways (net/job-codecs.ts frames a stream with them). */
export const TASK_JOB_FRAMES = jobFrames<TaskClientFrame, TaskServerFrame>({
  protocol: TASK_PROTOCOL, version: TASK_WIRE_VERSION, clientMaxBytes: TASK_FRAME_MAX_BYTES, serverMaxBytes: TASK_PART_FRAME_MAX_BYTES,
  encodeClient: encodeTaskClientFrame, decodeClient: decodeTaskClientFrame, decodeServer: decodeTaskServerFrame
})

/**
 * Puts a task's streamed parts in place: every input gets exactly one result, vectors all of one
 * dimension, answers no longer than their prompts' max_tokens allow; anything else is the
 * orchestrator's fault (MalformedMessageError).
 */
export class PartAssembler {
  private readonly results: Array<Float32Array | string | undefined>
  private filled = 0
  dims: number | undefined

  readonly kind: ValidTask['kind']
  readonly total: number
  /** The UTF-8 bytes each chat answer may have, by input: what its prompt's max_tokens allow. */
  private readonly answerBytes: (input: number) => number

  constructor (task: ValidTask) {
    this.kind = task.kind
    this.total = task.inputs.length
    this.answerBytes = task.kind === 'chat' ? input => answerBudget(task.inputs[input]?.max_tokens ?? 0).bytes : () => 0
    this.results = new Array<Float32Array | string | undefined>(this.total).fill(undefined)
  }

  get done (): number { return this.filled }
  get complete (): boolean { return this.filled === this.total }

  add (part: Extract<TaskServerFrame, { t: 'part' }>): void {
    let items: Array<Float32Array | string>
    if ('texts' in part) {
      if (this.kind !== 'chat') throw new MalformedMessageError('answers in an embed task')
      part.texts.forEach((text, i) => {
        const input = part.start + i
        // An answer longer than its prompt's max_tokens allow is no model's: the client holds and signs only what it asked for.
        if (utf8(text).byteLength > this.answerBytes(input)) throw new MalformedMessageError(`answer ${input} is longer than its max_tokens allow`)
      })
      items = part.texts
    } else {
      if (this.kind !== 'embed') throw new MalformedMessageError('vectors in a chat task')
      if (this.dims !== undefined && part.dims !== this.dims) throw new MalformedMessageError(`vectors of ${part.dims} dimensions after ${this.dims}`)
      this.dims = part.dims
      items = decodeVectors(part.vectors, part.dims, part.vectors.byteLength / (part.dims * 4))
    }
    if (part.start + items.length > this.total) throw new MalformedMessageError(`a part of ${items.length} at ${part.start} runs past the task's ${this.total} inputs`)
    for (let i = 0; i < items.length; i++) {
      if (this.results[part.start + i] !== undefined) throw new MalformedMessageError(`input ${part.start + i} answered twice`)
    }
    items.forEach((item, i) => { this.results[part.start + i] = item })
    this.filled += items.length
  }

  /** Every result, in input order; only once complete. */
  merged (): Array<Float32Array | string> {
    if (!this.complete) throw new MalformedMessageError(`${this.total - this.filled} of ${this.total} inputs have no result`)
    return this.results as Array<Float32Array | string>
  }
}

/**
 * What the orchestration receipt's `out` binds: SHA-256 of the vectors (little-endian float32, input
 * by input) for embed, of each answer's UTF-8 length (u32be) and bytes for chat.
 */
export function taskOutputHash (results: ReadonlyArray<Float32Array | string>, dims?: number): Uint8Array {
  if (results.every(r => typeof r === 'string')) return sha256Of(concat(...(results as string[]).flatMap(text => { const b = utf8(text); return [u32be(b.byteLength), b] })))
  return sha256Of(encodeVectors(results as Float32Array[], dims ?? (results[0] as Float32Array).length))
}
