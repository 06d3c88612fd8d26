/** Base class of every error the node raises on purpose; `code` is stable for programs to match. */
export class HyperspaceError extends Error {
  readonly code: string

  constructor (code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
    this.code = code
  }
}

export class ConfigError extends HyperspaceError {
  constructor (message: string) { super('ERR_CONFIG', message) }
}

export class WrongPassphraseError extends HyperspaceError {
  constructor () { super('ERR_WRONG_PASSPHRASE', 'The passphrase does not decrypt this identity file') }
}

export class InvalidIdentityFileError extends HyperspaceError {
  constructor (reason: string) { super('ERR_INVALID_IDENTITY_FILE', `Not a valid Hyperspace identity file: ${reason}`) }
}

export class IdentityReplaceRefusedError extends HyperspaceError {
  constructor (current: string, incoming: string) {
    super('ERR_IDENTITY_EXISTS', `This node already has identity ${current}; importing ${incoming} needs { replace: true }`)
  }
}

export class MalformedMessageError extends HyperspaceError {
  constructor (message: string) { super('ERR_MALFORMED_MESSAGE', message) }
}

export class OversizeMessageError extends HyperspaceError {
  constructor (size: number, limit: number) {
    super('ERR_OVERSIZE_MESSAGE', `Message of ${size} bytes exceeds the limit of ${limit} bytes`)
  }
}

export class UnsupportedVersionError extends HyperspaceError {
  constructor (version: unknown) { super('ERR_UNSUPPORTED_VERSION', `Unsupported message version ${String(version)}`) }
}

export class NodeNotRunningError extends HyperspaceError {
  constructor () { super('ERR_NODE_NOT_RUNNING', 'The node is not running in this tab') }
}
