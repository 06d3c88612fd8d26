import { errorMessage, HyperspaceError, MalformedMessageError } from '../errors.ts'
import { decodeMessage, encodeMessage } from './cbor.ts'

/**
 * What every job protocol's frames share (inference, embed, blocks, proxy, tasks; points uses the
 * error frame): each frame is a strict-CBOR map `{ v, t, ... }`, a job ends with the client's `sign`
 * and the server's `countersign` of the receipt, and a server may answer `accept`, `busy` or `error`.
 * The decoders take the map `decodeMessage` returned and check the fields; each throws
 * MalformedMessageError naming the field.
 */

/** The server took the job; the receipt will carry its nonce. */
export interface AcceptFrame { t: 'accept', nonce: Uint8Array }
/** The server is full: ask again after `retryMs`, or ask someone else. */
export interface BusyFrame { t: 'busy', retryMs: number }
/** Why a job failed: the stable code of a named error, and its message. */
export interface ErrorFrame { t: 'error', code: string, message: string }
/** The client's signed receipt, the last frame a client sends. */
export interface SignFrame { t: 'sign', receipt: Uint8Array }
/** The server's countersigned receipt, the last frame a server sends. */
export interface CountersignFrame { t: 'countersign', receipt: Uint8Array }
/** A job protocol's server frames: its `Own` types and the shared ones (blocks, whose block frame carries the nonce, sends no accept). */
export type JobServerFrame<Own extends { t: string }> = AcceptFrame | BusyFrame | ErrorFrame | Own | CountersignFrame

/**
 * On a job frame, `stranger: true`: the client runs the job for a peer it does not count established
 * (a shard of that peer's task). The server admits it as a stranger's job, so an orchestrator's
 * standing never lends a free key's work the priority that standing earned.
 */
export interface ForStranger { stranger?: true }

/** The `stranger` field a job frame carries: present only when true. */
export function strangerField (value: unknown): ForStranger {
  if (value === undefined) return {}
  if (value !== true) throw new MalformedMessageError('stranger must be true when present')
  return { stranger: true }
}

/**
 * One job protocol's frames both ways, as its wire module encodes and checks them: the stream's
 * protocol id, the largest frame each side reads, and the codec of each direction.
 */
export interface JobFrames<C extends { t: string }, S extends { t: string }> {
  protocol: string
  /** The largest client frame a server reads. */
  clientMaxBytes: number
  /** The largest server frame a client reads. */
  serverMaxBytes: number
  encodeClient: (frame: C | SignFrame) => Uint8Array
  decodeClient: (bytes: Uint8Array) => C | SignFrame
  encodeServer: (frame: S | ErrorFrame | CountersignFrame | BusyFrame) => Uint8Array
  decodeServer: (bytes: Uint8Array) => S | ErrorFrame | CountersignFrame
}

/** A job protocol's frames as its wire module states them: the frame version, and a client encoder where plain frames are not enough. */
export interface JobFramesSpec<C extends { t: string }, S extends { t: string }> extends Omit<JobFrames<C, S>, 'encodeClient' | 'encodeServer'> {
  version: number
  encodeClient?: JobFrames<C, S>['encodeClient']
}

/** Completes a spec with the plain encoders: each frame as it is, under the protocol's version. */
export function jobFrames<C extends { t: string }, S extends { t: string }> (spec: JobFramesSpec<C, S>): JobFrames<C, S> {
  const plain = (frame: { t: string }): Uint8Array => encodeFrame(spec.version, frame)
  return {
    protocol: spec.protocol,
    clientMaxBytes: spec.clientMaxBytes,
    serverMaxBytes: spec.serverMaxBytes,
    encodeClient: spec.encodeClient ?? plain,
    decodeClient: spec.decodeClient,
    encodeServer: plain,
    decodeServer: spec.decodeServer
  }
}

const MAX_CODE_CHARS = 64
const MAX_ERROR_CHARS = 512
/** What an error frame says of a local error: the peer reads at most MAX_ERROR_CHARS. */
const SENT_ERROR_CHARS = 500
/** The longest `retryMs` a busy frame may ask for. */
const MAX_RETRY_MS = 3_600_000

export function bytesOf (value: unknown, field: string, max: number, exact?: number): Uint8Array {
  if (!(value instanceof Uint8Array) || value.byteLength > max || (exact !== undefined && value.byteLength !== exact)) {
    throw new MalformedMessageError(`${field} must be ${exact ?? `at most ${max}`} bytes`)
  }
  return value
}

export function textOf (value: unknown, field: string, max: number): string {
  if (typeof value !== 'string' || value.length > max) throw new MalformedMessageError(`${field} must be text of at most ${max} characters`)
  return value
}

export function uintOf (value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) throw new MalformedMessageError(`${field} must be a whole number from ${min} to ${max}`)
  return value
}

/** A frame as its protocol's version of `{ v, t, ... }`. */
export function encodeFrame (version: number, frame: { t: string }): Uint8Array {
  return encodeMessage({ v: version, ...frame })
}

/** The error frame every protocol answers with. */
export function errorFrame (err: unknown): ErrorFrame {
  const code = err instanceof HyperspaceError ? err.code : 'ERR_INTERNAL'
  return { t: 'error', code, message: errorMessage(err).slice(0, SENT_ERROR_CHARS) }
}

/**
 * Refuses a frame over `smallMaxBytes` unless it is of the one type that may be large (a result, a
 * block, a response), before its fields are read.
 */
function refuseLargeFrame (m: Record<string, unknown>, bytes: Uint8Array, largeType: string, smallMaxBytes: number): void {
  if (m.t !== largeType && bytes.byteLength > smallMaxBytes) throw new MalformedMessageError(`${String(m.t).slice(0, 32)} frame too large`)
}

export function decodeAccept (m: Record<string, unknown>, nonceBytes: number): AcceptFrame {
  return { t: 'accept', nonce: bytesOf(m.nonce, 'nonce', nonceBytes, nonceBytes) }
}

function decodeBusy (m: Record<string, unknown>): BusyFrame {
  return { t: 'busy', retryMs: uintOf(m.retryMs, 'retryMs', 0, MAX_RETRY_MS) }
}

export function decodeError (m: Record<string, unknown>): ErrorFrame {
  return { t: 'error', code: textOf(m.code, 'code', MAX_CODE_CHARS), message: textOf(m.message, 'message', MAX_ERROR_CHARS) }
}

/** A sign frame of at most `maxBytes` in all (a client frame of another type may be larger). */
function decodeSign (m: Record<string, unknown>, bytes: Uint8Array, maxBytes: number): SignFrame {
  if (bytes.byteLength > maxBytes) throw new MalformedMessageError('sign frame too large')
  return { t: 'sign', receipt: bytesOf(m.receipt, 'receipt', maxBytes) }
}

function decodeCountersign (m: Record<string, unknown>, maxBytes: number): CountersignFrame {
  return { t: 'countersign', receipt: bytesOf(m.receipt, 'receipt', maxBytes) }
}

/**
 * A job protocol's decoders of its own frame types (a type the shared frames also have, such as
 * inference's busy, is its own), by type, each over the map `decodeMessage` returned.
 */
export type OwnFrameDecoders<F extends { t: string }> = { readonly [T in F['t']]?: (m: Record<string, unknown>) => Extract<F, { t: T }> }

function ownDecoderOf<F extends { t: string }> (own: OwnFrameDecoders<F>, t: unknown): ((m: Record<string, unknown>) => F) | undefined {
  // Own keys only: a frame's type must not reach Object.prototype (`constructor`, `__proto__`).
  return typeof t === 'string' && Object.hasOwn(own, t) ? own[t as F['t']] : undefined
}

/**
 * A job protocol's client-frame decoder: a frame of at most `maxBytes` under `version`, of one of
 * the protocol's own types, else the sign frame every job protocol shares (at most `signMaxBytes` in
 * all), else MalformedMessageError.
 */
export function clientFrameDecoder<C extends { t: string }> (
  limits: { version: number, maxBytes: number, signMaxBytes: number },
  own: OwnFrameDecoders<C>
): (bytes: Uint8Array) => C | SignFrame {
  return bytes => {
    const m = decodeMessage(bytes, limits.maxBytes, limits.version)
    const decodeOwn = ownDecoderOf(own, m.t)
    if (decodeOwn !== undefined) return decodeOwn(m)
    if (m.t === 'sign') return decodeSign(m, bytes, limits.signMaxBytes)
    throw new MalformedMessageError('unknown client frame')
  }
}

/**
 * A job protocol's server-frame decoder: a frame of at most `maxBytes` under `version`, of which
 * only a `largeType` frame (if any) may be over `smallMaxBytes`; of one of the protocol's own types,
 * else the busy, error and countersign frames every job protocol shares (a countersign of at most
 * `smallMaxBytes`), else MalformedMessageError. With `viewLargeBytes`, a frame's large byte strings are
 * views of the frame (decodeMessage).
 */
export function serverFrameDecoder<S extends { t: string }> (
  limits: { version: number, maxBytes: number, smallMaxBytes: number, largeType?: S['t'], viewLargeBytes?: boolean },
  own: OwnFrameDecoders<S>
): (bytes: Uint8Array) => S | BusyFrame | ErrorFrame | CountersignFrame {
  return bytes => {
    const m = decodeMessage(bytes, limits.maxBytes, limits.version, { viewLargeBytes: limits.viewLargeBytes === true })
    if (limits.largeType !== undefined) refuseLargeFrame(m, bytes, limits.largeType, limits.smallMaxBytes)
    const decodeOwn = ownDecoderOf(own, m.t)
    if (decodeOwn !== undefined) return decodeOwn(m)
    switch (m.t) {
      case 'busy': return decodeBusy(m)
      case 'error': return decodeError(m)
      case 'countersign': return decodeCountersign(m, limits.smallMaxBytes)
      default: throw new MalformedMessageError('unknown server frame')
    }
  }
}
