import { readFile, writeFile } from 'node:fs/promises'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'

/** The relay's identity, kept in a file so its address (and every bootstrap list naming it) stays valid. */
export async function loadOrCreateKey (path?: string): Promise<PrivateKey> {
  if (path === undefined) return await generateKeyPair('Ed25519')
  try {
    return privateKeyFromProtobuf(await readFile(path))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read relay key ${path}: ${(err as Error).message}`, { cause: err })
  }
  const key = await generateKeyPair('Ed25519')
  await writeFile(path, privateKeyToProtobuf(key), { mode: 0o600, flag: 'wx' })
  return key
}
