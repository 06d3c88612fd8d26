import { encodeHistory, type VerifiedHistory } from '../core/identity-history.ts'
import { backedRounds, servedReceipts } from '../core/points-proof/prove.ts'
import { sha256Of, toHex } from '../core/crypto/bytes.ts'
import { appendEntry, type LogEntry } from '../core/receipts/log.ts'
import { ATTESTATIONS_MAX } from './pulse-store.ts'
import type { IDBPTransaction } from 'idb'
import type { HyperspaceDb, HyperspaceSchema } from './database.ts'

/**
 * An identity's signed history in and out of IndexedDB, for the identity file
 * (core/identity-history.ts): out, the rounds and receipts a points proof is built from; in, a
 * history already checked against the key, added beside whatever the device holds of it.
 */

const MAX = Number.MAX_SAFE_INTEGER

/** The history `peerId` earned on `networkId` here, encoded for its identity file. */
export async function exportHistory (db: HyperspaceDb, networkId: string, peerId: string): Promise<Uint8Array> {
  const records = await db.getAll('rounds', IDBKeyRange.bound([networkId, peerId, 0], [networkId, peerId, MAX]))
  const attestations = await db.getAll('attestations', IDBKeyRange.bound([networkId, peerId, 0, ''], [networkId, peerId, MAX, '\uffff']))
  const logged = await db.getAll('receipts', IDBKeyRange.bound([networkId, peerId, 0], [networkId, peerId, MAX]))
  const rounds = await backedRounds({ self: peerId }, records, attestations)
  const receipts = await servedReceipts(peerId, logged.map(e => e.receipt), 0, MAX)
  return encodeHistory({ net: networkId, rounds: rounds.map(r => r.evidence), receipts: receipts.sort((a, b) => a.claim.round - b.claim.round).map(r => r.bytes) })
}

export type HistoryStores = 'identity' | 'rounds' | 'attestations' | 'receipts'

/**
 * Adds a checked history within `tx` (which also stores the key, so both or neither are kept).
 * Nothing the device holds is replaced or removed: a round it has a record of keeps its own record
 * and attestations, a receipt already in the log is not logged twice, and attestations stop at
 * ATTESTATIONS_MAX rather than push out older ones. Returns how much was added.
 */
export async function restoreHistory (tx: IDBPTransaction<HyperspaceSchema, HistoryStores[], 'readwrite'>, peerId: string, history: VerifiedHistory): Promise<{ rounds: number, receipts: number }> {
  const networkId = history.net
  const rounds = tx.objectStore('rounds')
  const attestations = tx.objectStore('attestations')
  const receipts = tx.objectStore('receipts')
  let attested = await attestations.count(IDBKeyRange.bound([networkId, peerId, 0, ''], [networkId, peerId, MAX, '\uffff']))
  let addedRounds = 0
  for (const round of history.rounds) {
    if (await rounds.getKey([networkId, peerId, round.round]) !== undefined) continue
    await rounds.put({
      networkId, peerId, round: round.round, committed: true, revealed: true, verified: true, strikes: [],
      caps: round.caps, confirmedCaps: round.confirmedCaps, commit: round.commit
    })
    addedRounds++
    for (const { validator, attestation } of round.attestations) {
      if (attested >= ATTESTATIONS_MAX) break
      await attestations.put({ networkId, peerId, round: round.round, validator, attestation })
      attested++
    }
  }
  const log = await receipts.getAll(IDBKeyRange.bound([networkId, peerId, 0], [networkId, peerId, MAX]))
  const logged = new Set(log.map(e => toHex(sha256Of(e.receipt))))
  let last: LogEntry | undefined = log.at(-1)
  let addedReceipts = 0
  for (const receipt of history.receipts) {
    if (logged.has(toHex(sha256Of(receipt)))) continue
    last = appendEntry(last, receipt)
    await receipts.add({ networkId, peerId, ...last })
    addedReceipts++
  }
  return { rounds: addedRounds, receipts: addedReceipts }
}
