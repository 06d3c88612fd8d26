import { InvalidIdentityFileError, WrongPassphraseError } from './errors.ts'
import { HISTORY_MAX_BYTES } from './identity-history.ts'

/**
 * The exported identity file: the node's private key sealed with a passphrase (PBKDF2-SHA-256 then
 * AES-256-GCM, the peer id bound as associated data so a file cannot be relabelled). Version 2 adds
 * `history`, base64 of the identity's signed history (identity-history.ts): it is not sealed, since
 * every piece of it is signed and checked against the key on import, and it is what anyone may ask
 * the identity for as a points proof anyway.
 */
export interface IdentityFile {
  format: 'hyperspace-identity'
  version: 1 | 2
  peerId: string
  kdf: { name: 'PBKDF2', hash: 'SHA-256', iterations: number, salt: string }
  cipher: { name: 'AES-GCM', iv: string }
  data: string
  history?: string
}

/** The key part's bound, and the file's: the key part plus the history in base64. */
const KEY_PART_MAX_BYTES = 16 * 1024
export const IDENTITY_FILE_MAX_BYTES = KEY_PART_MAX_BYTES + Math.ceil(HISTORY_MAX_BYTES / 3) * 4
const ITERATIONS = 600_000
/** Bounds on a file's own iteration count: too low is weak, too high freezes the tab on import. */
const MIN_ITERATIONS = 100_000
const MAX_ITERATIONS = 5_000_000
const MIN_PASSPHRASE_LENGTH = 8

const encoder = new TextEncoder()

function toBase64 (bytes: Uint8Array): string {
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary)
}

function fromBase64 (text: string, field: string, maxBytes: number): Uint8Array<ArrayBuffer> {
  if (text.length > Math.ceil(maxBytes / 3) * 4 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    throw new InvalidIdentityFileError(`${field} is not base64 of at most ${maxBytes} bytes`)
  }
  let binary: string
  try {
    binary = atob(text)
  } catch {
    throw new InvalidIdentityFileError(`${field} is not valid base64`)
  }
  const bytes = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
  return bytes
}

async function deriveKey (passphrase: string, salt: Uint8Array<ArrayBuffer>, iterations: number): Promise<CryptoKey> {
  const material = await crypto.subtle.importKey('raw', encoder.encode(passphrase), 'PBKDF2', false, ['deriveKey'])
  return await crypto.subtle.deriveKey(
    { name: 'PBKDF2', hash: 'SHA-256', salt, iterations },
    material,
    { name: 'AES-GCM', length: 256 },
    false,
    ['encrypt', 'decrypt']
  )
}

export async function sealIdentity (privateKey: Uint8Array<ArrayBuffer>, peerId: string, passphrase: string, history?: Uint8Array): Promise<IdentityFile> {
  if (passphrase.length < MIN_PASSPHRASE_LENGTH) {
    throw new RangeError(`The passphrase must have at least ${MIN_PASSPHRASE_LENGTH} characters`)
  }
  const salt = crypto.getRandomValues(new Uint8Array(16))
  const iv = crypto.getRandomValues(new Uint8Array(12))
  const key = await deriveKey(passphrase, salt, ITERATIONS)
  const sealed = await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: encoder.encode(peerId) }, key, privateKey)
  const file: IdentityFile = {
    format: 'hyperspace-identity',
    version: history === undefined ? 1 : 2,
    peerId,
    kdf: { name: 'PBKDF2', hash: 'SHA-256', iterations: ITERATIONS, salt: toBase64(salt) },
    cipher: { name: 'AES-GCM', iv: toBase64(iv) },
    data: toBase64(new Uint8Array(sealed))
  }
  if (history !== undefined) file.history = toBase64(history)
  return file
}

/** Checks the file's shape and bounds; it may come from anywhere. */
export function parseIdentityFile (text: string): IdentityFile {
  if (text.length > IDENTITY_FILE_MAX_BYTES) throw new InvalidIdentityFileError(`larger than ${IDENTITY_FILE_MAX_BYTES} bytes`)
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new InvalidIdentityFileError('not JSON')
  }
  const file = value as Partial<IdentityFile> | null
  if (file?.format !== 'hyperspace-identity') throw new InvalidIdentityFileError('missing format "hyperspace-identity"')
  if (file.version !== 1 && file.version !== 2) throw new InvalidIdentityFileError(`unsupported version ${String(file.version)}`)
  if (file.version === 1 ? file.history !== undefined : typeof file.history !== 'string') throw new InvalidIdentityFileError('history belongs to version 2 files, as text')
  if (typeof file.peerId !== 'string' || !/^[1-9A-HJ-NP-Za-km-z]{40,60}$/.test(file.peerId)) {
    throw new InvalidIdentityFileError('peerId is not a peer id')
  }
  const kdf = file.kdf
  if (kdf?.name !== 'PBKDF2' || kdf.hash !== 'SHA-256' || typeof kdf.salt !== 'string' ||
    !Number.isInteger(kdf.iterations) || kdf.iterations < MIN_ITERATIONS || kdf.iterations > MAX_ITERATIONS) {
    throw new InvalidIdentityFileError('unsupported key derivation')
  }
  if (file.cipher?.name !== 'AES-GCM' || typeof file.cipher.iv !== 'string') throw new InvalidIdentityFileError('unsupported cipher')
  if (typeof file.data !== 'string') throw new InvalidIdentityFileError('data missing')
  return file as IdentityFile
}

/** The carried history's bytes (version 2), undecoded: identity-history.ts checks them against the key. */
export function historyBytes (file: IdentityFile): Uint8Array | undefined {
  return file.history === undefined ? undefined : fromBase64(file.history, 'history', HISTORY_MAX_BYTES)
}

/** Returns the private key bytes; a wrong passphrase or a tampered file is a WrongPassphraseError. */
export async function openIdentity (file: IdentityFile, passphrase: string): Promise<Uint8Array> {
  const salt = fromBase64(file.kdf.salt, 'salt', 64)
  const iv = fromBase64(file.cipher.iv, 'iv', 12)
  const data = fromBase64(file.data, 'data', 1024)
  if (iv.length !== 12) throw new InvalidIdentityFileError('iv must be 12 bytes')
  const key = await deriveKey(passphrase, salt, file.kdf.iterations)
  try {
    const plain = await crypto.subtle.decrypt({ name: 'AES-GCM', iv, additionalData: encoder.encode(file.peerId) }, key, data)
    return new Uint8Array(plain)
  } catch {
    throw new WrongPassphraseError()
  }
}
