import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { verifyPulseSignature } from '../net/pulse-keys.ts'
import type { HyperspaceDb } from './database.ts'
import type { InspectedIdentity } from './identity-transfer.ts'
import type { IdentityFile } from '../core/identity-envelope.ts'
import type { PulseVerifier } from '../core/crypto/signing.ts'
import type { PrivateKey } from '@libp2p/interface'

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
    return await (await import('./identity-transfer.ts')).exportIdentity(this.db, passphrase, networkId)
  }

  /**
   * Decrypts and checks an identity file without storing it, so the UI can ask before replacing: a
   * history that does not check against the key is an IdentityHistoryError.
   */
  async inspect (fileText: string, passphrase: string): Promise<InspectedIdentity> {
    return await (await import('./identity-transfer.ts')).inspectIdentity(fileText, passphrase, this.verify)
  }

  /**
   * Stores the imported key and adds its checked history to what the device holds (history-transfer.ts),
   * both in one transaction. Replacing a different existing identity needs `replace: true`.
   * Returns the peer id and how many rounds and receipts the history added.
   */
  async import (fileText: string, passphrase: string, options: { replace?: boolean } = {}): Promise<{ peerId: string, rounds: number, receipts: number }> {
    return await (await import('./identity-transfer.ts')).importIdentity(this.db, fileText, passphrase, this.verify, options.replace === true)
  }
}
