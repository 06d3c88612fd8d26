import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { IdentityReplaceRefusedError, InvalidIdentityFileError } from '../core/errors.ts'
import { openIdentity, parseIdentityFile, sealIdentity, type IdentityFile } from '../core/identity-envelope.ts'
import type { HyperspaceDb } from './database.ts'
import type { PrivateKey } from '@libp2p/interface'

/** The node's one Ed25519 identity, created on first start and kept in IndexedDB. */
export class IdentityStore {
  constructor (private readonly db: HyperspaceDb) {}

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

  async export (passphrase: string): Promise<IdentityFile> {
    const stored = await this.db.get('identity', 'self')
    if (stored === undefined) throw new InvalidIdentityFileError('this node has no identity yet')
    return await sealIdentity(new Uint8Array(stored.privateKey), stored.peerId, passphrase)
  }

  /** Decrypts and checks an identity file without storing it, so the UI can ask before replacing. */
  async inspect (fileText: string, passphrase: string): Promise<{ peerId: string, privateKey: PrivateKey }> {
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
    return { peerId, privateKey }
  }

  /** Stores the imported key. Replacing a different existing identity needs `replace: true`. */
  async import (fileText: string, passphrase: string, options: { replace?: boolean } = {}): Promise<string> {
    const { peerId, privateKey } = await this.inspect(fileText, passphrase)
    const current = await this.current()
    if (current !== undefined && current !== peerId && options.replace !== true) {
      throw new IdentityReplaceRefusedError(current, peerId)
    }
    await this.db.put('identity', { privateKey: privateKeyToProtobuf(privateKey), peerId, createdAt: Date.now() }, 'self')
    return peerId
  }
}
