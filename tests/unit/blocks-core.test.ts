import { encode } from 'cborg'
import fc from 'fast-check'
import { base58btc } from 'multiformats/bases/base58'
import { CID } from 'multiformats/cid'
import * as json from 'multiformats/codecs/json'
import * as raw from 'multiformats/codecs/raw'
import { identity } from 'multiformats/hashes/identity'
import { sha256, sha512 } from 'multiformats/hashes/sha2'
import { describe, expect, it } from 'vitest'
import { BLOCK_MAX_BYTES, blockCidFromBytes, blockOf, cidForBlock, parseBlockCid, verifyBlock, type VerifiedBlock } from '../../src/core/blocks/cid.ts'
import { FILE_MAX_CHUNKS, assembleFile, chunkFile, decodeManifest, encodeManifest } from '../../src/core/blocks/file.ts'
import { equalBytes } from '../../src/core/crypto/bytes.ts'
import { BLOCKS_JOB_FRAMES, decodeBlocksServerFrame } from '../../src/core/wire/blocks.ts'
import { BlockHashMismatchError, BlockTooLargeError, InvalidCidError, MalformedMessageError, UnsupportedVersionError } from '../../src/core/errors.ts'

const { encodeServer: encodeBlocksServerFrame } = BLOCKS_JOB_FRAMES

const hello = new TextEncoder().encode('hello world')

describe('block CIDs', () => {
  it('is CIDv1, raw codec, sha2-256: the well-known CID of "hello world"', async () => {
    const cid = await cidForBlock(hello)
    expect(cid.toString()).toBe('bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e')
    expect(cid.version).toBe(1)
    expect(cid.code).toBe(raw.code)
    expect(cid.multihash.code).toBe(sha256.code)
  })

  it('verifies the right bytes and rejects tampered, truncated or extended ones', async () => {
    const cid = await cidForBlock(hello)
    await expect(verifyBlock(cid, hello)).resolves.toEqual({ cid, bytes: hello })
    const flipped = hello.slice()
    flipped[3] = (flipped[3] as number) ^ 1
    await expect(verifyBlock(cid, flipped)).rejects.toThrow(BlockHashMismatchError)
    await expect(verifyBlock(cid, hello.subarray(1))).rejects.toThrow(BlockHashMismatchError)
    await expect(verifyBlock(cid, new Uint8Array([...hello, 0]))).rejects.toThrow(BlockHashMismatchError)
  })

  it('compares bytes word-wise exactly as byte by byte, at any offsets (property)', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), fc.nat(7), fc.nat(7), fc.nat(), (bytes, offA, offB, at) => {
      const a = new Uint8Array(bytes.byteLength + 8).subarray(offA, offA + bytes.byteLength)
      const b = new Uint8Array(bytes.byteLength + 8).subarray(offB, offB + bytes.byteLength)
      a.set(bytes)
      b.set(bytes)
      expect(equalBytes(a, b)).toBe(true)
      if (bytes.byteLength === 0) return
      const i = at % bytes.byteLength
      b[i] = (b[i] as number) ^ 1
      expect(equalBytes(a, b)).toBe(false)
      expect(equalBytes(a, b.subarray(1))).toBe(false)
    }), { numRuns: 500 })
  })

  it('detects any single-bit change (property)', async () => {
    await fc.assert(fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 512 }), fc.nat(), fc.integer({ min: 0, max: 7 }), async (bytes, at, bit) => {
      const cid = await cidForBlock(bytes)
      const tampered = bytes.slice()
      const i = at % tampered.length
      tampered[i] = (tampered[i] as number) ^ (1 << bit)
      await expect(verifyBlock(cid, tampered)).rejects.toThrow(BlockHashMismatchError)
    }), { numRuns: 100 })
  })

  it('limits a block to 1 MiB', async () => {
    await expect(cidForBlock(new Uint8Array(BLOCK_MAX_BYTES))).resolves.toBeDefined()
    await expect(cidForBlock(new Uint8Array(BLOCK_MAX_BYTES + 1))).rejects.toThrow(BlockTooLargeError)
    const cid = await cidForBlock(hello)
    await expect(verifyBlock(cid, new Uint8Array(BLOCK_MAX_BYTES + 1))).rejects.toThrow(BlockTooLargeError)
  })

  it('parses base32 and base58 text to the canonical form, and binary CIDs', async () => {
    const cid = await cidForBlock(hello)
    expect(parseBlockCid(cid.toString()).equals(cid)).toBe(true)
    expect(parseBlockCid(cid.toString(base58btc)).toString()).toBe(cid.toString())
    expect(blockCidFromBytes(cid.bytes).equals(cid)).toBe(true)
  })

  it('rejects CIDs of other codecs, hashes or versions, junk and oversize text', async () => {
    const digest = await sha256.digest(hello)
    const others = [
      CID.createV0(digest),
      CID.createV1(json.code, digest),
      CID.createV1(raw.code, await sha512.digest(hello)),
      CID.createV1(raw.code, identity.digest(hello))
    ]
    for (const cid of others) {
      expect(() => parseBlockCid(cid.toString())).toThrow(InvalidCidError)
      expect(() => blockCidFromBytes(cid.bytes)).toThrow(InvalidCidError)
    }
    expect(() => parseBlockCid('bafkrei-not-a-cid')).toThrow(InvalidCidError)
    expect(() => parseBlockCid('')).toThrow(InvalidCidError)
    expect(() => parseBlockCid('b'.repeat(129))).toThrow(InvalidCidError)
    const good = CID.createV1(raw.code, digest)
    expect(() => blockCidFromBytes(new Uint8Array([...good.bytes, 0]))).toThrow(InvalidCidError)
    expect(() => blockCidFromBytes(good.bytes.subarray(0, 10))).toThrow(InvalidCidError)
  })
})

describe('files: chunks and a manifest block', () => {
  it('splits, addresses and reassembles a file, verifying every chunk', async () => {
    const bytes = Uint8Array.from({ length: 10_000 }, (_, i) => (i * 31) & 0xff)
    const file = await chunkFile(bytes, 4096)
    expect(file.blocks.map(b => b.bytes.byteLength)).toEqual([4096, 4096, 1808])
    expect(file.manifest.cid.equals(await cidForBlock(file.manifest.bytes))).toBe(true)
    const manifest = decodeManifest(file.manifest.bytes)
    expect(manifest).toMatchObject({ size: 10_000, chunkSize: 4096 })
    expect(manifest.blocks.map(String)).toEqual(file.blocks.map(b => b.cid.toString()))
    expect(assembleFile(manifest, file.blocks)).toEqual(bytes)
  })

  it('handles the empty file and a file of exactly one chunk', async () => {
    const empty = await chunkFile(new Uint8Array(0))
    expect(decodeManifest(empty.manifest.bytes).blocks).toEqual([])
    expect(assembleFile(decodeManifest(empty.manifest.bytes), [])).toEqual(new Uint8Array(0))
    const one = await chunkFile(new Uint8Array(64), 64)
    expect(one.blocks).toHaveLength(1)
  })

  it('refuses another block in place of a chunk, chunks out of order or a missing chunk', async () => {
    const bytes = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff)
    const file = await chunkFile(bytes, 128)
    const manifest = decodeManifest(file.manifest.bytes)
    const [first, second, third] = file.blocks as [VerifiedBlock, VerifiedBlock, VerifiedBlock]
    const other = await blockOf(second.bytes.map(x => x ^ 0xff))
    expect(() => assembleFile(manifest, [first, other, third])).toThrow(MalformedMessageError)
    expect(() => assembleFile(manifest, [first, third, second])).toThrow(MalformedMessageError)
    expect(() => assembleFile(manifest, [first, second])).toThrow(MalformedMessageError)
  })

  it('rejects malformed manifests', async () => {
    const cid = await cidForBlock(hello)
    const good = { v: 1, t: 'file', size: 11, chunk: 1024, blocks: [cid.bytes] }
    expect(decodeManifest(encode(good)).blocks[0]?.equals(cid)).toBe(true)
    const cases: Array<[unknown, new (...args: never[]) => Error]> = [
      [{ ...good, v: 2 }, UnsupportedVersionError],
      [{ ...good, t: 'dir' }, MalformedMessageError],
      [{ ...good, size: 5000 }, MalformedMessageError],
      [{ ...good, chunk: BLOCK_MAX_BYTES + 1 }, MalformedMessageError],
      [{ ...good, blocks: [cid.toString()] }, MalformedMessageError],
      [{ ...good, blocks: [CID.createV1(json.code, cid.multihash).bytes] }, InvalidCidError],
      [{ ...good, size: (FILE_MAX_CHUNKS + 1) * 1024, blocks: Array.from({ length: FILE_MAX_CHUNKS + 1 }, () => cid.bytes) }, MalformedMessageError]
    ]
    for (const [value, error] of cases) expect(() => decodeManifest(encode(value))).toThrow(error)
    expect(() => encodeManifest({ size: 11, chunkSize: 4, blocks: [cid] })).toThrow(MalformedMessageError)
  })
})

describe('the canonical check of frames with large byte strings', () => {
  const bytes = new Uint8Array(300_000).map((_, i) => i * 7)
  const nonce = new Uint8Array(16).fill(5)
  /** An 8-byte length: longer than the 4 bytes 300,000 needs. */
  const header = (n: number): number[] => [0x5b, 0, 0, 0, 0, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]
  /** A map written key by key in the order given, each value as given. */
  const mapOf = (entries: Entry[]): Uint8Array => {
    const parts = [new Uint8Array([0xa0 | entries.length]), ...entries.flatMap(([k, v]) => [encode(k), v])]
    const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
    let at = 0
    for (const p of parts) { out.set(p, at); at += p.byteLength }
    return out
  }
  type Entry = [string, Uint8Array]
  const canonicalEntries = (): [Entry, Entry, Entry, Entry] => [['t', encode('block')], ['v', encode(1)], ['bytes', encode(bytes)], ['nonce', encode(nonce)]]

  it('takes the canonical block frame, with its bytes as sent', () => {
    const frame = encodeBlocksServerFrame({ t: 'block', nonce, bytes })
    expect(equalBytes(mapOf(canonicalEntries()), frame)).toBe(true)
    const decoded = decodeBlocksServerFrame(frame)
    expect(decoded.t === 'block' && equalBytes(decoded.bytes, bytes)).toBe(true)
  })

  it('refuses keys out of order, a longer header than needed, a float for an integer and trailing bytes', () => {
    const [t, v, b, n] = canonicalEntries()
    const refused = (frame: Uint8Array): void => { expect(() => decodeBlocksServerFrame(frame)).toThrow(MalformedMessageError) }
    refused(mapOf([t, v, n, b]))
    refused(mapOf([b, t, v, n]))
    refused(mapOf([t, v, ['bytes', new Uint8Array([...header(bytes.byteLength), ...bytes])], n]))
    refused(mapOf([t, ['v', new Uint8Array([0xf9, 0x3c, 0x00])], b, n]))
    refused(new Uint8Array([...mapOf([t, v, b, n]), 0]))
    // The same bytes twice, one as a large string: the second key's value is checked too.
    refused(mapOf([t, v, b, ['nonce', encode(bytes)]]))
  })

  it("reads a block's bytes as a view of the frame, and still refuses a longer length than needed or a cut frame", () => {
    const frame = encodeBlocksServerFrame({ t: 'block', nonce, bytes })
    const decoded = decodeBlocksServerFrame(frame)
    if (decoded.t !== 'block') throw new Error('not a block')
    expect(decoded.bytes.buffer).toBe(frame.buffer)
    expect(equalBytes(decoded.bytes, bytes)).toBe(true)
    // A frame sharing its buffer with other data (one data channel message, several frames) is copied
    // out: the block must not keep the rest alive.
    const shared = new Uint8Array(frame.byteLength + 200_000)
    shared.set(frame)
    const copied = decodeBlocksServerFrame(shared.subarray(0, frame.byteLength))
    expect(copied.t === 'block' && copied.bytes.buffer.byteLength === bytes.byteLength && equalBytes(copied.bytes, bytes)).toBe(true)
    const [t, v, , n] = canonicalEntries()
    const refused = (frame: Uint8Array): void => { expect(() => decodeBlocksServerFrame(frame)).toThrow(MalformedMessageError) }
    // 5,000 bytes need a 2-byte length (0x59); a 4-byte one (0x5a) is another encoding of the same frame.
    const small = bytes.subarray(0, 5000)
    expect(decodeBlocksServerFrame(mapOf([t, v, ['bytes', encode(small)], n])).t).toBe('block')
    refused(mapOf([t, v, ['bytes', new Uint8Array([0x5a, 0, 0, 0x13, 0x88, ...small])], n]))
    // A length one byte longer than the bytes that follow it.
    refused(mapOf([t, v, ['bytes', new Uint8Array([0x5a, 0, 0x04, 0x93, 0xe1, ...bytes])], n]))
    refused(frame.subarray(0, frame.byteLength - 20))
  })
})
