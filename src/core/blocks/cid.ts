import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { BlockHashMismatchError, BlockTooLargeError, InvalidCidError } from '../errors.ts'
import { equalBytes } from '../crypto/bytes.ts'

/**
 * Content addresses of storage blocks: CIDv1, raw codec, sha2-256 (what IPFS calls a raw leaf), so a
 * block's CID is the hash of exactly its bytes and anyone can check a block without trusting who sent
 * it. multiformats hashes with WebCrypto in browsers, hence the async functions.
 */

/** A block never exceeds this; bigger content is split (see file.ts). */
export const BLOCK_MAX_BYTES = 1024 * 1024

/** Longer than any base32 or base58 CIDv1 of a sha2-256 digest; longer strings are refused unparsed. */
const MAX_CID_TEXT = 128

export type BlockCid = CID<unknown, typeof raw.code, typeof sha256.code, 1>

function checkSize (bytes: Uint8Array): void {
  if (bytes.byteLength > BLOCK_MAX_BYTES) throw new BlockTooLargeError(bytes.byteLength, BLOCK_MAX_BYTES)
}

declare const verified: unique symbol

/**
 * Bytes hashed to their CID in this module, which alone makes them: whoever is handed one (the store,
 * a file's assembly) need not hash the bytes again. Hashing once per block instead of at each step
 * is a third of a fetch's CPU.
 */
export interface VerifiedBlock {
  readonly cid: BlockCid
  readonly bytes: Uint8Array
  readonly [verified]: true
}

export async function cidForBlock (bytes: Uint8Array): Promise<BlockCid> {
  checkSize(bytes)
  return CID.createV1(raw.code, await sha256.digest(bytes))
}

/** The block of these bytes, under the CID they hash to. */
export async function blockOf (bytes: Uint8Array): Promise<VerifiedBlock> {
  return { cid: await cidForBlock(bytes), bytes } as VerifiedBlock
}

/** The block when `bytes` are what `cid` names; throws BlockHashMismatchError when they are not. */
export async function verifyBlock (cid: BlockCid, bytes: Uint8Array): Promise<VerifiedBlock> {
  checkSize(bytes)
  const digest = await sha256.digest(bytes)
  if (!equalBytes(digest.digest, cid.multihash.digest)) throw new BlockHashMismatchError(cid.toString())
  return { cid, bytes } as VerifiedBlock
}

/** A CID this store deals in, or InvalidCidError: v1, raw, sha2-256 with a 32-byte digest. */
export function asBlockCid (cid: CID): BlockCid {
  if (cid.version !== 1) throw new InvalidCidError(`version ${cid.version}, not 1`)
  if (cid.code !== raw.code) throw new InvalidCidError(`codec 0x${cid.code.toString(16)}, not raw (0x55)`)
  if (cid.multihash.code !== sha256.code) throw new InvalidCidError(`hash 0x${cid.multihash.code.toString(16)}, not sha2-256 (0x12)`)
  if (cid.multihash.size !== 32) throw new InvalidCidError(`a digest of ${cid.multihash.size} bytes`)
  return cid as BlockCid
}

/** The CID `read` makes, its failure an InvalidCidError. */
function readCid (read: () => CID): CID {
  try {
    return read()
  } catch (err) {
    throw new InvalidCidError(err instanceof Error ? err.message : String(err))
  }
}

/** From text (base32 `bafk…` or base58btc `z…`); `toString()` of the result is the canonical base32 form. */
export function parseBlockCid (text: string): BlockCid {
  if (text.length > MAX_CID_TEXT) throw new InvalidCidError(`${text.length} characters`)
  return asBlockCid(readCid(() => CID.parse(text)))
}

/** From its binary form (on the wire); trailing bytes are refused. */
export function blockCidFromBytes (bytes: Uint8Array): BlockCid {
  if (bytes.byteLength > MAX_CID_TEXT) throw new InvalidCidError(`${bytes.byteLength} bytes`)
  return asBlockCid(readCid(() => CID.decode(bytes)))
}
