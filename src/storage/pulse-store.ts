import type { PointsFold } from '../core/points.ts'
import { parseHistorySnapshots, type HistorySnapshot } from '../core/pulse/validators.ts'
import type { RoundRecord, RoundRecordStore } from '../core/pulse/ledger.ts'
import type { HyperspaceDb, StoredAttestation } from './database.ts'

const MAX_ROUND = Number.MAX_SAFE_INTEGER

/**
 * Attestations kept per round: a round's voters are its 5 drawn validators and the anchors whose
 * verdict arrived (docs/protocol.md), and the engine keeps a verdict only from a voter; 8 holds the
 * drawn validators and three anchors, enough to re-check any quorum.
 */
export const ATTESTATIONS_PER_ROUND = 8
/**
 * Attestations kept per identity and network: each is a verdict's header, one result and its path
 * (under 1 KiB), so at most 8 MiB; enough for more than a day of rounds at T = 90 s with every voter
 * heard (960 rounds of up to 8). The oldest rounds' go first.
 */
export const ATTESTATIONS_MAX = 8192

/** Pulse history and the attestations behind it, per network and identity. */
export class PulseStore implements RoundRecordStore {
  /** `maxAttestations` is ATTESTATIONS_MAX but in tests, which fill it on a slower IndexedDB. */
  constructor (private readonly db: HyperspaceDb, private readonly maxAttestations = ATTESTATIONS_MAX) {}

  async saveRound (record: RoundRecord): Promise<void> {
    await this.db.put('rounds', record)
  }

  async round (networkId: string, peerId: string, round: number): Promise<RoundRecord | undefined> {
    return await this.db.get('rounds', [networkId, peerId, round])
  }

  /** The identity's newest `limit` rounds, newest first. */
  async recent (networkId: string, peerId: string, limit: number): Promise<RoundRecord[]> {
    const out: RoundRecord[] = []
    let cursor = await this.db.transaction('rounds').store.openCursor(roundsOf(networkId, peerId), 'prev')
    while (cursor !== null && out.length < limit) {
      out.push(cursor.value)
      cursor = await cursor.continue()
    }
    return out
  }

  async all (networkId: string, peerId: string): Promise<RoundRecord[]> {
    return await this.db.getAll('rounds', roundsOf(networkId, peerId))
  }

  /** The identity's folded rounds on this network (see PulseLedger), or undefined if none is (validly) kept. */
  async pointsFold (networkId: string, peerId: string): Promise<PointsFold | undefined> {
    const stored: unknown = await this.db.get('settings', foldKey(networkId, peerId))
    return isPointsFold(stored) ? stored : undefined
  }

  /**
   * Replaces the identity's fold and deletes the round records it folded in, in one transaction: a
   * crash leaves either the records or the fold that holds their points, never neither.
   */
  async fold (networkId: string, peerId: string, fold: PointsFold): Promise<void> {
    const tx = this.db.transaction(['rounds', 'settings'], 'readwrite')
    await Promise.all([
      tx.objectStore('settings').put(fold, foldKey(networkId, peerId)),
      tx.objectStore('rounds').delete(IDBKeyRange.bound([networkId, peerId, 0], [networkId, peerId, fold.throughRound])),
      tx.done
    ])
  }

  /**
   * The validator history this identity watched on this network (validators.ts). It is one value,
   * kept in the key-value settings store; what an older or damaged copy holds is dropped entry by entry.
   */
  async validatorHistory (networkId: string, peerId: string): Promise<HistorySnapshot[]> {
    return parseHistorySnapshots(await this.db.get('settings', historyKey(networkId, peerId)))
  }

  async saveValidatorHistory (networkId: string, peerId: string, snapshot: HistorySnapshot[]): Promise<void> {
    await this.db.put('settings', snapshot, historyKey(networkId, peerId))
  }

  /**
   * Keeps a voter's verdict: replaces that voter's earlier one for the round, is refused (false) once
   * the round holds ATTESTATIONS_PER_ROUND, and pushes out the oldest rounds' beyond ATTESTATIONS_MAX.
   */
  async addAttestation (attestation: StoredAttestation): Promise<boolean> {
    const { networkId, peerId, round, validator } = attestation
    const tx = this.db.transaction('attestations', 'readwrite')
    const store = tx.store
    const replacing = await store.getKey([networkId, peerId, round, validator]) !== undefined
    if (!replacing && await store.count(attestationsOf(networkId, peerId, round, round)) >= ATTESTATIONS_PER_ROUND) {
      await tx.done
      return false
    }
    await store.put(attestation)
    let excess = replacing ? 0 : await store.count(attestationsOf(networkId, peerId, 0, MAX_ROUND)) - this.maxAttestations
    let oldest = excess > 0 ? await store.openCursor(attestationsOf(networkId, peerId, 0, MAX_ROUND)) : null
    while (oldest !== null && excess > 0) {
      await oldest.delete()
      excess--
      oldest = await oldest.continue()
    }
    await tx.done
    return true
  }

  /** The attestations of rounds `from` to `to`, as stored (records from before v4 lack `attestation`). */
  async attestations (networkId: string, peerId: string, from: number, to = from): Promise<StoredAttestation[]> {
    return await this.db.getAll('attestations', attestationsOf(networkId, peerId, from, to))
  }
}

function attestationsOf (networkId: string, peerId: string, from: number, to: number): IDBKeyRange {
  return IDBKeyRange.bound([networkId, peerId, from, ''], [networkId, peerId, to, '\uffff'])
}

function roundsOf (networkId: string, peerId: string): IDBKeyRange {
  return IDBKeyRange.bound([networkId, peerId, 0], [networkId, peerId, MAX_ROUND])
}

function foldKey (networkId: string, peerId: string): string {
  return `points-fold/${networkId}/${peerId}`
}

const optionalCount = (value: unknown): boolean => value === undefined || (Number.isSafeInteger(value) && (value as number) >= 0)

function isPointsFold (value: unknown): value is PointsFold {
  const f = value as Partial<Record<keyof PointsFold, unknown>> | null
  return typeof f === 'object' && f !== null && Number.isSafeInteger(f.throughRound) &&
    typeof f.points === 'number' && Number.isFinite(f.points) && f.points >= 0 &&
    typeof f.lastDayPoints === 'number' && Number.isFinite(f.lastDayPoints) && f.lastDayPoints >= 0 &&
    Number.isSafeInteger(f.verifiedDays) && (f.verifiedDays as number) >= 0 &&
    optionalCount(f.lastDay) && optionalCount(f.streakStart) && optionalCount(f.lastVerified)
}

function historyKey (networkId: string, peerId: string): string {
  return `validator-history/${networkId}/${peerId}`
}
