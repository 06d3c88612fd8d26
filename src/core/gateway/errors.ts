import { EmbeddingInputError, HyperspaceError, InvalidRequestError, JobDeadlineError, NoProviderError, PeerBusyError, StreamStalledError, errorMessage } from '../errors.ts'
import { NoTaskWorkerError, TaskInputError, TaskShardFailedError } from '../tasks/errors.ts'

/**
 * What the HTTP gateway answers when a request fails: an HTTP status and OpenAI's error shape
 * (`{ error: { message, type, param, code } }`), which OpenAI clients turn into their own error
 * classes (AuthenticationError for 401, RateLimitError for 429, ...).
 */
export class GatewayError extends HyperspaceError {
  override name = 'GatewayError'

  constructor (
    readonly status: number,
    /** OpenAI's error `type`. */
    readonly type: string,
    code: string,
    message: string,
    readonly param: string | null = null
  ) {
    super(code, message)
  }
}

export class BadApiKeyError extends GatewayError {
  override name = 'BadApiKeyError'
  constructor () { super(401, 'invalid_request_error', 'invalid_api_key', 'Incorrect API key provided') }
}

export class QuotaExceededError extends GatewayError {
  override name = 'QuotaExceededError'
  constructor (what: 'requests' | 'tokens', readonly retryAfterS: number) {
    super(429, 'rate_limit_exceeded', 'rate_limit_exceeded', `Rate limit reached for ${what} on this key; retry in ${retryAfterS} s`)
  }
}

export class BadRequestError extends GatewayError {
  override name = 'BadRequestError'
  constructor (message: string, param: string | null = null) { super(400, 'invalid_request_error', 'invalid_request', message, param) }
}

export class BodyTooLargeError extends GatewayError {
  override name = 'BodyTooLargeError'
  constructor (limit: number) { super(413, 'invalid_request_error', 'request_too_large', `The request body exceeds ${limit} bytes`) }
}

export class UnknownModelError extends GatewayError {
  override name = 'UnknownModelError'
  constructor (model: string) { super(404, 'invalid_request_error', 'model_not_found', `The model ${model} is not served on this network`, 'model') }
}

export class RouteNotFoundError extends GatewayError {
  override name = 'RouteNotFoundError'
  constructor (method: string, path: string) { super(404, 'invalid_request_error', 'unknown_url', `Unknown request URL: ${method} ${path.slice(0, 200)}`) }
}

export class NoPeerError extends GatewayError {
  override name = 'NoPeerError'
  constructor (message: string) { super(503, 'service_unavailable', 'no_peer', message) }
}

export class PeerStalledError extends GatewayError {
  override name = 'PeerStalledError'
  constructor (message: string) { super(504, 'timeout', 'peer_stalled', message) }
}

export class InternalGatewayError extends GatewayError {
  override name = 'InternalGatewayError'
  constructor (message: string) { super(500, 'server_error', 'internal_error', message) }
}

/** Codes of a peer that took the job and then stopped answering in time. */
const STALL_CODES: ReadonlySet<string> = new Set(['ERR_JOB_DEADLINE', 'ERR_STREAM_STALLED', 'ERR_TIMEOUT'])
/** Codes of a peer that says it does not serve the model asked for. */
const NOT_SERVED_CODES: ReadonlySet<string> = new Set(['ERR_MODEL_NOT_SERVED'])

/**
 * The HTTP answer to an error from the node's client code. `known` says whether the model was ever
 * announced on the network: a model nobody serves and nobody ever announced is unknown (404), one
 * that was announced but has no peer now is unavailable (503).
 */
export function gatewayErrorOf (err: unknown, model: string, known: boolean): GatewayError {
  if (err instanceof GatewayError) return err
  if (err instanceof InvalidRequestError || err instanceof EmbeddingInputError) return new BadRequestError(err.message)
  if (err instanceof JobDeadlineError || err instanceof StreamStalledError || (err instanceof Error && err.name === 'TimeoutError')) {
    return new PeerStalledError(errorMessage(err))
  }
  if (err instanceof NoProviderError) {
    if (err.codes.length > 0 && err.codes.every(code => STALL_CODES.has(code))) return new PeerStalledError(err.message)
    if (foundNoServer(err) && !known) return new UnknownModelError(model)
    return new NoPeerError(err.message)
  }
  if (err instanceof PeerBusyError || err instanceof NoTaskWorkerError || err instanceof TaskShardFailedError) return new NoPeerError(err.message)
  if (err instanceof TaskInputError) return new BadRequestError(err.message)
  return new InternalGatewayError(errorMessage(err))
}

/** No routing tier found a peer that serves the model (as opposed to servers that failed). */
export function foundNoServer (err: NoProviderError): boolean {
  return err.codes.length === 0 || err.codes.every(code => NOT_SERVED_CODES.has(code))
}

/** OpenAI's error body. */
export function errorBody (err: GatewayError): { error: { message: string, type: string, param: string | null, code: string } } {
  return { error: { message: err.message, type: err.type, param: err.param, code: err.code } }
}
