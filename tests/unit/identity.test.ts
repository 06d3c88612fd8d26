import { privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  HyperspaceError,
  IdentityReplaceRefusedError,
  InvalidIdentityFileError,
  WrongPassphraseError
} from '../../src/core/errors.ts'
import {
  IDENTITY_FILE_MAX_BYTES,
  openIdentity,
  parseIdentityFile,
  sealIdentity,
  type IdentityFile
} from '../../src/core/identity-envelope.ts'
import { HISTORY_MAX_BYTES } from '../../src/core/identity-history.ts'
import { openHyperspaceDb } from '../../src/storage/database.ts'
import { IdentityStore } from '../../src/storage/identity-store.ts'
import { closeAll, freshDbName, openDb } from './helpers.ts'

const PASSPHRASE = 'correct horse battery staple'
/** PBKDF2 with 600k iterations takes ~0.3-1 s per seal or open. */
const SLOW = 30_000

interface Fixture {
  dbName: string
  peerId: string
  protobuf: Uint8Array
  file: IdentityFile
  text: string
}

async function makeIdentity (): Promise<Fixture> {
  const dbName = freshDbName('identity')
  const store = new IdentityStore(await openDb(dbName))
  const key = await store.loadOrCreate()
  const file = await store.export(PASSPHRASE)
  return { dbName, peerId: peerIdFromPrivateKey(key).toString(), protobuf: privateKeyToProtobuf(key), file, text: JSON.stringify(file) }
}

function toBase64 (bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64')
}

function fromBase64 (text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'base64'))
}

function withChanges (file: IdentityFile, change: (f: Record<string, unknown>) => void): string {
  const copy = structuredClone(file) as unknown as Record<string, unknown>
  change(copy)
  return JSON.stringify(copy)
}

/** Awaits a promise that must reject, and returns what it rejected with. */
async function rejection (promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (err) {
    return err
  }
  throw new Error('expected the promise to reject, but it resolved')
}

function expectInvalidFile (fn: () => unknown): void {
  let error: unknown
  try {
    fn()
  } catch (err) {
    error = err
  }
  expect(error).toBeInstanceOf(InvalidIdentityFileError)
  expect((error as InvalidIdentityFileError).code).toBe('ERR_INVALID_IDENTITY_FILE')
}

let alice: Fixture
let bob: Fixture

beforeAll(async () => {
  [alice, bob] = await Promise.all([makeIdentity(), makeIdentity()])
}, SLOW)

afterAll(() => { closeAll() })

describe('IdentityStore.loadOrCreate', () => {
  it('returns the same key from two stores on the same database name', async () => {
    const first = await new IdentityStore(await openDb(alice.dbName)).loadOrCreate()
    const second = await new IdentityStore(await openHyperspaceDb(alice.dbName)).loadOrCreate()
    expect(peerIdFromPrivateKey(first).toString()).toBe(alice.peerId)
    expect(peerIdFromPrivateKey(second).toString()).toBe(alice.peerId)
    expect(privateKeyToProtobuf(second)).toEqual(alice.protobuf)
    expect(second.type).toBe('Ed25519')
  })

  it('creates a different key in another database', async () => {
    const other = await new IdentityStore(await openDb()).loadOrCreate()
    expect(peerIdFromPrivateKey(other).toString()).not.toBe(alice.peerId)
    expect(alice.peerId).not.toBe(bob.peerId)
  })

  it('stores the peer id next to the key, and current() reports it', async () => {
    const db = await openDb()
    const store = new IdentityStore(db)
    expect(await store.current()).toBeUndefined()
    const key = await store.loadOrCreate()
    const stored = await db.get('identity', 'self')
    expect(stored?.peerId).toBe(peerIdFromPrivateKey(key).toString())
    expect(new Uint8Array(stored?.privateKey ?? [])).toEqual(privateKeyToProtobuf(key))
    expect(await store.current()).toBe(peerIdFromPrivateKey(key).toString())
  })

  it('concurrent first starts on one database end with a single identity', async () => {
    const name = freshDbName('race')
    const [first, second] = [new IdentityStore(await openDb(name)), new IdentityStore(await openDb(name))]
    // Both read "no identity" before either writes one; the second writer must adopt the first key.
    const [a, b] = await Promise.all([first.loadOrCreate(), second.loadOrCreate()])
    const stored = await new IdentityStore(await openDb(name)).current()
    expect(stored).toBe(peerIdFromPrivateKey(a).toString())
    expect(peerIdFromPrivateKey(b).toString()).toBe(stored)
  })
})

describe('IdentityStore export and import', () => {
  it('export produces a well-formed file for the stored identity', () => {
    expect(alice.file.format).toBe('hyperspace-identity')
    expect(alice.file.version).toBe(1)
    expect(alice.file.peerId).toBe(alice.peerId)
    expect(alice.file.kdf).toMatchObject({ name: 'PBKDF2', hash: 'SHA-256', iterations: 600_000 })
    expect(fromBase64(alice.file.kdf.salt)).toHaveLength(16)
    expect(alice.file.cipher.name).toBe('AES-GCM')
    expect(fromBase64(alice.file.cipher.iv)).toHaveLength(12)
    // Sealed protobuf plus the 16-byte GCM tag.
    expect(fromBase64(alice.file.data)).toHaveLength(alice.protobuf.length + 16)
    expect(parseIdentityFile(alice.text)).toEqual(alice.file)
  })

  it('round-trips into a fresh database with the same peer id and key bytes', async () => {
    const store = new IdentityStore(await openDb())
    expect((await store.import(alice.text, PASSPHRASE)).peerId).toBe(alice.peerId)
    expect(await store.current()).toBe(alice.peerId)
    const key = await store.loadOrCreate()
    expect(peerIdFromPrivateKey(key).toString()).toBe(alice.peerId)
    expect(privateKeyToProtobuf(key)).toEqual(alice.protobuf)
    // Importing the identity a node already has needs no replace flag.
    expect((await store.import(alice.text, PASSPHRASE)).peerId).toBe(alice.peerId)
  }, SLOW)

  it('inspect decrypts without storing', async () => {
    const db = await openDb()
    const store = new IdentityStore(db)
    const { peerId, privateKey } = await store.inspect(bob.text, PASSPHRASE)
    expect(peerId).toBe(bob.peerId)
    expect(privateKeyToProtobuf(privateKey)).toEqual(bob.protobuf)
    expect(await store.current()).toBeUndefined()
    expect(await db.count('identity')).toBe(0)
  }, SLOW)

  it('rejects a wrong passphrase with WrongPassphraseError', async () => {
    const store = new IdentityStore(await openDb())
    const error = await rejection(store.import(alice.text, 'not the passphrase'))
    expect(error).toBeInstanceOf(WrongPassphraseError)
    expect(error).toBeInstanceOf(HyperspaceError)
    expect((error as WrongPassphraseError).code).toBe('ERR_WRONG_PASSPHRASE')
    expect((error as Error).name).toBe('WrongPassphraseError')
    expect(await store.current()).toBeUndefined()
  }, SLOW)

  it('refuses to replace a different identity unless replace is true', async () => {
    const db = await openDb(freshDbName('replace'))
    const store = new IdentityStore(db)
    const own = await store.loadOrCreate()
    const ownId = peerIdFromPrivateKey(own).toString()

    const error = await rejection(store.import(bob.text, PASSPHRASE))
    expect(error).toBeInstanceOf(IdentityReplaceRefusedError)
    expect((error as IdentityReplaceRefusedError).code).toBe('ERR_IDENTITY_EXISTS')
    expect((error as Error).name).toBe('IdentityReplaceRefusedError')
    expect((error as Error).message).toContain(ownId)
    expect((error as Error).message).toContain(bob.peerId)
    // Unchanged after the refusal.
    expect(await store.current()).toBe(ownId)
    expect(privateKeyToProtobuf(await store.loadOrCreate())).toEqual(privateKeyToProtobuf(own))

    expect((await store.import(bob.text, PASSPHRASE, { replace: true })).peerId).toBe(bob.peerId)
    expect(await store.current()).toBe(bob.peerId)
    const replaced = await new IdentityStore(await openHyperspaceDb(db.name)).loadOrCreate()
    expect(privateKeyToProtobuf(replaced)).toEqual(bob.protobuf)
  }, SLOW)

  it('export needs a passphrase of at least 8 characters', async () => {
    const store = new IdentityStore(await openDb(alice.dbName))
    await expect(store.export('1234567')).rejects.toThrow(RangeError)
    await expect(store.export('')).rejects.toThrow(RangeError)
    await expect(sealIdentity(new Uint8Array(alice.protobuf), alice.peerId, 'short')).rejects.toThrow(RangeError)
  })

  it('exports with a passphrase of exactly 8 characters', async () => {
    const store = new IdentityStore(await openDb(alice.dbName))
    const file = await store.export('12345678')
    expect(file.peerId).toBe(alice.peerId)
    // A fresh salt and iv every time.
    expect(file.kdf.salt).not.toBe(alice.file.kdf.salt)
    expect(file.cipher.iv).not.toBe(alice.file.cipher.iv)
  }, SLOW)

  it('export without an identity is an InvalidIdentityFileError', async () => {
    const store = new IdentityStore(await openDb())
    const error = await rejection(store.export(PASSPHRASE))
    expect(error).toBeInstanceOf(InvalidIdentityFileError)
  })
})

describe('tampered identity files', () => {
  it('a changed peerId field fails authentication (peer id is associated data)', async () => {
    const text = withChanges(alice.file, f => { f.peerId = bob.peerId })
    const store = new IdentityStore(await openDb())
    const error = await rejection(store.import(text, PASSPHRASE))
    expect(error).toBeInstanceOf(WrongPassphraseError)
    expect((error as WrongPassphraseError).code).toBe('ERR_WRONG_PASSPHRASE')
    expect(await store.current()).toBeUndefined()
  }, SLOW)

  it('a flipped ciphertext byte fails authentication', async () => {
    const data = fromBase64(alice.file.data)
    data[3] = (data[3] ?? 0) ^ 0x01
    const text = withChanges(alice.file, f => { f.data = toBase64(data) })
    const error = await rejection(new IdentityStore(await openDb()).import(text, PASSPHRASE))
    expect(error).toBeInstanceOf(WrongPassphraseError)
  }, SLOW)

  it('sealed bytes that are not a libp2p key are an InvalidIdentityFileError', async () => {
    const file = await sealIdentity(new Uint8Array([1, 2, 3, 4, 5]), alice.peerId, PASSPHRASE)
    const error = await rejection(new IdentityStore(await openDb()).inspect(JSON.stringify(file), PASSPHRASE))
    expect(error).toBeInstanceOf(InvalidIdentityFileError)
  }, SLOW)

  it('a key sealed under another peer id label is an InvalidIdentityFileError', async () => {
    const file = await sealIdentity(new Uint8Array(bob.protobuf), alice.peerId, PASSPHRASE)
    const error = await rejection(new IdentityStore(await openDb()).import(JSON.stringify(file), PASSPHRASE))
    expect(error).toBeInstanceOf(InvalidIdentityFileError)
    expect((error as Error).message).toContain('does not match')
  }, SLOW)

  it('rejects text that is not JSON', () => {
    expectInvalidFile(() => parseIdentityFile('{"format": "hyperspace-identity",'))
    expectInvalidFile(() => parseIdentityFile(''))
    expectInvalidFile(() => parseIdentityFile('null'))
    expectInvalidFile(() => parseIdentityFile('[]'))
  })

  it('rejects a wrong format or version', () => {
    expectInvalidFile(() => parseIdentityFile(withChanges(alice.file, f => { f.format = 'other-identity' })))
    expectInvalidFile(() => parseIdentityFile(withChanges(alice.file, f => { delete f.format })))
    expectInvalidFile(() => parseIdentityFile(withChanges(alice.file, f => { f.version = 2 })))
    expectInvalidFile(() => parseIdentityFile(withChanges(alice.file, f => { f.version = '1' })))
  })

  it('rejects iteration counts out of bounds and accepts the bounds themselves', () => {
    for (const iterations of [10, 99_999, 5_000_001, 10_000_000, 100_000.5, '600000', null]) {
      expectInvalidFile(() => parseIdentityFile(withChanges(alice.file, f => { (f.kdf as Record<string, unknown>).iterations = iterations })))
    }
    for (const iterations of [100_000, 5_000_000]) {
      expect(parseIdentityFile(withChanges(alice.file, f => { (f.kdf as Record<string, unknown>).iterations = iterations })).kdf.iterations).toBe(iterations)
    }
  })

  it('rejects an unsupported kdf, cipher, peer id or missing data', () => {
    expectInvalidFile(() => parseIdentityFile(withChanges(alice.file, f => { (f.kdf as Record<string, unknown>).hash = 'SHA-1' })))
    expectInvalidFile(() => parseIdentityFile(withChanges(alice.file, f => { (f.kdf as Record<string, unknown>).name = 'scrypt' })))
    expectInvalidFile(() => parseIdentityFile(withChanges(alice.file, f => { delete (f.kdf as Record<string, unknown>).salt })))
    expectInvalidFile(() => parseIdentityFile(withChanges(alice.file, f => { f.kdf = null })))
    expectInvalidFile(() => parseIdentityFile(withChanges(alice.file, f => { (f.cipher as Record<string, unknown>).name = 'AES-CBC' })))
    expectInvalidFile(() => parseIdentityFile(withChanges(alice.file, f => { (f.cipher as Record<string, unknown>).iv = 7 })))
    expectInvalidFile(() => parseIdentityFile(withChanges(alice.file, f => { f.peerId = 'not-a-peer-id' })))
    expectInvalidFile(() => parseIdentityFile(withChanges(alice.file, f => { delete f.data })))
  })

  it('rejects text over the bound (16 KiB for the key, and the carried history in base64), and accepts it exactly', () => {
    const padTo = (length: number): string => {
      const base = withChanges(alice.file, f => { f.comment = '' })
      return base.replace('"comment":""', `"comment":"${'x'.repeat(length - base.length)}"`)
    }
    expect(IDENTITY_FILE_MAX_BYTES).toBe(16 * 1024 + Math.ceil(HISTORY_MAX_BYTES / 3) * 4)
    const exact = padTo(IDENTITY_FILE_MAX_BYTES)
    expect(exact).toHaveLength(IDENTITY_FILE_MAX_BYTES)
    expect(parseIdentityFile(exact).peerId).toBe(alice.peerId)
    expectInvalidFile(() => parseIdentityFile(padTo(IDENTITY_FILE_MAX_BYTES + 1)))
    expectInvalidFile(() => parseIdentityFile(' '.repeat(100_000)))
  })

  it('import rejects invalid files before any key derivation', async () => {
    const store = new IdentityStore(await openDb())
    for (const text of [
      'not json',
      withChanges(alice.file, f => { f.version = 2 }),
      withChanges(alice.file, f => { f.version = 3; f.history = '' }),
      withChanges(alice.file, f => { f.history = '' }),
      withChanges(alice.file, f => { (f.kdf as Record<string, unknown>).iterations = 10 }),
      withChanges(alice.file, f => { (f.kdf as Record<string, unknown>).iterations = 10_000_000 }),
      'x'.repeat(IDENTITY_FILE_MAX_BYTES + 1)
    ]) {
      const error = await rejection(store.import(text, PASSPHRASE))
      expect(error).toBeInstanceOf(InvalidIdentityFileError)
      expect((error as InvalidIdentityFileError).code).toBe('ERR_INVALID_IDENTITY_FILE')
    }
    expect(await store.current()).toBeUndefined()
  })

  it('rejects an iv that is not 12 bytes, or an oversized salt or data field', async () => {
    const cases: IdentityFile[] = [
      parseIdentityFile(withChanges(alice.file, f => { (f.cipher as Record<string, unknown>).iv = toBase64(new Uint8Array(8)) })),
      parseIdentityFile(withChanges(alice.file, f => { (f.kdf as Record<string, unknown>).salt = toBase64(new Uint8Array(100)) })),
      parseIdentityFile(withChanges(alice.file, f => { f.data = toBase64(new Uint8Array(2000)) })),
      parseIdentityFile(withChanges(alice.file, f => { f.data = 'not base64!' }))
    ]
    for (const file of cases) {
      expect(await rejection(openIdentity(file, PASSPHRASE))).toBeInstanceOf(InvalidIdentityFileError)
    }
  })

  it('data that matches the base64 pattern but does not decode is an InvalidIdentityFileError', async () => {
    // "A" passes /^[A-Za-z0-9+/]*={0,2}$/ but atob() throws a DOMException for it.
    for (const data of ['A', 'AAAAA']) {
      const file = parseIdentityFile(withChanges(alice.file, f => { f.data = data }))
      const error = await rejection(openIdentity(file, PASSPHRASE))
      expect(error).toBeInstanceOf(InvalidIdentityFileError)
    }
  })
})
