import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { IdentityReplaceRefusedError, InvalidIdentityFileError } from '../core/errors.ts'
import { historyBytes, openIdentity, parseIdentityFile, sealIdentity, type IdentityFile } from '../core/identity-envelope.ts'
import { verifyHistory, type VerifiedHistory } from '../core/identity-history.ts'
import { verifyPulseSignature } from '../net/pulse-keys.ts'
import { exportHistory, restoreHistory } from './history-transfer.ts'
import type { HyperspaceDb } from './database.ts'
import type { PulseVerifier } from '../core/pulse/messages.ts'
import type { PrivateKey } from '@libp2p/interface'

/** An identity file opened and checked: its key, and its history checked against that key. */
export interface InspectedIdentity {
  peerId: string
  privateKey: PrivateKey
  history?: VerifiedHistory
}

/** The node's one Ed25519 identity, created on first start and kept in IndexedDB. */
export class IdentityStore {
  constructor (private readonly db: HyperspaceDb, private readonly verify: PulseVerifier = verifyPulseSignature) {}

  async loadOrCreate (): Promise<PrivateKey> {
    const stored = await this.db.get('identity', 'self')
    if (stored !== undefined) return privateKeyFromProtobuf(stored.privateKey)
    const key = await generateKeyPair('Ed25519')
    const tx = this.db.transaction('identity', 'readwrite')
    // A second tab may have created one in the meantime: the first key written wins.
    const raced = await tx.store.get('self')
    if (raced !== undefined) {
      await tx.done
      return privateKeyFromProtobuf(raced.privateKey)
    }
    await tx.store.put({ privateKey: privateKeyToProtobuf(key), peerId: peerIdFromPrivateKey(key).toString(), createdAt: Date.now() }, 'self')
    await tx.done
    return key
  }

  async current (): Promise<string | undefined> {
    return (await this.db.get('identity', 'self'))?.peerId
  }

  /** The sealed key, with the identity's signed history on `networkId` when one is named. */
  async export (passphrase: string, networkId?: string): Promise<IdentityFile> {
    const stored = await this.db.get('identity', 'self')
    if (stored === undefined) throw new InvalidIdentityFileError('this node has no identity yet')
    const history = networkId === undefined ? undefined : await exportHistory(this.db, networkId, stored.peerId)
    return await sealIdentity(new Uint8Array(stored.privateKey), stored.peerId, passphrase, history)
  }

  /**
   * Decrypts and checks an identity file without storing it, so the UI can ask before replacing: a
   * history that does not check against the key is an IdentityHistoryError.
   */
  async inspect (fileText: string, passphrase: string): Promise<InspectedIdentity> {
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
    return { peerId, privateKey, history: await verifyHistory(history, peerId, this.verify) }
  }

  /**
   * Stores the imported key and adds its checked history to what the device holds (history-transfer.ts),
   * both in one transaction. Replacing a different existing identity needs `replace: true`.
   * Returns the peer id and how many rounds and receipts the history added.
   */
  async import (fileText: string, passphrase: string, options: { replace?: boolean } = {}): Promise<{ peerId: string, rounds: number, receipts: number }> {
    const { peerId, privateKey, history } = await this.inspect(fileText, passphrase)
    const current = await this.current()
    if (current !== undefined && current !== peerId && options.replace !== true) {
      throw new IdentityReplaceRefusedError(current, peerId)
    }
    const tx = this.db.transaction(['identity', 'rounds', 'attestations', 'receipts'], 'readwrite')
    await tx.objectStore('identity').put({ privateKey: privateKeyToProtobuf(privateKey), peerId, createdAt: Date.now() }, 'self')
    const added = history === undefined ? { rounds: 0, receipts: 0 } : await restoreHistory(tx, peerId, history)
    await tx.done
    return { peerId, ...added }
  }
}
