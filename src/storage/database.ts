import { openDB, type DBSchema, type IDBPDatabase, type IDBPTransaction } from 'idb'
import type { CachedPeer } from '../core/peer-cache.ts'
import type { RoundRecord } from '../core/pulse/ledger.ts'

export interface StoredIdentity {
  /** The libp2p protobuf encoding of the Ed25519 private key. */
  privateKey: Uint8Array
  peerId: string
  createdAt: number
}

/**
 * A voter's word about this node in one round, kept so anyone can re-check the points. Records from
 * before pulse v4 hold a whole verdict under `envelope` instead; they prove nothing to a v4 checker
 * and are skipped when read.
 */
export interface StoredAttestation {
  networkId: string
  /** The identity the verdict names. */
  peerId: string
  round: number
  validator: string
  /** The validator's signed verdict header, this node's result and its Merkle path (core/pulse/attestation.ts). */
  attestation?: Uint8Array
}

/** One entry of a hash-chained receipt log (src/core/receipts/log.ts), per network and identity. */
export interface StoredLogEntry {
  networkId: string
  /** The identity whose log it is. */
  peerId: string
  seq: number
  prev: Uint8Array
  receipt: Uint8Array
  hash: Uint8Array
}

/**
 * A vector this node holds for the replicated memory (src/core/memory), per network: the owner's
 * signed put as received, so it can be sent on to another holder that checks the signature.
 * Records from before memory protocol version 2 have no owner (a `from` field instead) and are
 * dropped when the store loads.
 */
export interface StoredVector {
  networkId: string
  key: string
  /** The embedding model the vector came from: vectors of different models are never compared. */
  space: string
  /** As the owner sent it, not normalized: the signature covers these values. */
  vector: Float32Array
  meta: string
  /** The writer's peer id, which signed the put: per-owner budgets count by it. */
  owner: string
  /** The owner's version (src/core/wire/memory.ts). */
  version: number
  /** The owner's signature of the put (memoryPutSignedData). */
  sig: Uint8Array
  storedAt: number
}

/** A content-addressed block (src/core/blocks): raw bytes under their CIDv1 string. */
export interface StoredBlock {
  cid: string
  bytes: Uint8Array
  storedAt: number
}

export interface HyperspaceSchema extends DBSchema {
  identity: { key: 'self', value: StoredIdentity }
  peers: { key: string, value: CachedPeer }
  settings: { key: string, value: unknown }
  rounds: { key: [string, string, number], value: RoundRecord }
  attestations: { key: [string, string, number, string], value: StoredAttestation }
  receipts: { key: [string, string, number], value: StoredLogEntry }
  vectors: { key: [string, string], value: StoredVector }
  blocks: { key: string, value: StoredBlock }
}

export type HyperspaceDb = IDBPDatabase<HyperspaceSchema>

export const DEFAULT_DB_NAME = 'hyperspace'
const VERSION = 5

/**
 * The stores of a node's history, keyed by identity since version 5. Before it they were keyed by
 * network alone ([networkId, round], …), so an identity imported on a device took over the history
 * and points of the one it replaced.
 */
const HISTORY_KEYS = {
  rounds: ['networkId', 'peerId', 'round'],
  attestations: ['networkId', 'peerId', 'round', 'validator'],
  receipts: ['networkId', 'peerId', 'seq']
} as const
type HistoryStore = keyof typeof HISTORY_KEYS

/** What a version 4 store is renamed to while its records move to the identity-keyed store. */
const before5 = (store: HistoryStore): string => `${store}-before-5`

/**
 * Opens (and on first use creates) the node's database. The upgrade to version 5 re-keys the history
 * stores by identity; every other step only adds stores.
 */
export async function openHyperspaceDb (name = DEFAULT_DB_NAME): Promise<HyperspaceDb> {
  return await openDB<HyperspaceSchema>(name, VERSION, {
    upgrade (db, oldVersion, _newVersion, transaction) {
      if (oldVersion < 1) {
        db.createObjectStore('identity')
        db.createObjectStore('peers', { keyPath: 'peerId' })
        db.createObjectStore('settings')
      }
      if (oldVersion < 4) {
        db.createObjectStore('vectors', { keyPath: ['networkId', 'key'] })
        db.createObjectStore('blocks', { keyPath: 'cid' })
      }
      if (oldVersion < 5) {
        // Version 2 added rounds and attestations, version 3 receipts.
        const existing = (Object.keys(HISTORY_KEYS) as HistoryStore[]).filter(store => oldVersion >= (store === 'receipts' ? 3 : 2))
        const untyped = transaction as unknown as IDBPTransaction<unknown, string[], 'versionchange'>
        for (const store of existing) untyped.objectStore(store).name = before5(store)
        for (const store of Object.keys(HISTORY_KEYS) as HistoryStore[]) db.createObjectStore(store, { keyPath: [...HISTORY_KEYS[store]] })
        // Only requests of this transaction are awaited, so it stays open until the move is done;
        // if the move fails, the upgrade aborts and the database stays at its old version, intact.
        moveToOwner(untyped, existing).catch(err => {
          console.warn('hyperspace: could not key history by identity', err)
          transaction.abort()
        })
      }
    }
  })
}

/**
 * Moves version 4 history into the identity-keyed stores, under the identity stored now: the one that
 * made it (a device kept one identity at a time). History with no identity to own it is dropped.
 */
async function moveToOwner (transaction: IDBPTransaction<unknown, string[], 'versionchange'>, stores: HistoryStore[]): Promise<void> {
  const identity = await transaction.objectStore('identity').get('self') as StoredIdentity | undefined
  for (const store of stores) {
    const old = transaction.objectStore(before5(store))
    if (identity !== undefined) {
      const target = transaction.objectStore(store)
      const records = await old.getAll() as object[]
      await Promise.all(records.map(async record => await target.put({ ...record, peerId: identity.peerId })))
    }
    transaction.db.deleteObjectStore(before5(store))
  }
}
