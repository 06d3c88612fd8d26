import type { HyperspaceDb, RoundRecord, StoredAttestation } from './database.ts'

const MAX_ROUND = Number.MAX_SAFE_INTEGER

/** This node's pulse history and the attestations behind it, per network. */
export class PulseStore {
  constructor (private readonly db: HyperspaceDb) {}

  async saveRound (record: RoundRecord): Promise<void> {
    await this.db.put('rounds', record)
  }

  async round (networkId: string, round: number): Promise<RoundRecord | undefined> {
    return await this.db.get('rounds', [networkId, round])
  }

  /** The newest `limit` rounds, newest first. */
  async recent (networkId: string, limit: number): Promise<RoundRecord[]> {
    const out: RoundRecord[] = []
    let cursor = await this.db.transaction('rounds').store.openCursor(IDBKeyRange.bound([networkId, 0], [networkId, MAX_ROUND]), 'prev')
    while (cursor !== null && out.length < limit) {
      out.push(cursor.value)
      cursor = await cursor.continue()
    }
    return out
  }

  async all (networkId: string): Promise<RoundRecord[]> {
    return await this.db.getAll('rounds', IDBKeyRange.bound([networkId, 0], [networkId, MAX_ROUND]))
  }

  async addAttestation (attestation: StoredAttestation): Promise<void> {
    await this.db.put('attestations', attestation)
  }

  async attestations (networkId: string, round: number): Promise<StoredAttestation[]> {
    return await this.db.getAll('attestations', IDBKeyRange.bound([networkId, round, ''], [networkId, round, '\uffff']))
  }
}
