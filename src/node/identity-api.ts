import { InvalidIdentityFileError } from '../core/errors.ts'
import type { IdentityApi } from './api.ts'
import type { IdentityFile } from '../core/identity-envelope.ts'
import type { IdentityStore } from '../storage/identity-store.ts'
import type { PrivateKey } from '@libp2p/interface'

async function fileText (file: string | Blob | IdentityFile): Promise<string> {
  if (typeof file === 'string') return file
  if (file instanceof Blob) {
    // The identity file's code loads when a file is opened, not with the page.
    const { IDENTITY_FILE_MAX_BYTES } = await import('../core/identity-envelope.ts')
    if (file.size > IDENTITY_FILE_MAX_BYTES) throw new InvalidIdentityFileError(`larger than ${IDENTITY_FILE_MAX_BYTES} bytes`)
    return await file.text()
  }
  return JSON.stringify(file)
}

/**
 * Export and import of the node identity, with its signed history on the node's network; an import
 * restarts the node with the imported key, or with the same key when its history added something.
 */
export function identityApi (store: IdentityStore, networkId: string, restart: (key: PrivateKey) => Promise<void>): IdentityApi {
  return {
    export: async passphrase => await store.export(passphrase, networkId),
    async inspect (file, passphrase) {
      const { peerId } = await store.inspect(await fileText(file), passphrase)
      return { peerId, current: await store.current() ?? '' }
    },
    async import (file, passphrase, options = {}) {
      const text = await fileText(file)
      const before = await store.current()
      const { peerId, rounds, receipts } = await store.import(text, passphrase, options)
      // The session reads its history when it starts: added history shows after a restart.
      if (peerId !== before || rounds + receipts > 0) await restart(await store.loadOrCreate())
      return peerId
    }
  }
}
