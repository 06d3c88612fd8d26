import { privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { IdentityReplaceRefusedError, InvalidIdentityFileError } from '../core/errors.ts'
import { historyBytes, openIdentity, parseIdentityFile, sealIdentity, type IdentityFile } from '../core/identity-envelope.ts'
import { verifyHistory, type VerifiedHistory } from '../core/identity-history.ts'
import { exportHistory, restoreHistory } from './history-transfer.ts'
import type { HyperspaceDb } from './database.ts'
import type { PulseVerifier } from '../core/crypto/signing.ts'
import type { PrivateKey } from '@libp2p/interface'

/**
 * Export and import of the identity file (IdentityStore's), in a module of its own: a page imports it
 * when the user exports or imports, not at load.
 */

/** An identity file opened and checked: its key, and its history checked against that key. */
export interface InspectedIdentity {
  peerId: string
  privateKey: PrivateKey
  history?: VerifiedHistory
}

export async function exportIdentity (db: HyperspaceDb, passphrase: string, networkId?: string): Promise<IdentityFile> {
  const stored = await db.get('identity', 'self')
  if (stored === undefined) throw new InvalidIdentityFileError('this node has no identity yet')
  const history = networkId === undefined ? undefined : await exportHistory(db, networkId, stored.peerId)
  return await sealIdentity(new Uint8Array(stored.privateKey), stored.peerId, passphrase, history)
}

export async function inspectIdentity (fileText: string, passphrase: string, verify: PulseVerifier): Promise<InspectedIdentity> {
  const file = parseIdentityFile(fileText)
  const bytes = await openIdentity(file, passphrase)
  let privateKey: PrivateKey
  try {
    privateKey = privateKeyFromProtobuf(bytes)
  } catch {
    throw new InvalidIdentityFileError('the sealed data is not a libp2p private key')
  }
  if (privateKey.type !== 'Ed25519') throw new InvalidIdentityFileError(`expected an Ed25519 key, got ${privateKey.type}`)
  const peerId = peerIdFromPrivateKey(privateKey).toString()
  if (peerId !== file.peerId) throw new InvalidIdentityFileError('the key does not match the file\'s peer id')
  const history = historyBytes(file)
  if (history === undefined) return { peerId, privateKey }
  return { peerId, privateKey, history: await verifyHistory(history, peerId, verify) }
}

export async function importIdentity (db: HyperspaceDb, fileText: string, passphrase: string, verify: PulseVerifier, replace: boolean): Promise<{ peerId: string, rounds: number, receipts: number }> {
  const { peerId, privateKey, history } = await inspectIdentity(fileText, passphrase, verify)
  const current = (await db.get('identity', 'self'))?.peerId
  if (current !== undefined && current !== peerId && !replace) throw new IdentityReplaceRefusedError(current, peerId)
  const tx = db.transaction(['identity', 'rounds', 'attestations', 'receipts'], 'readwrite')
  await tx.objectStore('identity').put({ privateKey: privateKeyToProtobuf(privateKey), peerId, createdAt: Date.now() }, 'self')
  const added = history === undefined ? { rounds: 0, receipts: 0 } : await restoreHistory(tx, peerId, history)
  await tx.done
  return { peerId, ...added }
}
