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

export class NodeNotRunningError extends HyperspaceError {
  override name = 'NodeNotRunningError'

  constructor () { super('ERR_NODE_NOT_RUNNING', 'The node is not running in this tab') }
}

export class BadSignatureError extends HyperspaceError {
  override name = 'BadSignatureError'

  constructor (peerId: string) { super('ERR_BAD_SIGNATURE', `The signature does not match peer ${peerId}`) }
}
