import { BlockStoreFullError } from '../core/blocks/errors.ts'
import { compacted } from '../core/crypto/bytes.ts'
import { BLOCK_FRAME_FIELDS_BYTES } from '../core/wire/blocks.ts'
import type { BlockCid, VerifiedBlock } from '../core/blocks/cid.ts'
import type { BlockProgress, LongCallOptions } from '../core/progress.ts'
import type { HyperspaceDb } from './database.ts'

/** The running totals, kept beside the blocks in the same transactions so they never disagree. */
const USAGE_KEY = 'blocks-usage'
/** The origin's quota is shared with the model caches (gigabytes): blocks get at most this share of it. */
const QUOTA_SHARE = 0.5
/** When the browser does not say (no navigator.storage), a size any desktop browser grants. */
const DEFAULT_QUOTA_BYTES = 1024 ** 3

export interface BlockUsage {
  count: number
  bytes: number
}

export interface BlockInfo {
  cid: string
  size: number
  storedAt: number
}

/** This node's block quota from the origin's quota as navigator.storage.estimate() reports it. */
export function blockQuotaFrom (originQuotaBytes: number | undefined): number {
  return originQuotaBytes === undefined ? DEFAULT_QUOTA_BYTES : Math.floor(originQuotaBytes * QUOTA_SHARE)
}

function isUsage (value: unknown): value is BlockUsage {
  if (typeof value !== 'object' || value === null) return false
  const { count, bytes } = value as Record<string, unknown>
  return Number.isSafeInteger(count) && Number.isSafeInteger(bytes) && (count as number) >= 0 && (bytes as number) >= 0
}

/**
 * One transaction over the blocks and their totals: every write and every read of the totals uses it.
 * Relaxed: a crash may lose the last writes, never half of one, and a lost block is fetched again.
 */
function blocksTransaction (db: HyperspaceDb) {
  return db.transaction(['blocks', 'settings'], 'readwrite', { durability: 'relaxed' })
}

type BlocksTransaction = ReturnType<typeof blocksTransaction>

function isQuotaExceeded (err: unknown): boolean {
  return err instanceof DOMException && err.name === 'QuotaExceededError'
}

/**
 * Content-addressed blocks in IndexedDB under their CID, within a per-node byte quota. Writes are
 * all-or-nothing: a put that would pass the quota (ours, or the browser's own) or is cancelled
 * stores none of its blocks and leaves every stored block and the totals as they were.
 */
export class BlockStore {
  constructor (private readonly db: HyperspaceDb, readonly quotaBytes: number) {}

  /**
   * Stores the blocks (already-stored ones are skipped) and returns the bytes newly stored. Only
   * verified blocks are taken (cid.ts makes them), so nothing unverified ever lands in the store.
   * Progress counts the bytes written ('storing'); an abort, seen between two writes, rolls the
   * whole transaction back and rejects with the signal's reason.
   */
  async put (blocks: readonly VerifiedBlock[], options: LongCallOptions<BlockProgress> = {}): Promise<number> {
    const { signal, onProgress } = options
    signal?.throwIfAborted()
    const tx = blocksTransaction(this.db)
    const store = tx.objectStore('blocks')
    const settings = tx.objectStore('settings')
    try {
      const usage = await this.readUsage(tx)
      const fresh = new Map<string, Uint8Array>()
      for (const { cid, bytes } of blocks) {
        const key = cid.toString()
        if (!fresh.has(key) && await store.getKey(key) === undefined) fresh.set(key, bytes)
      }
      const added = [...fresh.values()].reduce((sum, bytes) => sum + bytes.byteLength, 0)
      if (usage.bytes + added > this.quotaBytes) throw new BlockStoreFullError(added, usage.bytes, this.quotaBytes)
      const now = Date.now()
      let written = 0
      for (const [cid, bytes] of fresh) {
        signal?.throwIfAborted()
        // A chunk of a put's file is copied out of it; a received block, a view of its frame, is not.
        await store.put({ cid, bytes: compacted(bytes, BLOCK_FRAME_FIELDS_BYTES), storedAt: now })
        written += bytes.byteLength
        onProgress?.({ phase: 'storing', loaded: written, total: added })
      }
      signal?.throwIfAborted()
      await settings.put({ count: usage.count + fresh.size, bytes: usage.bytes + added }, USAGE_KEY)
      await tx.done
      return added
    } catch (err) {
      try {
        tx.abort()
      } catch {
        // The browser aborted it already (its own quota was reached): nothing was written.
      }
      await tx.done.catch(() => {})
      if (isQuotaExceeded(err)) throw new BlockStoreFullError(blocks.reduce((sum, b) => sum + b.bytes.byteLength, 0), (await this.usage()).bytes, this.quotaBytes)
      throw err
    }
  }

  /** The stored bytes as they are: callers that hand them on unverified must say why. */
  async get (cid: BlockCid): Promise<Uint8Array | undefined> {
    return (await this.db.get('blocks', cid.toString()))?.bytes
  }

  /** Several blocks' stored bytes in one transaction, in the order asked. */
  async getMany (cids: readonly BlockCid[]): Promise<Array<Uint8Array | undefined>> {
    const store = this.db.transaction('blocks').store
    return await Promise.all(cids.map(async cid => (await store.get(cid.toString()))?.bytes))
  }

  async has (cid: BlockCid): Promise<boolean> {
    return await this.db.getKey('blocks', cid.toString()) !== undefined
  }

  /** Removes a block; false when it was not stored. */
  async delete (cid: BlockCid): Promise<boolean> {
    const tx = blocksTransaction(this.db)
    const store = tx.objectStore('blocks')
    const stored = await store.get(cid.toString())
    if (stored === undefined) {
      await tx.done
      return false
    }
    const usage = await this.readUsage(tx)
    await store.delete(cid.toString())
    await tx.objectStore('settings').put({ count: Math.max(0, usage.count - 1), bytes: Math.max(0, usage.bytes - stored.bytes.byteLength) }, USAGE_KEY)
    await tx.done
    return true
  }

  /** Every stored block with its size, oldest first. */
  async list (): Promise<BlockInfo[]> {
    const out: BlockInfo[] = []
    let cursor = await this.db.transaction('blocks').store.openCursor()
    while (cursor !== null) {
      out.push({ cid: cursor.value.cid, size: cursor.value.bytes.byteLength, storedAt: cursor.value.storedAt })
      cursor = await cursor.continue()
    }
    return out.sort((a, b) => a.storedAt - b.storedAt)
  }

  /** The CIDs alone: what the node announces, without reading any block's bytes. */
  async cids (): Promise<string[]> {
    return await this.db.getAllKeys('blocks')
  }

  async usage (): Promise<BlockUsage> {
    const tx = blocksTransaction(this.db)
    const usage = await this.readUsage(tx)
    await tx.done
    return usage
  }

  /**
   * The totals; recounted (once) when the database has none, as after an upgrade from a version that
   * kept blocks without them.
   */
  private async readUsage (tx: BlocksTransaction): Promise<BlockUsage> {
    const stored = await tx.objectStore('settings').get(USAGE_KEY)
    if (isUsage(stored)) return stored
    const usage = { count: 0, bytes: 0 }
    let cursor = await tx.objectStore('blocks').openCursor()
    while (cursor !== null) {
      usage.count++
      usage.bytes += cursor.value.bytes.byteLength
      cursor = await cursor.continue()
    }
    await tx.objectStore('settings').put(usage, USAGE_KEY)
    return usage
  }
}
