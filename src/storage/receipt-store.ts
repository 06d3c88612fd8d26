import type { LogEntry } from '../core/receipts/log.ts'
import type { HyperspaceDb } from './database.ts'

const MAX_SEQ = Number.MAX_SAFE_INTEGER

/**
 * The receipt logs in IndexedDB, one per network and identity. Entries are only added, never
 * replaced: `add` fails on an existing seq.
 */
export class ReceiptStore {
  constructor (private readonly db: HyperspaceDb) {}

  /** Up to `limit` entries from sequence number `from` on, in order: a log is read a page at a time. */
  async page (networkId: string, peerId: string, from: number, limit: number): Promise<LogEntry[]> {
    const stored = await this.db.getAll('receipts', IDBKeyRange.bound([networkId, peerId, from], [networkId, peerId, MAX_SEQ]), limit)
    return stored.map(({ seq, prev, receipt, hash }) => ({ seq, prev, receipt, hash }))
  }

  async append (networkId: string, peerId: string, entry: LogEntry): Promise<void> {
    await this.db.add('receipts', { networkId, peerId, ...entry })
  }
}
