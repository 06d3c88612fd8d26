import { decodeMessage, encodeMessage } from '../wire/cbor.ts'
import { MalformedMessageError } from '../errors.ts'
import type { BlockProgress, LongCallOptions } from '../progress.ts'
import { BLOCK_MAX_BYTES, blockCidFromBytes, blockOf, type BlockCid, type VerifiedBlock } from './cid.ts'

/**
 * Content bigger than a block: fixed-size chunks, each a block, listed in order by a manifest that is
 * itself a (small) raw block in strict CBOR. The manifest's CID names the whole file; fetching it and
 * then its chunks, each verified against its CID, rebuilds the file from untrusted peers.
 */

export const MANIFEST_VERSION = 1
/** 1 GiB at the default chunk size: more than a browser tab should hold at once. */
export const FILE_MAX_CHUNKS = 1024

export interface FileManifest {
  size: number
  chunkSize: number
  blocks: BlockCid[]
}

export interface ChunkedFile {
  /** The manifest block: its CID is the file's address. */
  manifest: VerifiedBlock
  /** The chunks in file order (a repeated chunk appears once per use). */
  blocks: VerifiedBlock[]
}

function checkShape (size: number, chunkSize: number, chunks: number): void {
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1 || chunkSize > BLOCK_MAX_BYTES) throw new MalformedMessageError(`chunk size must be from 1 to ${BLOCK_MAX_BYTES} bytes`)
  if (!Number.isSafeInteger(size) || size < 0 || size > FILE_MAX_CHUNKS * chunkSize) throw new MalformedMessageError(`a file holds at most ${FILE_MAX_CHUNKS} chunks`)
  if (chunks !== Math.ceil(size / chunkSize)) throw new MalformedMessageError(`${chunks} chunks cannot hold ${size} bytes in chunks of ${chunkSize}`)
}

/** Hashes the chunks one after another ('hashing' progress in bytes); an abort is seen between two chunks. */
export async function chunkFile (bytes: Uint8Array, chunkSize = BLOCK_MAX_BYTES, options: LongCallOptions<BlockProgress> = {}): Promise<ChunkedFile> {
  const count = Math.ceil(bytes.byteLength / chunkSize)
  checkShape(bytes.byteLength, chunkSize, count)
  const blocks: VerifiedBlock[] = []
  for (let offset = 0; offset < bytes.byteLength; offset += chunkSize) {
    options.signal?.throwIfAborted()
    const chunk = bytes.subarray(offset, offset + chunkSize)
    blocks.push(await blockOf(chunk))
    options.onProgress?.({ phase: 'hashing', loaded: offset + chunk.byteLength, total: bytes.byteLength })
  }
  options.signal?.throwIfAborted()
  return { manifest: await blockOf(encodeManifest({ size: bytes.byteLength, chunkSize, blocks: blocks.map(b => b.cid) })), blocks }
}

export function encodeManifest (manifest: FileManifest): Uint8Array {
  checkShape(manifest.size, manifest.chunkSize, manifest.blocks.length)
  return encodeMessage({ v: MANIFEST_VERSION, t: 'file', size: manifest.size, chunk: manifest.chunkSize, blocks: manifest.blocks.map(cid => cid.bytes) })
}

export function decodeManifest (bytes: Uint8Array): FileManifest {
  const record = decodeMessage(bytes, BLOCK_MAX_BYTES, MANIFEST_VERSION)
  if (record.t !== 'file') throw new MalformedMessageError('not a file manifest')
  const { size, chunk, blocks } = record
  if (!Array.isArray(blocks) || blocks.length > FILE_MAX_CHUNKS) throw new MalformedMessageError(`blocks must be a list of at most ${FILE_MAX_CHUNKS} CIDs`)
  if (typeof size !== 'number' || typeof chunk !== 'number') throw new MalformedMessageError('size and chunk must be numbers')
  checkShape(size, chunk, blocks.length)
  const cids = blocks.map(b => {
    if (!(b instanceof Uint8Array)) throw new MalformedMessageError('a block entry is not a binary CID')
    return blockCidFromBytes(b)
  })
  return { size, chunkSize: chunk, blocks: cids }
}

/** The file from its verified chunks in order, each checked against the manifest's CID and expected length. */
export function assembleFile (manifest: FileManifest, chunks: readonly VerifiedBlock[]): Uint8Array {
  if (chunks.length !== manifest.blocks.length) throw new MalformedMessageError(`${chunks.length} chunks for a manifest of ${manifest.blocks.length}`)
  const out = new Uint8Array(manifest.size)
  for (let i = 0; i < chunks.length; i++) {
    const chunk = chunks[i] as VerifiedBlock
    if (!chunk.cid.equals(manifest.blocks[i])) throw new MalformedMessageError(`chunk ${i} is ${chunk.cid.toString()}, not the manifest's ${String(manifest.blocks[i])}`)
    const expected = Math.min(manifest.chunkSize, manifest.size - i * manifest.chunkSize)
    if (chunk.bytes.byteLength !== expected) throw new MalformedMessageError(`chunk ${i} has ${chunk.bytes.byteLength} bytes, not ${expected}`)
    out.set(chunk.bytes, i * manifest.chunkSize)
  }
  return out
}
