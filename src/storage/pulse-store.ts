import type { HistorySnapshot } from '../core/pulse/validators.ts'
import type { HyperspaceDb, RoundRecord, StoredAttestation } from './database.ts'

const MAX_ROUND = Number.MAX_SAFE_INTEGER

/** Pulse history and the attestations behind it, per network and identity. */
export class PulseStore {
  constructor (private readonly db: HyperspaceDb) {}

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

  /**
   * The validator history this identity watched on this network (validators.ts). It is one value,
   * kept in the key-value settings store; what an older or damaged copy holds is dropped entry by entry.
   */
  async validatorHistory (networkId: string, peerId: string): Promise<HistorySnapshot[]> {
    const stored = await this.db.get('settings', historyKey(networkId, peerId))
    if (!Array.isArray(stored)) return []
    return stored.filter((entry: unknown): entry is HistorySnapshot => {
      const e = entry as Partial<HistorySnapshot> | null
      return typeof e === 'object' && e !== null && typeof e.peer === 'string' && e.peer.length <= 128 &&
        Number.isSafeInteger(e.verifiedRounds) && Number.isSafeInteger(e.lastRound)
    })
  }

  async saveValidatorHistory (networkId: string, peerId: string, snapshot: HistorySnapshot[]): Promise<void> {
    await this.db.put('settings', snapshot, historyKey(networkId, peerId))
  }

  async addAttestation (attestation: StoredAttestation): Promise<void> {
    await this.db.put('attestations', attestation)
  }

  async attestations (networkId: string, peerId: string, round: number): Promise<StoredAttestation[]> {
    return await this.db.getAll('attestations', IDBKeyRange.bound([networkId, peerId, round, ''], [networkId, peerId, round, '\uffff']))
  }
}

function roundsOf (networkId: string, peerId: string): IDBKeyRange {
  return IDBKeyRange.bound([networkId, peerId, 0], [networkId, peerId, MAX_ROUND])
}

function historyKey (networkId: string, peerId: string): string {
  return `validator-history/${networkId}/${peerId}`
}
