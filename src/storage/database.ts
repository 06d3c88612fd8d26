import { openDB, type DBSchema, type IDBPDatabase } from 'idb'
import type { CachedPeer } from '../core/peer-cache.ts'

export interface StoredIdentity {
  /** The libp2p protobuf encoding of the Ed25519 private key. */
  privateKey: Uint8Array
  peerId: string
  createdAt: number
}

interface HyperspaceSchema extends DBSchema {
  identity: { key: 'self', value: StoredIdentity }
  peers: { key: string, value: CachedPeer }
  settings: { key: string, value: unknown }
}

export type HyperspaceDb = IDBPDatabase<HyperspaceSchema>

export const DEFAULT_DB_NAME = 'hyperspace'
const VERSION = 1

/** Opens (and on first use creates) the node's database. Each upgrade step only adds stores. */
export async function openHyperspaceDb (name = DEFAULT_DB_NAME): Promise<HyperspaceDb> {
  return await openDB<HyperspaceSchema>(name, VERSION, {
    upgrade (db, oldVersion) {
      if (oldVersion < 1) {
        db.createObjectStore('identity')
        db.createObjectStore('peers', { keyPath: 'peerId' })
        db.createObjectStore('settings')
      }
    }
  })
}
