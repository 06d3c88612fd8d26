import { HyperspaceError } from '../errors.ts'

/** Errors of the model catalog and the local inference engines; they cross the worker boundary by `code`. */

export class ModelNotLoadedError extends HyperspaceError {
  override name = 'ModelNotLoadedError'

  constructor (readonly model: string) { super('ERR_MODEL_NOT_LOADED', `Model ${model} is not loaded on this device; pull it first`) }
}

export class UnknownModelError extends HyperspaceError {
  override name = 'UnknownModelError'

  constructor (readonly model: string) { super('ERR_UNKNOWN_MODEL', `Model ${model} is not in this node's catalog`) }
}

export class ModelDoesNotFitError extends HyperspaceError {
  override name = 'ModelDoesNotFitError'

  constructor (readonly model: string, readonly reason: string) { super('ERR_MODEL_DOES_NOT_FIT', `Model ${model} cannot run on this device: ${reason}`) }
}

export class NoModelFitsError extends HyperspaceError {
  override name = 'NoModelFitsError'

  constructor () { super('ERR_NO_MODEL_FITS', 'No chat model in the catalog fits this device') }
}

/** A model this host lists but cannot run where it was asked to (an embedding model in the inference worker, say). */
export class ModelNotServableError extends HyperspaceError {
  override name = 'ModelNotServableError'

  constructor (readonly model: string, reason: string) { super('ERR_MODEL_NOT_SERVABLE', `Model ${model} cannot be served here: ${reason}`) }
}

export class InvalidModelIndexError extends HyperspaceError {
  override name = 'InvalidModelIndexError'

  constructor (readonly reason: string) { super('ERR_INVALID_MODEL_INDEX', `The local model index is not valid: ${reason}`) }
}

export class ModelDownloadError extends HyperspaceError {
  override name = 'ModelDownloadError'

  constructor (readonly url: string, readonly reason: string) { super('ERR_MODEL_DOWNLOAD', `Could not download ${url}: ${reason}`) }
}

export class WebGpuUnavailableError extends HyperspaceError {
  override name = 'WebGpuUnavailableError'

  constructor (readonly reason: string) { super('ERR_WEBGPU_UNAVAILABLE', `WebGPU is not available: ${reason}`) }
}

export class InferenceAbortedError extends HyperspaceError {
  override name = 'InferenceAbortedError'

  constructor (readonly what: string) { super('ERR_INFERENCE_ABORTED', `${what} was aborted`) }
}

/** The engine itself failed (a load that crashed, a context overflow, ...): the message is the engine's. */
export class InferenceEngineError extends HyperspaceError {
  override name = 'InferenceEngineError'

  constructor (message: string) { super('ERR_INFERENCE_ENGINE', message) }
}

export type InferenceWorkerErrorKind = 'crashed' | 'closed' | 'protocol'

/** The inference worker itself: it failed to start or crashed, was closed, or answered nonsense. */
export class InferenceWorkerError extends HyperspaceError {
  override name = 'InferenceWorkerError'

  constructor (readonly kind: InferenceWorkerErrorKind, message: string) { super(`ERR_INFERENCE_WORKER_${kind.toUpperCase()}`, message) }
}
