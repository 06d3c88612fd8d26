import type { LogEntry } from '../core/receipts/log.ts'
import type { HyperspaceDb } from './database.ts'

const MAX_SEQ = Number.MAX_SAFE_INTEGER

/**
 * The receipt logs in IndexedDB, one per network and identity. Entries are only added, never
 * replaced: `add` fails on an existing seq.
 */
export class ReceiptStore {
  constructor (private readonly db: HyperspaceDb) {}

  async entries (networkId: string, peerId: string): Promise<LogEntry[]> {
    const stored = await this.db.getAll('receipts', IDBKeyRange.bound([networkId, peerId, 0], [networkId, peerId, MAX_SEQ]))
    return stored.map(({ seq, prev, receipt, hash }) => ({ seq, prev, receipt, hash }))
  }

  async append (networkId: string, peerId: string, entry: LogEntry): Promise<void> {
    await this.db.add('receipts', { networkId, peerId, ...entry })
  }
}
