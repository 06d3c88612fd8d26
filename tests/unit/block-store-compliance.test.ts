import { afterAll, describe, expect, it } from 'vitest'
import { blockOf, cidForBlock, verifyBlock, type VerifiedBlock } from '../../src/core/blocks/cid.ts'
import { BlockStoreFullError } from '../../src/core/blocks/errors.ts'
import { equalBytes, utf8 } from '../../src/core/crypto/bytes.ts'
import { BlockHashMismatchError } from '../../src/core/errors.ts'
import type { BlockProgress } from '../../src/core/progress.ts'
import { BlockStore } from '../../src/storage/block-store.ts'
import { closeAll, openDb } from './helpers.ts'

/**
 * The block store's contract, run against each implementation Node can run: today the IndexedDB
 * store (fake-indexeddb here, the browser's own in the e2e specs). Writes are all-or-nothing: a put
 * that passes the quota or is cancelled midway leaves the blocks and the totals as they were.
 */
const subjects: Array<[string, (quotaBytes: number) => Promise<BlockStore>]> = [
  ['BlockStore (IndexedDB)', async quotaBytes => new BlockStore(await openDb(), quotaBytes)]
]

afterAll(() => { closeAll() })

async function blocksOf (count: number, size: number): Promise<VerifiedBlock[]> {
  return await Promise.all(Array.from({ length: count }, async () => await blockOf(crypto.getRandomValues(new Uint8Array(size)))))
}

describe.each(subjects)('%s', (_name, make) => {
  it('stores, lists with sizes, counts bytes, deletes, and skips blocks it holds', async () => {
    const store = await make(10_000)
    const one = utf8('one block')
    const block = await blockOf(one)
    const { cid } = block
    expect(await store.put([block])).toBe(one.byteLength)
    expect(await store.put([block])).toBe(0)
    expect(await store.has(cid)).toBe(true)
    expect(await store.get(cid)).toEqual(one)
    expect(await store.cids()).toEqual([cid.toString()])
    expect(await store.list()).toMatchObject([{ cid: cid.toString(), size: one.byteLength }])
    expect(await store.usage()).toEqual({ count: 1, bytes: one.byteLength })
    expect(await store.delete(cid)).toBe(true)
    expect(await store.delete(cid)).toBe(false)
    expect(await store.usage()).toEqual({ count: 0, bytes: 0 })
  })

  it('stores a chunk without the rest of its file, and a block received in its frame without a copy', async () => {
    const store = await make(100_000)
    const file = crypto.getRandomValues(new Uint8Array(20_000))
    const chunk = await blockOf(file.subarray(2_000, 7_000))
    const frame = crypto.getRandomValues(new Uint8Array(5_040))
    const received = await blockOf(frame.subarray(40))
    await store.put([chunk, received])
    const [storedChunk, storedReceived] = await store.getMany([chunk.cid, received.cid])
    expect(storedChunk?.buffer.byteLength).toBe(5_000)
    expect(storedReceived?.buffer.byteLength).toBe(5_040)
    expect(equalBytes(storedChunk ?? new Uint8Array(), chunk.bytes) && equalBytes(storedReceived ?? new Uint8Array(), received.bytes)).toBe(true)
    expect(await store.usage()).toEqual({ count: 2, bytes: 10_000 })
  })

  it('reads several blocks in the order asked, undefined for those it lacks', async () => {
    const store = await make(10_000)
    const [x, y, missing] = await blocksOf(3, 100) as [VerifiedBlock, VerifiedBlock, VerifiedBlock]
    await store.put([x, y])
    const read = await store.getMany([y.cid, missing.cid, x.cid])
    expect(read.map(bytes => bytes?.byteLength)).toEqual([100, undefined, 100])
    expect(equalBytes(read[0] ?? new Uint8Array(), y.bytes) && equalBytes(read[2] ?? new Uint8Array(), x.bytes)).toBe(true)
  })

  it('takes only verified blocks: a CID with bytes that were not hashed to it does not type-check', async () => {
    const cid = await cidForBlock(utf8('real'))
    const putUnverified = async (store: BlockStore): Promise<number> =>
      // @ts-expect-error a CID and bytes become a VerifiedBlock only through verifyBlock, which hashes them
      await store.put([{ cid, bytes: utf8('fake') }])
    expect(putUnverified).toBeTypeOf('function')
    await expect(verifyBlock(cid, utf8('fake'))).rejects.toThrow(BlockHashMismatchError)
  })

  it('throws BlockStoreFullError past its quota and keeps every block it held', async () => {
    const store = await make(3_000)
    const [kept, refused] = await blocksOf(2, 2_000) as [VerifiedBlock, VerifiedBlock]
    await store.put([kept])
    const err = await store.put([refused]).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(BlockStoreFullError)
    expect((err as BlockStoreFullError).code).toBe('ERR_BLOCK_STORE_FULL')
    expect(equalBytes(await store.get(kept.cid) ?? new Uint8Array(), kept.bytes)).toBe(true)
    expect(await store.has(refused.cid)).toBe(false)
    expect(await store.usage()).toEqual({ count: 1, bytes: 2_000 })
  })

  it('reports the bytes it writes, up to the total', async () => {
    const store = await make(100_000)
    const events: BlockProgress[] = []
    expect(await store.put(await blocksOf(4, 1_000), { onProgress: p => { events.push(p) } })).toBe(4_000)
    expect(events.map(e => e.loaded)).toEqual([1_000, 2_000, 3_000, 4_000])
    expect(events.every(e => e.phase === 'storing' && e.total === 4_000)).toBe(true)
  })

  it('a put aborted midway stores none of its blocks, counts nothing, loses nothing, and can be made again', async () => {
    const store = await make(100_000)
    const [held] = await blocksOf(1, 500) as [VerifiedBlock]
    await store.put([held])
    const blocks = await blocksOf(6, 1_000)
    const controller = new AbortController()
    const reason = new Error('the user cancelled')
    const put = store.put([held, ...blocks], {
      signal: controller.signal,
      // Cancelled after the third block is written, inside the transaction.
      onProgress: p => { if (p.loaded === 3_000) controller.abort(reason) }
    })
    await expect(put).rejects.toBe(reason)
    expect(await store.usage()).toEqual({ count: 1, bytes: 500 })
    expect(await store.cids()).toEqual([held.cid.toString()])
    for (const block of blocks) expect(await store.has(block.cid)).toBe(false)
    expect(equalBytes(await store.get(held.cid) ?? new Uint8Array(), held.bytes)).toBe(true)

    expect(await store.put(blocks)).toBe(6_000)
    expect(await store.usage()).toEqual({ count: 7, bytes: 6_500 })
  })

  it('a put whose signal is already aborted writes nothing', async () => {
    const store = await make(100_000)
    const controller = new AbortController()
    controller.abort()
    await expect(store.put(await blocksOf(2, 100), { signal: controller.signal })).rejects.toMatchObject({ name: 'AbortError' })
    expect(await store.usage()).toEqual({ count: 0, bytes: 0 })
  })
})
