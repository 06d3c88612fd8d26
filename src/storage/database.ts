import { openDB, type DBSchema, type IDBPDatabase } from 'idb'
import type { CachedPeer } from '../core/peer-cache.ts'
import type { CapabilityName } from '../core/capabilities.ts'
import type { StrikeReason } from '../core/pulse/messages.ts'

export interface StoredIdentity {
  /** The libp2p protobuf encoding of the Ed25519 private key. */
  privateKey: Uint8Array
  peerId: string
  createdAt: number
}

/** This node's own pulse round: what it did and what validators said about it. */
export interface RoundRecord {
  networkId: string
  round: number
  committed: boolean
  revealed: boolean
  /** At least one validator other than this node passed it. */
  verified: boolean
  strikes: Array<{ validator: string, reason: StrikeReason }>
  /** The capabilities this node committed as working: the round's points bonus. */
  caps: CapabilityName[]
  /** Why it did not commit, when it did not. */
  skipped?: string
}

/** A validator's signed verdict that names this node, kept so anyone can re-check the points. */
export interface StoredAttestation {
  networkId: string
  round: number
  validator: string
  /** The signed pulse envelope as received. */
  envelope: Uint8Array
}

/** One entry of this node's hash-chained receipt log (src/core/receipts/log.ts), per network. */
export interface StoredLogEntry {
  networkId: string
  seq: number
  prev: Uint8Array
  receipt: Uint8Array
  hash: Uint8Array
}

/** A vector this node holds for the replicated memory (src/core/memory), per network. */
export interface StoredVector {
  networkId: string
  key: string
  /** The embedding model the vector came from: vectors of different models are never compared. */
  space: string
  vector: Float32Array
  meta: string
  /** The peer that sent it (this node's own id for its own puts): per-peer quotas count by it. */
  from: string
  storedAt: number
  /** The writer's version (src/core/memory/codec.ts); absent on records stored before versions, which any put replaces. */
  version?: number
}

/** A content-addressed block (src/core/blocks): raw bytes under their CIDv1 string. */
export interface StoredBlock {
  cid: string
  bytes: Uint8Array
  storedAt: number
}

interface HyperspaceSchema extends DBSchema {
  identity: { key: 'self', value: StoredIdentity }
  peers: { key: string, value: CachedPeer }
  settings: { key: string, value: unknown }
  rounds: { key: [string, number], value: RoundRecord }
  attestations: { key: [string, number, string], value: StoredAttestation }
  receipts: { key: [string, number], value: StoredLogEntry }
  vectors: { key: [string, string], value: StoredVector }
  blocks: { key: string, value: StoredBlock }
}

export type HyperspaceDb = IDBPDatabase<HyperspaceSchema>

export const DEFAULT_DB_NAME = 'hyperspace'
const VERSION = 4

/** Opens (and on first use creates) the node's database. Each upgrade step only adds stores. */
export async function openHyperspaceDb (name = DEFAULT_DB_NAME): Promise<HyperspaceDb> {
  return await openDB<HyperspaceSchema>(name, VERSION, {
    upgrade (db, oldVersion) {
      if (oldVersion < 1) {
        db.createObjectStore('identity')
        db.createObjectStore('peers', { keyPath: 'peerId' })
        db.createObjectStore('settings')
      }
      if (oldVersion < 2) {
        db.createObjectStore('rounds', { keyPath: ['networkId', 'round'] })
        db.createObjectStore('attestations', { keyPath: ['networkId', 'round', 'validator'] })
      }
      if (oldVersion < 3) db.createObjectStore('receipts', { keyPath: ['networkId', 'seq'] })
      if (oldVersion < 4) {
        db.createObjectStore('vectors', { keyPath: ['networkId', 'key'] })
        db.createObjectStore('blocks', { keyPath: 'cid' })
      }
    }
  })
}
