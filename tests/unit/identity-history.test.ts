import { generateKeyPair } from '@libp2p/crypto/keys'
import { openDB, type IDBPDatabase } from 'idb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sha256Of, utf8 } from '../../src/core/crypto/bytes.ts'
import { appendEntry, verifyChain, type LogEntry } from '../../src/core/receipts/log.ts'
import { countersign, encodeSignedReceipt, signAsClient, type SignedReceipt } from '../../src/core/receipts/receipt.ts'
import { PulseLedger } from '../../src/core/pulse/ledger.ts'
import { pulseSigner } from '../../src/net/pulse-keys.ts'
import { ReceiptBook } from '../../src/node/receipt-book.ts'
import { openHyperspaceDb, type HyperspaceDb } from '../../src/storage/database.ts'
import { IdentityStore } from '../../src/storage/identity-store.ts'
import { PulseStore } from '../../src/storage/pulse-store.ts'
import { ReceiptStore } from '../../src/storage/receipt-store.ts'
import { closeAll, freshDbName, openDb } from './helpers.ts'
import type { PulseSigner } from '../../src/core/crypto/signing.ts'

/**
 * Pulse history, attestations and the receipt log belong to the identity that made them: a node that
 * imports another identity starts that identity's own history (empty here), and keeps nothing of the
 * one it replaced, whose history comes back if it is imported again.
 */

const NET = 'dev-t6'
const T = 6_000
const ROUND = 300_000
const NOW = (ROUND + 1) * T
const PASSPHRASE = 'correct horse battery staple'

let counter = 0
async function served (server: PulseSigner, client: PulseSigner, units: number): Promise<SignedReceipt> {
  counter++
  const body = {
    job: sha256Of(utf8(`job ${counter}`)).slice(0, 16), nonce: sha256Of(utf8(`nonce ${counter}`)).slice(0, 16), kind: 'inference' as const,
    server: server.peerId, client: client.peerId, model: 'stories260K', units, cached: false, output: sha256Of(utf8('text')), round: ROUND, ts: NOW
  }
  return await countersign(await signAsClient(body, client), server)
}

/** What a node's session builds for one identity (src/node/session.ts and PulseService). */
async function historyOf (db: HyperspaceDb, peerId: string): Promise<{ ledger: PulseLedger, book: ReceiptBook }> {
  const ledger = new PulseLedger(NET, peerId, T, new PulseStore(db))
  const book = new ReceiptBook(new ReceiptStore(db), NET, peerId)
  await ledger.load()
  await book.load()
  return { ledger, book }
}

afterAll(() => { closeAll() })

describe('history after an identity import', () => {
  const SLOW = 30_000

  it('the imported identity starts with no rounds, receipts or points of the one it replaced, and the old one gets its own back', async () => {
    const db = await openDb(freshDbName('history'))
    const identities = new IdentityStore(db)
    const alice = pulseSigner(await identities.loadOrCreate())
    const aliceFile = JSON.stringify(await identities.export(PASSPHRASE))
    const peer = pulseSigner(await generateKeyPair('Ed25519'))

    // Alice earns: two verified rounds, one served job, one used.
    const before = await historyOf(db, alice.peerId)
    for (const round of [ROUND - 1, ROUND]) await before.ledger.update(round, r => { r.committed = true; r.revealed = true; r.verified = true })
    await new PulseStore(db).addAttestation({ networkId: NET, peerId: alice.peerId, round: ROUND, validator: peer.peerId, attestation: new Uint8Array([1]) })
    await before.book.append(await served(alice, peer, 1000))
    await before.book.append(await served(peer, alice, 500))
    const alicePoints = before.ledger.summary(NOW, before.book.work(NOW).work)
    expect(alicePoints.presence).toBeGreaterThan(0)
    expect(alicePoints.work).toBe(1)

    // Bob's identity file, made on another device, imported here.
    const bobDevice = new IdentityStore(await openDb(freshDbName('bob')))
    const bobKey = await bobDevice.loadOrCreate()
    const bobFile = JSON.stringify(await bobDevice.export(PASSPHRASE))
    const bob = pulseSigner(bobKey)
    expect((await identities.import(bobFile, PASSPHRASE, { replace: true })).peerId).toBe(bob.peerId)

    const after = await historyOf(db, bob.peerId)
    expect(after.ledger.history(10)).toEqual([])
    expect(after.ledger.summary(NOW, after.book.work(NOW).work)).toMatchObject({ presence: 0, work: 0, total: 0 })
    expect(after.book.state()).toEqual({ entries: 0, broken: null })
    expect(after.book.recent(10)).toEqual([])
    expect(await new PulseStore(db).attestations(NET, bob.peerId, ROUND)).toEqual([])

    // Bob's own history grows from nothing and leaves Alice's alone.
    await after.ledger.update(ROUND + 1, r => { r.committed = true })
    await after.book.append(await served(bob, peer, 200))
    expect(after.book.state().entries).toBe(1)

    // Alice's file imported back: her history is hers again, untouched.
    expect((await identities.import(aliceFile, PASSPHRASE, { replace: true })).peerId).toBe(alice.peerId)
    const back = await historyOf(db, alice.peerId)
    expect(back.ledger.history(10).map(r => r.round)).toEqual([ROUND, ROUND - 1])
    expect(back.ledger.summary(NOW, back.book.work(NOW).work)).toEqual(alicePoints)
    expect(back.book.state()).toEqual({ entries: 2, broken: null })
    expect(await new PulseStore(db).attestations(NET, alice.peerId, ROUND)).toHaveLength(1)
  }, SLOW)

  it('a receipt log refuses receipts its identity took no part in, and earns only as the server', async () => {
    const db = await openDb(freshDbName('book'))
    const [a, b, c] = await Promise.all([0, 1, 2].map(async () => pulseSigner(await generateKeyPair('Ed25519'))))
    const { book } = await historyOf(db, (a as PulseSigner).peerId)
    await expect(book.append(await served(b as PulseSigner, c as PulseSigner, 100))).rejects.toMatchObject({ code: 'ERR_RECEIPT_MISMATCH' })
    await book.append(await served(b as PulseSigner, a as PulseSigner, 100))
    expect(book.state().entries).toBe(1)
    expect(book.work(NOW).work).toBe(0)
  })
})

// ---- the upgrade from version 4, when history was kept per network only ----

/** A database as version 2 or 4 of src/storage/database.ts left it: version 4 added receipts, vectors and blocks. */
async function openOldVersion (name: string, version: 2 | 4): Promise<IDBPDatabase> {
  return await openDB(name, version, {
    upgrade (db) {
      db.createObjectStore('identity')
      db.createObjectStore('peers', { keyPath: 'peerId' })
      db.createObjectStore('settings')
      db.createObjectStore('rounds', { keyPath: ['networkId', 'round'] })
      db.createObjectStore('attestations', { keyPath: ['networkId', 'round', 'validator'] })
      if (version < 4) return
      db.createObjectStore('receipts', { keyPath: ['networkId', 'seq'] })
      db.createObjectStore('vectors', { keyPath: ['networkId', 'key'] })
      db.createObjectStore('blocks', { keyPath: 'cid' })
    }
  })
}

describe('the upgrade that keys history by identity', () => {
  let owner: PulseSigner
  let other: PulseSigner
  let log: LogEntry[]

  beforeAll(async () => {
    [owner, other] = await Promise.all([0, 1].map(async () => pulseSigner(await generateKeyPair('Ed25519')))) as [PulseSigner, PulseSigner]
    log = []
    for (const units of [100, 200]) log.push(appendEntry(log.at(-1), encodeSignedReceipt(await served(owner, other, units))))
  })

  it('keeps every round, attestation and receipt under the identity stored at the time of the upgrade', async () => {
    const name = freshDbName('upgrade')
    const v4 = await openOldVersion(name, 4)
    await v4.put('identity', { privateKey: new Uint8Array([1]), peerId: owner.peerId, createdAt: 1 }, 'self')
    await v4.put('rounds', { networkId: NET, round: ROUND, committed: true, revealed: true, verified: true, strikes: [], caps: ['validation'] })
    await v4.put('rounds', { networkId: 'dev-t7', round: 7, committed: true, revealed: false, verified: false, strikes: [], caps: [], skipped: 'why' })
    await v4.put('attestations', { networkId: NET, round: ROUND, validator: other.peerId, envelope: new Uint8Array([9, 9]) })
    for (const entry of log) await v4.put('receipts', { networkId: NET, ...entry })
    await v4.put('settings', 'full', 'profile')
    v4.close()

    const db = await openHyperspaceDb(name)
    try {
      const pulse = new PulseStore(db)
      expect(await pulse.all(NET, owner.peerId)).toEqual([
        { networkId: NET, peerId: owner.peerId, round: ROUND, committed: true, revealed: true, verified: true, strikes: [], caps: ['validation'] }
      ])
      expect(await pulse.all('dev-t7', owner.peerId)).toMatchObject([{ round: 7, skipped: 'why' }])
      expect(await pulse.attestations(NET, owner.peerId, ROUND)).toEqual([
        { networkId: NET, peerId: owner.peerId, round: ROUND, validator: other.peerId, envelope: new Uint8Array([9, 9]) }
      ])
      const entries = await new ReceiptStore(db).page(NET, owner.peerId, 0, 100)
      expect(entries).toEqual(log)
      expect(() => { verifyChain(entries) }).not.toThrow()
      // Another identity has nothing; the other stores are as they were.
      expect(await pulse.all(NET, other.peerId)).toEqual([])
      expect(await new ReceiptStore(db).page(NET, other.peerId, 0, 100)).toEqual([])
      expect(await db.get('settings', 'profile')).toBe('full')
      expect(await db.get('identity', 'self')).toMatchObject({ peerId: owner.peerId })

      // The owner's ledger and book read them back and go on from them.
      const { ledger, book } = await historyOf(db, owner.peerId)
      expect(ledger.get(ROUND).verified).toBe(true)
      expect(book.state()).toEqual({ entries: 2, broken: null })
      await book.append(await served(owner, other, 300))
      expect((await new ReceiptStore(db).page(NET, owner.peerId, 0, 100)).map(e => e.seq)).toEqual([0, 1, 2])
    } finally {
      db.close()
    }
  })

  it('moves the rounds of a version 2 database, which had no receipt log yet', async () => {
    const name = freshDbName('v2')
    const v2 = await openOldVersion(name, 2)
    await v2.put('identity', { privateKey: new Uint8Array([1]), peerId: owner.peerId, createdAt: 1 }, 'self')
    await v2.put('rounds', { networkId: NET, round: ROUND, committed: true, revealed: false, verified: false, strikes: [], caps: [] })
    v2.close()
    const db = await openHyperspaceDb(name)
    try {
      expect(await new PulseStore(db).all(NET, owner.peerId)).toMatchObject([{ round: ROUND, peerId: owner.peerId }])
      expect(await new ReceiptStore(db).page(NET, owner.peerId, 0, 100)).toEqual([])
    } finally {
      db.close()
    }
  })

  it('drops history that no stored identity can own', async () => {
    const name = freshDbName('orphan')
    const v4 = await openOldVersion(name, 4)
    await v4.put('rounds', { networkId: NET, round: ROUND, committed: true, revealed: true, verified: true, strikes: [], caps: [] })
    await v4.put('receipts', { networkId: NET, ...(log[0] as LogEntry) })
    v4.close()
    const db = await openHyperspaceDb(name)
    try {
      expect(await db.count('rounds')).toBe(0)
      expect(await db.count('receipts')).toBe(0)
      // A new identity starts clean.
      const key = await new IdentityStore(db).loadOrCreate()
      expect(await new PulseStore(db).all(NET, pulseSigner(key).peerId)).toEqual([])
    } finally {
      db.close()
    }
  })

  it('creates the identity-keyed stores on a new database', async () => {
    const db = await openHyperspaceDb(freshDbName('fresh'))
    try {
      expect([...db.objectStoreNames].sort()).toEqual(['attestations', 'blocks', 'identity', 'peers', 'receipts', 'rounds', 'settings', 'vectors'])
      await new PulseStore(db).saveRound({ networkId: NET, peerId: owner.peerId, round: 1, committed: false, revealed: false, verified: false, strikes: [], caps: [] })
      expect(await new PulseStore(db).all(NET, owner.peerId)).toHaveLength(1)
    } finally {
      db.close()
    }
  })
})
