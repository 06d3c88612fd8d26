import { encodeMessage } from './cbor.ts'
import { MalformedMessageError } from '../errors.ts'
import { validateChatRequest, type ValidChatRequest } from '../inference/request.ts'
import type { FinishReason } from '../inference/chat.ts'
import { bytesOf, clientFrameDecoder, decodeAccept, encodeFrame, jobFrames, serverFrameDecoder, strangerField, textOf } from './frame.ts'
import type { ForStranger, JobServerFrame, SignFrame } from './frame.ts'

/**
 * Frames of `/hyperspace/inference/1.0.0`, each a length-prefixed strict-CBOR map:
 *
 *   client: job ─────────────▶ server: accept | busy | error
 *                               server: delta* then done | error
 *   client: sign (receipt) ──▶ server: countersign | error
 */
export const INFERENCE_PROTOCOL = '/hyperspace/inference/1.0.0'
export const WIRE_VERSION = 1
export const JOB_ID_BYTES = 16
export const NONCE_BYTES = 16
/** 32 Ki characters of messages can take four bytes each in UTF-8. */
export const JOB_FRAME_MAX_BYTES = 160 * 1024
export const FRAME_MAX_BYTES = 8 * 1024
/** Four UTF-8 bytes per character still fit a frame; the server splits longer pieces. */
export const MAX_DELTA_CHARS = 1024

export type ClientFrame =
  | { t: 'job', job: Uint8Array, req: ValidChatRequest } & ForStranger
  | SignFrame

export type ServerFrame = JobServerFrame<
  | { t: 'delta', text: string }
  | { t: 'done', finish: FinishReason, prompt: number, completion: number, ms: number, ttft: number, cached: boolean }
>

const FINISH: readonly FinishReason[] = ['stop', 'length', 'abort']

function countOf (value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new MalformedMessageError(`${field} must be a count`)
  return value
}

/** The request as CBOR: no undefined values (strict CBOR has none), so an absent seed is left out. */
function requestRecord (req: ValidChatRequest): Record<string, unknown> {
  const { seed, ...rest } = req
  return seed === undefined ? rest : { ...rest, seed }
}

export function encodeClientFrame (frame: ClientFrame): Uint8Array {
  return frame.t === 'job'
    ? encodeMessage({ v: WIRE_VERSION, t: frame.t, job: frame.job, req: requestRecord(frame.req), ...strangerField(frame.stranger) })
    : encodeFrame(WIRE_VERSION, frame)
}

export const decodeClientFrame = clientFrameDecoder<ClientFrame>({ version: WIRE_VERSION, maxBytes: JOB_FRAME_MAX_BYTES, signMaxBytes: FRAME_MAX_BYTES }, {
  job: m => {
    let req: ValidChatRequest
    try {
      req = validateChatRequest(m.req)
    } catch (err) {
      throw new MalformedMessageError(`req: ${(err as Error).message}`)
    }
    return { t: 'job', job: bytesOf(m.job, 'job', FRAME_MAX_BYTES, JOB_ID_BYTES), req, ...strangerField(m.stranger) }
  }
})

export const decodeServerFrame = serverFrameDecoder<ServerFrame>({ version: WIRE_VERSION, maxBytes: FRAME_MAX_BYTES, smallMaxBytes: FRAME_MAX_BYTES }, {
  accept: m => decodeAccept(m, NONCE_BYTES),
  // Not the shared busy frame: this protocol has always taken any wait (the others cap it at an hour).
  busy: m => ({ t: 'busy', retryMs: countOf(m.retryMs, 'retryMs') }),
  delta: m => ({ t: 'delta', text: textOf(m.text, 'text', MAX_DELTA_CHARS) }),
  done: m => {
    if (!FINISH.includes(m.finish as FinishReason)) throw new MalformedMessageError('finish must be stop, length or abort')
    if (typeof m.cached !== 'boolean') throw new MalformedMessageError('cached must be a boolean')
    return {
      t: 'done',
      finish: m.finish as FinishReason,
      prompt: countOf(m.prompt, 'prompt'),
      completion: countOf(m.completion, 'completion'),
      ms: countOf(m.ms, 'ms'),
      ttft: countOf(m.ttft, 'ttft'),
      cached: m.cached
    }
  }
})

/** The inference job stream's frames both ways (net/job-codecs.ts frames a stream with them). */
export const INFERENCE_JOB_FRAMES = jobFrames<ClientFrame, ServerFrame>({
  protocol: INFERENCE_PROTOCOL, version: WIRE_VERSION, clientMaxBytes: JOB_FRAME_MAX_BYTES, serverMaxBytes: FRAME_MAX_BYTES,
  encodeClient: encodeClientFrame, decodeClient: decodeClientFrame, decodeServer: decodeServerFrame
})
