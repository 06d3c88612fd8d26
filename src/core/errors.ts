/**
 * Base class of every error the node raises on purpose; `code` is stable for programs to match.
 * Each subclass spells out its `name`: minified builds rename classes.
 */
export class HyperspaceError extends Error {
  override name = 'HyperspaceError'
  readonly code: string

  constructor (code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}

/** A readable message from anything thrown, including non-Error values such as a socket's error Event. */
export function errorMessage (err: unknown): string {
  if (err instanceof Error) return err.message !== '' ? err.message : err.name
  if (typeof err === 'object' && err !== null && 'type' in err && typeof err.type === 'string') return `${err.type} event`
  return String(err)
}

export class WrongPassphraseError extends HyperspaceError {
  override name = 'WrongPassphraseError'

  constructor () { super('ERR_WRONG_PASSPHRASE', 'The passphrase does not decrypt this identity file') }
}

export class InvalidIdentityFileError extends HyperspaceError {
  override name = 'InvalidIdentityFileError'

  constructor (reason: string) { super('ERR_INVALID_IDENTITY_FILE', `Not a valid Hyperspace identity file: ${reason}`) }
}

export class IdentityReplaceRefusedError extends HyperspaceError {
  override name = 'IdentityReplaceRefusedError'

  constructor (current: string, incoming: string) {
    super('ERR_IDENTITY_EXISTS', `This node already has identity ${current}; importing ${incoming} needs { replace: true }`)
  }
}

export class MalformedMessageError extends HyperspaceError {
  override name = 'MalformedMessageError'

  constructor (message: string) { super('ERR_MALFORMED_MESSAGE', message) }
}

/** A pulse message published under another gossip identity than the one that signed it: a replay. */
export class ForeignAuthorError extends HyperspaceError {
  override name = 'ForeignAuthorError'

  constructor (author: string, publisher: string) { super('ERR_FOREIGN_AUTHOR', `A message signed by ${author} was published by ${publisher}`) }
}

export class OversizeMessageError extends HyperspaceError {
  override name = 'OversizeMessageError'

  constructor (size: number, limit: number) {
    super('ERR_OVERSIZE_MESSAGE', `Message of ${size} bytes exceeds the limit of ${limit} bytes`)
  }
}

export class UnsupportedVersionError extends HyperspaceError {
  override name = 'UnsupportedVersionError'

  /** The version came off the wire: describe it without calling anything on it. */
  constructor (version: unknown) {
    super('ERR_UNSUPPORTED_VERSION', `Unsupported message version ${typeof version === 'number' ? version : `of type ${typeof version}`}`)
  }
}

/** A receipt of a kind of work this release does not know: a newer release's, not garbage. */
export class UnknownWorkKindError extends HyperspaceError {
  override name = 'UnknownWorkKindError'

  constructor (kind: string) { super('ERR_UNKNOWN_WORK_KIND', `Unknown kind of work ${kind}`) }
}

export class NodeNotRunningError extends HyperspaceError {
  override name = 'NodeNotRunningError'

  constructor () { super('ERR_NODE_NOT_RUNNING', 'The node is not running in this tab') }
}

export class BadSignatureError extends HyperspaceError {
  override name = 'BadSignatureError'

  constructor (peerId: string) { super('ERR_BAD_SIGNATURE', `The signature does not match peer ${peerId}`) }
}

export class InvalidRequestError extends HyperspaceError {
  override name = 'InvalidRequestError'

  constructor (message: string) { super('ERR_INVALID_REQUEST', message) }
}

export class ReceiptMismatchError extends HyperspaceError {
  override name = 'ReceiptMismatchError'

  constructor (message: string) { super('ERR_RECEIPT_MISMATCH', `Receipt does not match the job: ${message}`) }
}

export class ReplayedReceiptError extends HyperspaceError {
  override name = 'ReplayedReceiptError'

  constructor (id: string) { super('ERR_RECEIPT_REPLAYED', `Receipt ${id.slice(0, 16)}… was already seen`) }
}

export class StaleReceiptError extends HyperspaceError {
  override name = 'StaleReceiptError'

  constructor (round: number, current: number) { super('ERR_RECEIPT_STALE', `Receipt of round ${round} is not fresh in round ${current}`) }
}

export class UnsignedReceiptError extends HyperspaceError {
  override name = 'UnsignedReceiptError'

  constructor () { super('ERR_RECEIPT_UNSIGNED', 'The receipt has no server countersignature') }
}

export class ReceiptUnitsError extends HyperspaceError {
  override name = 'ReceiptUnitsError'

  constructor (kind: string, units: number, cap: number) {
    super('ERR_RECEIPT_UNITS', `Receipt claims ${units} units of ${kind}; one job holds at most ${cap}`)
  }
}

export class ReceiptChainError extends HyperspaceError {
  override name = 'ReceiptChainError'

  constructor (seq: number, reason: string) { super('ERR_RECEIPT_CHAIN', `Receipt log broken at entry ${seq}: ${reason}`) }
}

export class NoProviderError extends HyperspaceError {
  override name = 'NoProviderError'

  /**
   * `codes` holds each tried peer's error code (ERR_TIMEOUT for a timeout), in the order tried: an
   * HTTP gateway tells "every peer stalled" (504) and "none serves it" apart from them.
   */
  constructor (model: string, tried: string[] = [], readonly codes: readonly string[] = []) {
    super('ERR_NO_PROVIDER', tried.length === 0
      ? `No peer serves ${model}`
      : `No peer could serve ${model}; tried ${tried.join('; ')}`)
  }
}

export class PeerBusyError extends HyperspaceError {
  override name = 'PeerBusyError'

  constructor (peerId: string) { super('ERR_PEER_BUSY', `Peer ${peerId} is busy`) }
}

export class RemoteInferenceError extends HyperspaceError {
  override name = 'RemoteInferenceError'

  constructor (peerId: string, code: string, message: string) { super(code.startsWith('ERR_') ? code : 'ERR_REMOTE', `Peer ${peerId}: ${message}`) }
}

export class EmbeddingInputError extends HyperspaceError {
  override name = 'EmbeddingInputError'

  constructor (message: string) { super('ERR_EMBEDDING_INPUT', message) }
}

export type EmbeddingEngineErrorKind = 'not-loaded' | 'load' | 'run' | 'aborted' | 'timeout' | 'worker' | 'closed'

export class EmbeddingEngineError extends HyperspaceError {
  override name = 'EmbeddingEngineError'

  constructor (readonly kind: EmbeddingEngineErrorKind, message: string) {
    super(`ERR_EMBEDDING_${kind.replace('-', '_').toUpperCase()}`, message)
  }
}

export class InvalidVectorError extends HyperspaceError {
  override name = 'InvalidVectorError'

  constructor (reason: string) { super('ERR_INVALID_VECTOR', `Invalid vector: ${reason}`) }
}

export class InvalidPeerIdError extends HyperspaceError {
  override name = 'InvalidPeerIdError'

  constructor (id: string) { super('ERR_INVALID_PEER_ID', `Not a peer id: ${id.slice(0, 80)}`) }
}

export class InvalidCidError extends HyperspaceError {
  override name = 'InvalidCidError'

  constructor (reason: string) { super('ERR_INVALID_CID', `Invalid block CID: ${reason}`) }
}

export class BlockTooLargeError extends HyperspaceError {
  override name = 'BlockTooLargeError'

  constructor (size: number, limit: number) { super('ERR_BLOCK_TOO_LARGE', `Block of ${size} bytes exceeds the limit of ${limit} bytes`) }
}

export class BlockHashMismatchError extends HyperspaceError {
  override name = 'BlockHashMismatchError'

  constructor (cid: string) { super('ERR_BLOCK_HASH_MISMATCH', `The bytes received for ${cid} do not hash to it`) }
}

export class StreamDivergedError extends HyperspaceError {
  override name = 'StreamDivergedError'

  constructor (failed: string, next: string) {
    super('ERR_STREAM_DIVERGED', `Peer ${failed} went away mid-stream and peer ${next} generated a different text; the streamed answer is incomplete`)
  }
}

export class InvalidVrfKeyError extends HyperspaceError {
  override name = 'InvalidVrfKeyError'

  constructor (reason: string) { super('ERR_VRF_KEY', `Invalid VRF key: ${reason}`) }
}

export class InvalidVrfProofError extends HyperspaceError {
  override name = 'InvalidVrfProofError'

  constructor (reason: string) { super('ERR_VRF_PROOF', `Invalid VRF proof: ${reason}`) }
}

export type MemoryBudgetScope = 'holder' | 'owner' | 'newcomers'
export type MemoryBudgetResource = 'vectors' | 'bytes' | 'spaces'

/** A put that would take a holder, or one owner's share of it, past a budget (docs/internals.md). */
export class MemoryBudgetError extends HyperspaceError {
  override name = 'MemoryBudgetError'

  constructor (readonly scope: MemoryBudgetScope, readonly resource: MemoryBudgetResource, readonly limit: number) {
    super('ERR_MEMORY_BUDGET', {
      holder: `This holder is at its budget of ${limit} ${resource}`,
      owner: `The owner of this put is at its budget of ${limit} ${resource} on this holder`,
      newcomers: `Owners without a verified pulse history share a budget of ${limit} ${resource} on this holder, and it is full`
    }[scope])
  }
}

/** A put older than the copy held: the holder keeps its copy. */
export class MemoryStaleError extends HyperspaceError {
  override name = 'MemoryStaleError'

  constructor (key: string, held: number) { super('ERR_MEMORY_STALE', `Key ${key.slice(0, 64)} is held at version ${held}, which this put does not supersede`) }
}

/** A put of a key that another writer owns: only the owner replaces a key. */
export class MemoryNotOwnerError extends HyperspaceError {
  override name = 'MemoryNotOwnerError'

  constructor (key: string) { super('ERR_MEMORY_NOT_OWNER', `Key ${key.slice(0, 64)} belongs to another writer`) }
}

/** A version further ahead of the holder's clock than writers' clocks drift: it would lock the key. */
export class MemoryVersionAheadError extends HyperspaceError {
  override name = 'MemoryVersionAheadError'

  constructor (version: number, limit: number) { super('ERR_MEMORY_VERSION_AHEAD', `Version ${version} is more than ${limit} ms ahead of this holder's clock`) }
}

export class StreamStalledError extends HyperspaceError {
  override name = 'StreamStalledError'

  constructor (peerId: string, ms: number) {
    super('ERR_STREAM_STALLED', `Peer ${peerId} took nothing from the stream for ${ms} ms; it was cut off`)
  }
}

/** A peer sent its answer slower than the transfer floor allows (core/jobs/transfer-floor.ts): not misbehaviour, but not worth the wait. */
export class SlowPeerError extends HyperspaceError {
  override name = 'SlowPeerError'

  constructor (peerId: string, bytesPerSecond: number, slackMs: number) {
    super('ERR_SLOW_PEER', `Peer ${peerId} fell ${slackMs} ms behind a rate of ${Math.round(bytesPerSecond / 1024)} KiB/s; it was cut off`)
  }
}

export class StreamBudgetError extends HyperspaceError {
  override name = 'StreamBudgetError'

  constructor (peerId: string, what: string, limit: number) {
    super('ERR_STREAM_BUDGET', `Peer ${peerId} sent more than ${limit} ${what} for one job; it was cut off`)
  }
}

export class JobDeadlineError extends HyperspaceError {
  override name = 'JobDeadlineError'

  constructor (peerId: string, ms: number) {
    super('ERR_JOB_DEADLINE', `Peer ${peerId} did not finish the job within ${ms} ms`)
  }
}

/** A points proof was asked for a period longer than a prover answers for, or one that is not a period. */
export class ProofPeriodError extends HyperspaceError {
  override name = 'ProofPeriodError'

  constructor (from: number, to: number, max: number) {
    super('ERR_PROOF_PERIOD', `Rounds ${from} to ${to} are not a period of 1 to ${max} rounds`)
  }
}

/** Why a peer's points did not check (core/points-proof/check.ts): `reason` is one of UncheckedReason. */
export class PointsUncheckedError extends HyperspaceError {
  override name = 'PointsUncheckedError'

  constructor (readonly reason: string, detail: string) { super('ERR_POINTS_UNCHECKED', `${reason}: ${detail}`) }
}

/** A peer claims a capability in its commit but announces nothing a spot-check could use (inference without a chat model). */
export class UnservedClaimError extends HyperspaceError {
  override name = 'UnservedClaimError'

  constructor (peerId: string, capability: string, what: string) { super('ERR_UNSERVED_CLAIM', `Peer ${peerId} claims ${capability} but announces ${what}`) }
}

/** An identity file's history does not check against its key: edited, or another identity's. */
export class IdentityHistoryError extends HyperspaceError {
  override name = 'IdentityHistoryError'

  constructor (reason: string, options?: { cause?: unknown }) { super('ERR_IDENTITY_HISTORY', `The identity file's history does not check against its key: ${reason}`, options) }
}
