import type { LogEntry } from '../core/receipts/log.ts'
import type { HyperspaceDb } from './database.ts'

const MAX_SEQ = Number.MAX_SAFE_INTEGER

/** The receipt log in IndexedDB. Entries are only added, never replaced: `add` fails on an existing seq. */
export class ReceiptStore {
  constructor (private readonly db: HyperspaceDb) {}

  async entries (networkId: string): Promise<LogEntry[]> {
    const stored = await this.db.getAll('receipts', IDBKeyRange.bound([networkId, 0], [networkId, MAX_SEQ]))
    return stored.map(({ seq, prev, receipt, hash }) => ({ seq, prev, receipt, hash }))
  }

  async append (networkId: string, entry: LogEntry): Promise<void> {
    await this.db.add('receipts', { networkId, ...entry })
  }
}
