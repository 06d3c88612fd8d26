import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { IdentityHistoryError } from '../../src/core/errors.ts'
import { decodeHistory, encodeHistory, type IdentityHistory } from '../../src/core/identity-history.ts'
import { checkProof, type CheckRules } from '../../src/core/points-proof/check.ts'
import { prepareProof, type ProofHistory } from '../../src/core/points-proof/prove.ts'
import { pickSamples } from '../../src/core/points-proof/sample.ts'
import { appendEntry, verifyChain, type LogEntry } from '../../src/core/receipts/log.ts'
import { PulseLedger } from '../../src/core/pulse/ledger.ts'
import { pulseSigner, verifyPulseSignature } from '../../src/net/pulse-keys.ts'
import { ReceiptBook } from '../../src/node/receipt-book.ts'
import { IdentityStore } from '../../src/storage/identity-store.ts'
import { PulseStore } from '../../src/storage/pulse-store.ts'
import { ReceiptStore } from '../../src/storage/receipt-store.ts'
import { closeAll, freshDbName, openDb } from './helpers.ts'
import { FIRST_ROUND, NET, ROUND_MS, makeWorld, type World } from './points-world.ts'
import type { IdentityFile } from '../../src/core/identity-envelope.ts'
import type { HyperspaceDb } from '../../src/storage/database.ts'

/**
 * History belongs to an identity, and moves with it (issue 12): the exported identity file carries
 * the signed history a points proof is built from, and an import takes it only once every piece
 * checks against the imported key. Hostile files first: edited histories and another key's history
 * are refused whole, and nothing a device holds is lost.
 */

const PASSPHRASE = 'correct horse battery staple'
const ROUNDS = 6
const RECEIPTS = 3
const NOW = (FIRST_ROUND + ROUNDS + 1) * ROUND_MS
const SLOW = 60_000

interface Device { db: HyperspaceDb, identities: IdentityStore }

async function device (label: string): Promise<Device> {
  const db = await openDb(freshDbName(label))
  return { db, identities: new IdentityStore(db) }
}

/** A device whose identity earned `world`'s history: rounds with their commits, voters' attestations, served receipts. */
async function earner (label: string): Promise<{ device: Device, world: World, file: IdentityFile }> {
  const d = await device(label)
  const subject = pulseSigner(await d.identities.loadOrCreate())
  const world = await makeWorld({ rounds: ROUNDS, receipts: RECEIPTS, subject })
  const pulse = new PulseStore(d.db)
  for (const { round, commit } of world.records) {
    await pulse.saveRound({ networkId: NET, peerId: subject.peerId, round, committed: true, revealed: true, verified: true, strikes: [], caps: ['inference', 'validation'], confirmedCaps: ['inference', 'validation'], ...(commit !== undefined ? { commit } : {}) })
  }
  for (const [i, { round, attestation }] of world.attestations.entries()) {
    await pulse.addAttestation({ networkId: NET, peerId: subject.peerId, round, validator: (world.validators[i % world.validators.length])?.peerId as string, ...(attestation !== undefined ? { attestation } : {}) })
  }
  const book = new ReceiptBook(new ReceiptStore(d.db), NET, subject.peerId)
  await book.load()
  let last: LogEntry | undefined
  for (const receipt of world.receipts) {
    last = appendEntry(last, receipt)
    await new ReceiptStore(d.db).append(NET, subject.peerId, last)
  }
  return { device: d, world, file: await d.identities.export(PASSPHRASE, NET) }
}

/** What a session of `peerId` on this device loads: its ledger, its receipt book, and the proof it would serve. */
async function sessionOf (db: HyperspaceDb, peerId: string): Promise<{ ledger: PulseLedger, book: ReceiptBook, proofHistory: ProofHistory }> {
  const store = new PulseStore(db)
  const ledger = new PulseLedger(NET, peerId, ROUND_MS, store)
  const book = new ReceiptBook(new ReceiptStore(db), NET, peerId)
  await ledger.load()
  await book.load()
  const proofHistory: ProofHistory = {
    self: peerId,
    rounds: (from, to) => ledger.between(from, to),
    attestations: async (from, to) => await store.attestations(NET, peerId, from, to),
    served: (from, to) => book.served(from, to)
  }
  return { ledger, book, proofHistory }
}

function withHistory (file: IdentityFile, change: (history: IdentityHistory) => void): string {
  const history = decodeHistory(Uint8Array.from(atob(file.history as string), c => c.charCodeAt(0)))
  change(history)
  let binary = ''
  for (const byte of encodeHistory(history)) binary += String.fromCharCode(byte)
  return JSON.stringify({ ...file, history: btoa(binary) })
}

function flipped (bytes: Uint8Array, at: number): Uint8Array {
  const copy = bytes.slice()
  copy[at] = (copy[at] as number) ^ 1
  return copy
}

async function refusal (work: Promise<unknown>): Promise<unknown> {
  return await work.then(() => 'accepted', (err: unknown) => err)
}

afterAll(() => { closeAll() })

describe('the identity file carries its signed history', () => {
  let alice: Awaited<ReturnType<typeof earner>>

  beforeAll(async () => { alice = await earner('alice') }, SLOW)

  it('points move with the key: rounds, attestations and served receipts restored, and a checker verifies them', async () => {
    expect(alice.file.version).toBe(2)
    const target = await device('target')
    await target.identities.loadOrCreate()
    const added = await target.identities.import(JSON.stringify(alice.file), PASSPHRASE, { replace: true })
    expect(added).toEqual({ peerId: alice.world.subject.peerId, rounds: ROUNDS, receipts: RECEIPTS })

    const here = await sessionOf(alice.device.db, alice.world.subject.peerId)
    const there = await sessionOf(target.db, alice.world.subject.peerId)
    expect(there.ledger.summary(NOW, there.book.work(NOW).work)).toEqual(here.ledger.summary(NOW, here.book.work(NOW).work))
    expect(there.ledger.summary(NOW).presence).toBeGreaterThan(0)
    expect(there.book.state()).toEqual({ entries: RECEIPTS, broken: null })

    // Another node checks the moved history as it would have checked it at home.
    const from = FIRST_ROUND
    const to = FIRST_ROUND + ROUNDS - 1
    const proof = await prepareProof(there.proofHistory, from, to)
    expect(proof.summary.rounds).toHaveLength(ROUNDS)
    expect(proof.summary.receipts).toHaveLength(RECEIPTS)
    const rules: CheckRules = { subject: alice.world.subject.peerId, networkId: NET, roundMs: ROUND_MS, verify: verifyPulseSignature, counts: v => alice.world.validators.some(k => k.peerId === v) }
    const pick = pickSamples(proof.summary)
    const result = await checkProof(rules, { t: 'ask', net: NET, from, to }, proof.summary, pick, proof.evidence(pick))
    expect(result).toMatchObject({ checked: true, rounds: ROUNDS, receipts: RECEIPTS })
  }, SLOW)

  it('an edited history is refused whole, and the device keeps its own identity and nothing of the file', async () => {
    const target = await device('edited')
    const own = pulseSigner(await target.identities.loadOrCreate())
    const edits: Array<[string, (h: IdentityHistory) => void]> = [
      ['a commit byte', h => { const r = h.rounds[2]; if (r !== undefined) r.commit = flipped(r.commit, r.commit.length - 80) }],
      ['an attestation byte', h => { const r = h.rounds[1]; if (r !== undefined) r.attestations[0] = flipped(r.attestations[0] as Uint8Array, 40) }],
      ['a voter removed below quorum', h => { const r = h.rounds[0]; if (r !== undefined) r.attestations = r.attestations.slice(0, 1) }],
      ['a receipt byte', h => { h.receipts[0] = flipped(h.receipts[0] as Uint8Array, 30) }],
      ['a round shown twice', h => { h.rounds.push(h.rounds[0] as IdentityHistory['rounds'][number]) }],
      ['another network', h => { h.net = 'dev-other' }]
    ]
    for (const [what, edit] of edits) {
      const error = await refusal(target.identities.import(withHistory(alice.file, edit), PASSPHRASE, { replace: true }))
      expect(error, what).toBeInstanceOf(IdentityHistoryError)
      expect((error as IdentityHistoryError).code, what).toBe('ERR_IDENTITY_HISTORY')
      // Inspect says the same before anything is asked.
      expect(await refusal(target.identities.inspect(withHistory(alice.file, edit), PASSPHRASE)), what).toBeInstanceOf(IdentityHistoryError)
    }
    expect(await target.identities.current()).toBe(own.peerId)
    expect(await new PulseStore(target.db).all(NET, alice.world.subject.peerId)).toEqual([])
    expect(await target.db.count('attestations')).toBe(0)
    expect(await target.db.count('receipts')).toBe(0)
  }, SLOW)

  it('another key\'s history in a file is refused: points cannot be grafted onto a key that did not earn them', async () => {
    const mallory = await earner('mallory')
    // Mallory's file carrying Alice's history, and Alice's rounds slipped into Mallory's history.
    const grafted = JSON.stringify({ ...mallory.file, history: alice.file.history })
    const mixed = withHistory(mallory.file, h => { h.rounds.push(...decodeHistory(Uint8Array.from(atob(alice.file.history as string), c => c.charCodeAt(0))).rounds.slice(0, 1)) })
    const target = await device('graft')
    const own = pulseSigner(await target.identities.loadOrCreate())
    for (const text of [grafted, mixed]) {
      const error = await refusal(target.identities.import(text, PASSPHRASE, { replace: true }))
      expect(error).toBeInstanceOf(IdentityHistoryError)
    }
    expect(await target.identities.current()).toBe(own.peerId)
    expect(await target.db.count('rounds')).toBe(0)
  }, SLOW)

  it('importing onto a device that holds some of the history loses nothing and logs nothing twice', async () => {
    const target = await device('merge')
    await target.identities.loadOrCreate()
    const peerId = alice.world.subject.peerId
    // The device already holds one of the rounds, struck there, and one of the receipts.
    const kept = { networkId: NET, peerId, round: FIRST_ROUND + 1, committed: true, revealed: false, verified: false, strikes: [{ validator: alice.world.validators[0]?.peerId as string, reason: 'no-reveal' as const }], caps: [] }
    await new PulseStore(target.db).saveRound(kept)
    await new ReceiptStore(target.db).append(NET, peerId, appendEntry(undefined, alice.world.receipts[1] as Uint8Array))

    expect(await target.identities.import(JSON.stringify(alice.file), PASSPHRASE, { replace: true })).toEqual({ peerId, rounds: ROUNDS - 1, receipts: RECEIPTS - 1 })
    expect(await new PulseStore(target.db).round(NET, peerId, FIRST_ROUND + 1)).toEqual(kept)
    const log = await new ReceiptStore(target.db).page(NET, peerId, 0, 100)
    expect(log).toHaveLength(RECEIPTS)
    expect(() => { verifyChain(log) }).not.toThrow()
    // The same file again adds nothing.
    expect(await target.identities.import(JSON.stringify(alice.file), PASSPHRASE)).toEqual({ peerId, rounds: 0, receipts: 0 })
  }, SLOW)
})
