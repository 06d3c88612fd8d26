import { ReceiptChainError } from '../errors.ts'
import { equalBytes, sha256Of, u64be, utf8 } from '../crypto/bytes.ts'

/**
 * The hash-chained receipt log each node keeps: every entry commits to the one before it, so a
 * receipt dropped, edited or reordered anywhere breaks every hash after it.
 */
export interface LogEntry {
  seq: number
  prev: Uint8Array
  /** The signed receipt's bytes as stored. */
  receipt: Uint8Array
  hash: Uint8Array
}

export const GENESIS_HASH = new Uint8Array(32)
const DOMAIN = utf8('hyperspace-receipt-log/1')

function entryHash (seq: number, prev: Uint8Array, receipt: Uint8Array): Uint8Array {
  return sha256Of(DOMAIN, u64be(seq), prev, receipt)
}

export function appendEntry (last: LogEntry | undefined, receipt: Uint8Array): LogEntry {
  const seq = last === undefined ? 0 : last.seq + 1
  const prev = last?.hash ?? GENESIS_HASH
  return { seq, prev, receipt, hash: entryHash(seq, prev, receipt) }
}

/** Checks that `entry` is entry `seq` of a log and follows the entry whose hash is `prev`; throws ReceiptChainError. */
export function checkEntry (entry: LogEntry, seq: number, prev: Uint8Array): void {
  if (entry.seq !== seq) throw new ReceiptChainError(seq, `sequence number ${entry.seq}`)
  if (!equalBytes(entry.prev, prev)) throw new ReceiptChainError(seq, 'does not follow the previous entry')
  if (!equalBytes(entry.hash, entryHash(entry.seq, entry.prev, entry.receipt))) throw new ReceiptChainError(seq, 'hash does not match its content')
}

/** Checks a whole log from its first entry; throws ReceiptChainError at the first break. */
export function verifyChain (entries: readonly LogEntry[]): void {
  let prev: Uint8Array = GENESIS_HASH
  entries.forEach((entry, i) => {
    checkEntry(entry, i, prev)
    prev = entry.hash
  })
}
