import { JobClientStream, JobServerStream } from './job-stream.ts'
import { jobClientCodec, jobServerCodec } from './job-codecs.ts'
import { JobService, type ReceiptedJobServiceOptions } from './job-service.ts'
import { ModelJobIntake, type ModelJobServing } from './model-job-intake.ts'
import { resetAfter, withTimeout } from './stream-helpers.ts'
import { JobDeadlineError, RemoteInferenceError, MalformedMessageError, StreamBudgetError } from '../core/errors.ts'
import { sha256Of, utf8 } from '../core/crypto/bytes.ts'
import {
  INFERENCE_JOB_FRAMES, INFERENCE_PROTOCOL, JOB_ID_BYTES, MAX_DELTA_CHARS, NONCE_BYTES, type ClientFrame, type ServerFrame
} from '../core/wire/inference.ts'
import { completionTokenBound } from '../core/inference/token-bound.ts'
import { answerBudget } from '../core/inference/answer-budget.ts'
import type { EngineCompletion } from '../core/inference/chat.ts'
import type { ValidChatRequest } from '../core/inference/request.ts'
import type { JobRequestOptions } from '../core/jobs/admission.ts'
import type { SignedReceipt } from '../core/receipts/receipt.ts'
import type { Libp2p, Stream } from '@libp2p/interface'

/** A job run on this device: from the cache or an engine. */
export interface LocalRun {
  completion: EngineCompletion
  cached: boolean
}

export interface InferenceServiceOptions extends ReceiptedJobServiceOptions, ModelJobServing {
  run: (request: ValidChatRequest, onDelta: (text: string) => void, signal: AbortSignal) => Promise<LocalRun>
}

export interface RemoteCompletion extends LocalRun {
  timeToFirstTokenMs: number
  durationMs: number
  receipt: SignedReceipt
}

const FIRST_FRAME_TIMEOUT_MS = 15_000
/** Between two frames of a running job: generation may pause while the model loads a batch. */
const FRAME_GAP_TIMEOUT_MS = 30_000
/** The `done` after the last delta: the server counts and times the answer. */
const DONE_ALLOWANCE_MS = 5_000

type InferenceJobFrame = Extract<ClientFrame, { t: 'job' }>

const CLIENT_CODEC = jobClientCodec(INFERENCE_JOB_FRAMES, (peerId, code, message) => new RemoteInferenceError(peerId, code, message))

function randomBytes (n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n))
}


/** Splits text into pieces of at most MAX_DELTA_CHARS UTF-16 units without cutting a surrogate pair. */
function deltaPieces (text: string): string[] {
  const pieces: string[] = []
  for (let i = 0; i < text.length;) {
    let end = Math.min(i + MAX_DELTA_CHARS, text.length)
    const last = text.charCodeAt(end - 1)
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--
    pieces.push(text.slice(i, end))
    i = end
  }
  return pieces
}


/**
 * `/hyperspace/inference/1.0.0` on both sides: serves this node's models to peers (admission, limits,
 * streamed deltas, receipt countersigning) and sends this node's requests to a chosen peer.
 */
export class InferenceService extends JobService {
  private readonly intake = new ModelJobIntake((frame: InferenceJobFrame) => frame.req.model, model => model)

  constructor (libp2p: Libp2p, private readonly options: InferenceServiceOptions) {
    super(libp2p, INFERENCE_PROTOCOL, 64, options.streams)
  }

  /**
   * Runs a request on a peer, streaming its text through `onDelta`; both sides end up with the
   * countersigned receipt. The answer is held to what `max_tokens` allows (answerBudget): a peer that
   * sends more text or frames gets StreamBudgetError, one that takes longer JobDeadlineError.
   */
  async request (peerId: string, request: ValidChatRequest, onDelta: (text: string) => void, { signal, forStranger }: JobRequestOptions = {}): Promise<RemoteCompletion> {
    const started = this.options.scheduler.now()
    const budget = answerBudget(request.max_tokens)
    return await JobClientStream.run(this.streams, peerId, CLIENT_CODEC, withTimeout(signal, FIRST_FRAME_TIMEOUT_MS), async client => {
      const job = randomBytes(JOB_ID_BYTES)
      await client.send({ t: 'job', job, req: request, ...(forStranger === true ? { stranger: true } : {}) }, signal)
      const first = await client.accepted(withTimeout(signal, FIRST_FRAME_TIMEOUT_MS))
      const deadlineMs = budget.deadlineMs + DONE_ALLOWANCE_MS
      const deadline = AbortSignal.timeout(deadlineMs)
      let text = ''
      let bytes = 0
      let frames = 0
      let firstTokenAt: number | undefined
      let done: Extract<ServerFrame, { t: 'done' }> | undefined
      while (done === undefined) {
        let frame: ServerFrame
        try {
          frame = await client.read(AbortSignal.any([withTimeout(signal, FRAME_GAP_TIMEOUT_MS), deadline]))
        } catch (err) {
          if (deadline.aborted && signal?.aborted !== true) throw new JobDeadlineError(peerId, deadlineMs)
          throw err
        }
        if (frame.t === 'delta') {
          frames++
          bytes += utf8(frame.text).byteLength
          if (frames > budget.frames) throw new StreamBudgetError(peerId, 'delta frames', budget.frames)
          if (bytes > budget.bytes) throw new StreamBudgetError(peerId, 'bytes of text', budget.bytes)
          firstTokenAt ??= this.options.scheduler.now()
          text += frame.text
          onDelta(frame.text)
        } else if (frame.t === 'done') {
          if (frame.completion > request.max_tokens) throw new MalformedMessageError(`the server counts ${frame.completion} tokens for at most ${request.max_tokens}`)
          done = frame
        } else {
          throw new MalformedMessageError(`unexpected ${frame.t} frame during generation`)
        }
      }
      const receipt = await client.exchangeReceipt(this.options, {
        job, nonce: first.nonce, kind: 'inference', server: peerId, client: this.options.signer.peerId, model: request.model,
        units: Math.min(done.completion, completionTokenBound(text, request)), cached: done.cached, output: sha256Of(utf8(text)),
        round: this.options.currentRound(), ts: Date.now()
      }, signal)
      const end = this.options.scheduler.now()
      return {
        completion: { text, finishReason: done.finish, promptTokens: done.prompt, completionTokens: done.completion },
        cached: done.cached,
        timeToFirstTokenMs: (firstTokenAt ?? end) - started,
        durationMs: end - started,
        receipt
      }
    })
  }

  protected async serve (stream: Stream, client: string): Promise<void> {
    const o = this.options
    const server = new JobServerStream(stream, client, jobServerCodec(INFERENCE_JOB_FRAMES, o.writeTimeoutMs))
    const taken = await this.intake.take(server, stream, client, o)
    if (taken === undefined) return
    const { frame: { job, req }, release } = taken
    const nonce = randomBytes(NONCE_BYTES)
    // The engine stops when the client goes away or stops taking deltas (a write past its
    // deadline): either way the slot is freed at once, not when the answer is done.
    const stalled = new AbortController()
    // The client gives up on an answer past its budget's deadline; the job ends then here too.
    const deadlineMs = answerBudget(req.max_tokens).deadlineMs + DONE_ALLOWANCE_MS
    const cancelDeadline = resetAfter(stream, deadlineMs, () => new JobDeadlineError(client, deadlineMs))
    let result: LocalRun
    let writes = Promise.resolve()
    try {
      await server.send({ t: 'accept', nonce })
      const started = o.scheduler.now()
      let firstAt: number | undefined
      result = await o.run(req, text => {
        firstAt ??= o.scheduler.now()
        for (const piece of deltaPieces(text)) {
          writes = writes.then(async () => { await server.send({ t: 'delta', text: piece }) })
          writes.catch(err => { stalled.abort(err) })
        }
      }, AbortSignal.any([server.gone, stalled.signal]))
      await writes
      const c = result.completion
      const ms = o.scheduler.now() - started
      await server.send({ t: 'done', finish: c.finishReason, prompt: c.promptTokens, completion: c.completionTokens, ms, ttft: (firstAt ?? started + ms) - started, cached: result.cached })
    } catch (err) {
      cancelDeadline()
      release()
      await writes.catch(() => {})
      await server.fail(stalled.signal.aborted ? stalled.signal.reason : err)
      return
    } finally {
      cancelDeadline()
      release()
    }
    const { completion } = result
    await server.countersign(o, {
      job, nonce, server: o.signer.peerId, client, model: req.model, output: sha256Of(utf8(completion.text)), kind: 'inference',
      cached: result.cached, units: completion.completionTokens, unitName: 'tokens'
    })
  }
}
