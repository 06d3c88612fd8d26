import { errorMessage, HyperspaceError } from '../core/errors.ts'
import type { Stream } from '@libp2p/interface'

/** Helpers shared by the request/response stream protocols (inference, embed, memory, blocks). */

/** The caller's signal, or a timeout, whichever fires first. */
export function withTimeout (signal: AbortSignal | undefined, ms: number): AbortSignal {
  const timeout = AbortSignal.timeout(ms)
  return signal === undefined ? timeout : AbortSignal.any([signal, timeout])
}

/** The error frame every protocol answers with: the stable code of a named error, and its message. */
export function errorFrame (err: unknown): { t: 'error', code: string, message: string } {
  const code = err instanceof HyperspaceError ? err.code : 'ERR_INTERNAL'
  return { t: 'error', code, message: errorMessage(err).slice(0, 500) }
}

/** Resets a stream with whatever was thrown (libp2p wants an Error). */
export function abortStream (stream: Stream, err: unknown): void {
  stream.abort(err instanceof Error ? err : new Error(errorMessage(err)))
}
