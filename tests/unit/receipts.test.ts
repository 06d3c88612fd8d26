import { generateKeyPair } from '@libp2p/crypto/keys'
import { encode } from 'cborg'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { decodeMessage } from '../../src/core/wire/cbor.ts'
import {
  BadSignatureError,
  HyperspaceError,
  MalformedMessageError,
  OversizeMessageError,
  ReceiptChainError,
  ReceiptMismatchError,
  ReceiptUnitsError,
  ReplayedReceiptError,
  StaleReceiptError,
  UnsignedReceiptError,
  UnknownWorkKindError,
  UnsupportedVersionError
} from '../../src/core/errors.ts'
import { DAY_MS } from '../../src/core/points.ts'
import { concat, sha256Of, utf8 } from '../../src/core/crypto/bytes.ts'
import { appendEntry, GENESIS_HASH, verifyChain, type LogEntry } from '../../src/core/receipts/log.ts'
import {
  RECEIPT_MAX_AGE_ROUNDS,
  RECEIPT_MAX_BYTES,
  RECEIPT_UNIT_CAPS,
  ReplayGuard,
  WORK_KINDS,
  checkFreshness,
  checkMatches,
  countersign,
  decodeLoggedReceipt,
  decodeReceiptBody,
  decodeSignedReceipt,
  encodeReceiptBody,
  encodeSignedReceipt,
  receiptId,
  signAsClient,
  type ReceiptBody,
  type ReceiptExpectation,
  type SignedReceipt
} from '../../src/core/receipts/receipt.ts'
import { CACHE_RATE, pointsOf, UNITS_PER_POINT, WorkTally } from '../../src/core/receipts/work-points.ts'
import { pulseSigner, verifyPulseSignature } from '../../src/net/pulse-keys.ts'
import { RECENT_RECEIPTS, ReceiptBook, type ReceiptLogStore } from '../../src/node/receipt-book.ts'
import { ReceiptStore } from '../../src/storage/receipt-store.ts'
import { closeAll, openDb } from './helpers.ts'
import type { PulseSigner } from '../../src/core/crypto/signing.ts'
import type { HyperspaceDb } from '../../src/storage/database.ts'
import { errorOf } from './fixtures.ts'
import { rejectionOf } from './waiting.ts'

interface Party { signer: PulseSigner, peerId: string }

async function party (): Promise<Party> {
  const signer = pulseSigner(await generateKeyPair('Ed25519'))
  return { signer, peerId: signer.peerId }
}

let client: Party
let server: Party
let mallory: Party

const ROUND = 1_234_567
const NOW = Date.UTC(2025, 5, 1, 12)

let counter = 0
function body (over: Partial<ReceiptBody> = {}): ReceiptBody {
  counter++
  return {
    job: sha256Of(utf8(`job ${counter}`)).slice(0, 16),
    nonce: sha256Of(utf8(`nonce ${counter}`)).slice(0, 16),
    kind: 'inference',
    server: server.peerId,
    client: client.peerId,
    model: 'stories260K',
    units: 120,
    cached: false,
    output: sha256Of(utf8('Once upon a time')),
    round: ROUND,
    ts: NOW,
    ...over
  }
}

async function fullReceipt (over: Partial<ReceiptBody> = {}): Promise<SignedReceipt> {
  return await countersign(await signAsClient(body(over), client.signer), server.signer)
}


/** A copy with one bit changed (a Node Buffer's slice() would share memory, so copy explicitly). */
function flipped (bytes: Uint8Array, at = 0): Uint8Array {
  const copy = new Uint8Array(bytes)
  copy[at] = (copy[at] as number) ^ 1
  return copy
}

function plain (b: Uint8Array): Uint8Array { return new Uint8Array(b) }

/** A node's work points from these receipts, added up as its receipt book does. */
function workPoints (receipts: readonly ReceiptBody[], self: string, now: number): { work: number, today: number } {
  const tally = new WorkTally(self)
  for (const receipt of receipts) tally.add(receipt)
  return tally.points(now)
}

function receiptAt (entries: LogEntry[], i: number): LogEntry {
  const entry = entries[i]
  if (entry === undefined) throw new Error(`no entry ${i}`)
  return entry
}

/** A receipt log held in an array, read a page at a time as from the store. */
function arrayLog (entries: LogEntry[]): ReceiptLogStore & { pages: number } {
  const log = {
    pages: 0,
    page: async (_net: string, _peer: string, from: number, limit: number) => {
      log.pages++
      return entries.slice(from, from + limit)
    },
    append: async () => {}
  }
  return log
}

/** A signer that claims one peer id and signs with another party's key. */
function impostor (claimed: string, actual: Party): PulseSigner {
  return { peerId: claimed, sign: async data => await actual.signer.sign(data) }
}

beforeAll(async () => {
  [client, server, mallory] = await Promise.all([party(), party(), party()])
})

describe('receipt signing and verification', () => {
  it('client signs, server countersigns, and anyone decodes and verifies it', async () => {
    const b = body()
    const signed = await signAsClient(b, client.signer)
    expect(signed.serverSig).toBeUndefined()
    expect(signed.clientSig.byteLength).toBe(64)
    const full = await countersign(signed, server.signer)
    expect(full.serverSig?.byteLength).toBe(64)
    expect(full.clientSig).toEqual(signed.clientSig)

    const decoded = await decodeSignedReceipt(encodeSignedReceipt(full), verifyPulseSignature, true)
    expect(decoded.body).toEqual({ ...b, job: b.job, nonce: b.nonce })
    expect(plain(decoded.bodyBytes)).toEqual(plain(encodeReceiptBody(b)))
    expect(plain(decoded.clientSig)).toEqual(plain(full.clientSig))
    expect(plain(decoded.serverSig as Uint8Array)).toEqual(plain(full.serverSig as Uint8Array))
    // The encoding is canonical: decode then encode gives the same bytes.
    expect(plain(encodeSignedReceipt(decoded))).toEqual(plain(encodeSignedReceipt(full)))
  })

  it('only the receipt\'s own client and server can sign it', async () => {
    const b = body()
    expect(await rejectionOf(signAsClient(b, server.signer))).toBeInstanceOf(ReceiptMismatchError)
    expect(await rejectionOf(signAsClient(b, mallory.signer))).toBeInstanceOf(ReceiptMismatchError)
    const signed = await signAsClient(b, client.signer)
    expect(await rejectionOf(countersign(signed, client.signer))).toBeInstanceOf(ReceiptMismatchError)
    expect(await rejectionOf(countersign(signed, mallory.signer))).toBeInstanceOf(ReceiptMismatchError)
  })

  it('an unsigned-by-the-server receipt decodes only when a countersignature is not required', async () => {
    const signed = await signAsClient(body(), client.signer)
    const bytes = encodeSignedReceipt(signed)
    const half = await decodeSignedReceipt(bytes, verifyPulseSignature, false)
    expect(half.serverSig).toBeUndefined()
    const err = await rejectionOf(decodeSignedReceipt(bytes, verifyPulseSignature, true))
    expect(err).toBeInstanceOf(UnsignedReceiptError)
    expect((err as HyperspaceError).code).toBe('ERR_RECEIPT_UNSIGNED')
  })

  it('refuses a forged client signature, naming the client', async () => {
    const full = await fullReceipt()
    for (const at of [0, 31, 63]) {
      const err = await rejectionOf(decodeSignedReceipt(encodeSignedReceipt({ ...full, clientSig: flipped(full.clientSig, at) }), verifyPulseSignature, false))
      expect(err).toBeInstanceOf(BadSignatureError)
      expect((err as Error).message).toContain(client.peerId)
    }
  })

  it('refuses a forged server signature, naming the server', async () => {
    const full = await fullReceipt()
    for (const requireCountersigned of [true, false]) {
      const err = await rejectionOf(decodeSignedReceipt(encodeSignedReceipt({ ...full, serverSig: flipped(full.serverSig as Uint8Array, 10) }), verifyPulseSignature, requireCountersigned))
      expect(err).toBeInstanceOf(BadSignatureError)
      expect((err as Error).message).toContain(server.peerId)
    }
  })

  it('refuses signatures made by a third party\'s key', async () => {
    const b = body()
    const forgedClient = await signAsClient(b, impostor(client.peerId, mallory))
    expect(await rejectionOf(decodeSignedReceipt(encodeSignedReceipt(forgedClient), verifyPulseSignature, false))).toBeInstanceOf(BadSignatureError)

    const honest = await signAsClient(b, client.signer)
    const forgedServer = await countersign(honest, impostor(server.peerId, mallory))
    const err = await rejectionOf(decodeSignedReceipt(encodeSignedReceipt(forgedServer), verifyPulseSignature, true))
    expect(err).toBeInstanceOf(BadSignatureError)
    expect((err as Error).message).toContain(server.peerId)
  })

  it('a signature does not move to another receipt or role', async () => {
    const a = await fullReceipt()
    const b = await fullReceipt()
    // Server signature of a on b's client-signed body.
    expect(await rejectionOf(decodeSignedReceipt(encodeSignedReceipt({ ...b, serverSig: a.serverSig as Uint8Array }), verifyPulseSignature, true))).toBeInstanceOf(BadSignatureError)
    // Client signature of a on b's body.
    expect(await rejectionOf(decodeSignedReceipt(encodeSignedReceipt({ ...b, clientSig: a.clientSig }), verifyPulseSignature, false))).toBeInstanceOf(BadSignatureError)
    // The client's signature used as the server's (same bytes signed, different domain).
    const swapped = { ...a, serverSig: a.clientSig }
    expect(await rejectionOf(decodeSignedReceipt(encodeSignedReceipt(swapped), verifyPulseSignature, true))).toBeInstanceOf(BadSignatureError)
  })

  it('the countersignature is over the client-signed receipt, in the server\'s own domain', async () => {
    const signed = await signAsClient(body(), client.signer)
    // The server's key over the body alone, or over the client's domain, is not a countersignature.
    for (const data of [
      concat(utf8('hyperspace-receipt/server/1'), signed.bodyBytes),
      concat(utf8('hyperspace-receipt/client/1'), signed.bodyBytes),
      concat(utf8('hyperspace-receipt/client/1'), signed.bodyBytes, signed.clientSig)
    ]) {
      const serverSig = await server.signer.sign(data)
      expect(await rejectionOf(decodeSignedReceipt(encodeSignedReceipt({ ...signed, serverSig }), verifyPulseSignature, true))).toBeInstanceOf(BadSignatureError)
    }
    // The real one, for contrast.
    const serverSig = await server.signer.sign(concat(utf8('hyperspace-receipt/server/1'), signed.bodyBytes, signed.clientSig))
    expect((await decodeSignedReceipt(encodeSignedReceipt({ ...signed, serverSig }), verifyPulseSignature, true)).serverSig).toBeDefined()
  })

  it('refuses a body edited after signing', async () => {
    const full = await fullReceipt()
    for (const edit of [{ units: 121 }, { units: 0 }, { model: 'other' }, { output: sha256Of(utf8('else')) }, { round: ROUND + 1 }, { ts: NOW + 1 }, { kind: 'storage' as const }, { cached: true }]) {
      const bodyBytes = encodeReceiptBody({ ...full.body, ...edit })
      const err = await rejectionOf(decodeSignedReceipt(encodeSignedReceipt({ ...full, bodyBytes }), verifyPulseSignature, true))
      expect(err, JSON.stringify(Object.keys(edit))).toBeInstanceOf(BadSignatureError)
    }
    // Edits that swap who is who fail as well.
    const swapped = encodeReceiptBody({ ...full.body, server: full.body.client, client: full.body.server })
    expect(await rejectionOf(decodeSignedReceipt(encodeSignedReceipt({ ...full, bodyBytes: swapped }), verifyPulseSignature, true))).toBeInstanceOf(BadSignatureError)
  })

  it('refuses malformed receipts and bodies with named errors', async () => {
    const full = await fullReceipt()
    const envelope = (fields: Record<string, unknown>): Uint8Array => new Uint8Array(encode({ v: 2, body: full.bodyBytes, cs: full.clientSig, ss: full.serverSig, ...fields }))
    expect(await rejectionOf(decodeSignedReceipt(envelope({ cs: full.clientSig.slice(0, 63) }), verifyPulseSignature, false))).toBeInstanceOf(MalformedMessageError)
    expect(await rejectionOf(decodeSignedReceipt(envelope({ ss: new Uint8Array(65) }), verifyPulseSignature, false))).toBeInstanceOf(MalformedMessageError)
    expect(await rejectionOf(decodeSignedReceipt(envelope({ ss: null }), verifyPulseSignature, false))).toBeInstanceOf(MalformedMessageError)
    expect(await rejectionOf(decodeSignedReceipt(envelope({ body: 'text' }), verifyPulseSignature, false))).toBeInstanceOf(MalformedMessageError)
    expect(await rejectionOf(decodeSignedReceipt(envelope({ v: 1 }), verifyPulseSignature, false))).toBeInstanceOf(UnsupportedVersionError)
    expect(await rejectionOf(decodeSignedReceipt(envelope({ v: 3 }), verifyPulseSignature, false))).toBeInstanceOf(UnsupportedVersionError)
    expect(await rejectionOf(decodeSignedReceipt(new Uint8Array(RECEIPT_MAX_BYTES + 1), verifyPulseSignature, false))).toBeInstanceOf(OversizeMessageError)

    const record = decodeMessage(full.bodyBytes, RECEIPT_MAX_BYTES, 2)
    const bodyWith = (fields: Record<string, unknown>): Uint8Array => new Uint8Array(encode({ ...record, ...fields }))
    const badBodies: Array<Record<string, unknown>> = [
      { job: new Uint8Array(15) }, { nonce: new Uint8Array(17) }, { out: new Uint8Array(31) }, { cached: 1 }, { cached: null },
      { kind: 7 }, { kind: 'Mining!' }, { units: -1 }, { units: 1.5 }, { round: '1' }, { ts: null },
      { server: '' }, { client: 'x'.repeat(129) }, { model: '' },
      { server: client.peerId } // its own client
    ]
    for (const fields of badBodies) expect(errorOf(() => decodeReceiptBody(bodyWith(fields))), JSON.stringify(Object.keys(fields))).toBeInstanceOf(MalformedMessageError)
    expect(errorOf(() => decodeReceiptBody(bodyWith({ v: 9 })))).toBeInstanceOf(UnsupportedVersionError)
    // A kind of work a newer release added is not garbage: its forwarders are not blamed (ReceiptGossip ignores it).
    expect(errorOf(() => decodeReceiptBody(bodyWith({ kind: 'mining' })))).toBeInstanceOf(UnknownWorkKindError)
    // A body without `cached` is malformed; one of version 1 (with a seed, no `cached`) is another version.
    const withoutCached = Object.fromEntries(Object.entries(record).filter(([key]) => key !== 'cached'))
    expect(errorOf(() => decodeReceiptBody(new Uint8Array(encode(withoutCached))))).toBeInstanceOf(MalformedMessageError)
    expect(errorOf(() => decodeReceiptBody(new Uint8Array(encode({ ...withoutCached, v: 1, seed: new Uint8Array(32) }))))).toBeInstanceOf(UnsupportedVersionError)
    // The body must be canonical, so a signed body has exactly one form: a non-shortest integer is refused.
    const canonical = full.bodyBytes
    const reencoded = new Uint8Array([0xbf, ...canonical.slice(1), 0xff]) // the same map, indefinite length
    expect(errorOf(() => decodeReceiptBody(reencoded))).toBeInstanceOf(MalformedMessageError)
  })

  it('fuzz: arbitrary bytes are refused only with HyperspaceErrors', async () => {
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 400 }), async bytes => {
      try {
        await decodeSignedReceipt(bytes, verifyPulseSignature, false)
      } catch (err) {
        expect(err).toBeInstanceOf(HyperspaceError)
      }
    }), { numRuns: 500 })
    const valid = encodeSignedReceipt(await fullReceipt())
    await fc.assert(fc.asyncProperty(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 }), async (at, value) => {
      const mutated = new Uint8Array(valid)
      mutated[at] = value
      try {
        await decodeSignedReceipt(mutated, verifyPulseSignature, true)
        // Only a no-op edit can still verify.
        expect(mutated[at]).toBe(valid[at])
      } catch (err) {
        expect(err).toBeInstanceOf(HyperspaceError)
      }
    }), { numRuns: 300 })
  })
})

describe('receipt expectations: checkMatches', () => {
  function expectation (b: ReceiptBody): ReceiptExpectation {
    return { job: b.job, nonce: b.nonce, server: b.server, client: b.client, model: b.model, output: b.output, kind: b.kind, cached: b.cached }
  }

  it('accepts the receipt of the job, refuses one naming another server', () => {
    const b = body()
    expect(() => { checkMatches(b, expectation(b)) }).not.toThrow()
    const err = errorOf(() => { checkMatches(b, { ...expectation(b), server: mallory.peerId }) })
    expect(err).toBeInstanceOf(ReceiptMismatchError)
    expect((err as HyperspaceError).code).toBe('ERR_RECEIPT_MISMATCH')
    expect((err as Error).message).toContain('server')
  })

  it('refuses any other field that differs from the job', () => {
    const b = body()
    const other = body()
    const differing: Array<Partial<ReceiptExpectation>> = [
      { job: other.job }, { nonce: other.nonce }, { output: sha256Of(utf8('another text')) },
      { client: mallory.peerId }, { model: 'stories15M' }, { kind: 'storage' }, { cached: true }
    ]
    for (const diff of differing) {
      const err = errorOf(() => { checkMatches(b, { ...expectation(b), ...diff }) })
      expect(err, Object.keys(diff)[0]).toBeInstanceOf(ReceiptMismatchError)
      expect((err as Error).message).toContain(Object.keys(diff)[0])
    }
  })
})

describe('receipt unit caps', () => {
  it('refuses more units than one job of the kind can hold, however well signed', async () => {
    expect(RECEIPT_UNIT_CAPS).toEqual({ inference: 1024, embedding: 64, storage: 1024 * 1024, proxy: 1024 * 1024, orchestration: 4096 })
    for (const kind of WORK_KINDS) {
      const cap = RECEIPT_UNIT_CAPS[kind]
      expect(decodeReceiptBody(encodeReceiptBody(body({ kind, units: cap }))).units).toBe(cap)
      const over = await fullReceipt({ kind, units: cap + 1 })
      const err = await rejectionOf(decodeSignedReceipt(encodeSignedReceipt(over), verifyPulseSignature, true))
      expect(err, kind).toBeInstanceOf(ReceiptUnitsError)
      expect((err as HyperspaceError).code).toBe('ERR_RECEIPT_UNITS')
      expect((err as Error).message).toContain(`${cap + 1} units of ${kind}`)
    }
  })
})

describe('receipt freshness', () => {
  it('accepts its own round, up to two rounds late and one round early', () => {
    expect(RECEIPT_MAX_AGE_ROUNDS).toBe(2)
    for (const current of [ROUND - 1, ROUND, ROUND + 1, ROUND + 2]) {
      expect(() => { checkFreshness(body(), current) }, `current ${current}`).not.toThrow()
    }
  })

  it('refuses a receipt too old or too far in the future as stale', () => {
    for (const current of [ROUND + 3, ROUND + 100, ROUND - 2, ROUND - 50]) {
      const err = errorOf(() => { checkFreshness(body(), current) })
      expect(err, `current ${current}`).toBeInstanceOf(StaleReceiptError)
      expect((err as HyperspaceError).code).toBe('ERR_RECEIPT_STALE')
    }
  })
})

describe('ReplayGuard', () => {
  it('refuses a receipt seen before, even re-encoded or re-signed', async () => {
    const guard = new ReplayGuard()
    const full = await fullReceipt()
    guard.admit(full.body, ROUND)
    const err = errorOf(() => { guard.admit(full.body, ROUND) })
    expect(err).toBeInstanceOf(ReplayedReceiptError)
    expect((err as HyperspaceError).code).toBe('ERR_RECEIPT_REPLAYED')
    // The same job and nonce with other contents is the same receipt.
    const decoded = await decodeSignedReceipt(encodeSignedReceipt(full), verifyPulseSignature, true)
    expect(errorOf(() => { guard.admit({ ...decoded.body, units: 1 }, ROUND) })).toBeInstanceOf(ReplayedReceiptError)
  })

  it('tells receipts apart by job and nonce', () => {
    const guard = new ReplayGuard()
    const b = body()
    guard.admit(b, ROUND)
    expect(() => { guard.admit({ ...b, nonce: body().nonce }, ROUND) }).not.toThrow()
    expect(() => { guard.admit({ ...b, job: body().job }, ROUND) }).not.toThrow()
    expect(receiptId(b)).toMatch(/^[0-9a-f]{64}$/)
  })

  it('forgets receipts once their rounds can no longer be fresh', () => {
    const guard = new ReplayGuard()
    const old = body({ round: ROUND })
    guard.admit(old, ROUND)
    // Still remembered while it could be fresh...
    guard.admit(body({ round: ROUND + 2 }), ROUND + 2)
    expect(errorOf(() => { guard.admit(old, ROUND + 2) })).toBeInstanceOf(ReplayedReceiptError)
    // ...and dropped once it is stale (checkFreshness refuses it from then on).
    guard.admit(body({ round: ROUND + 3 }), ROUND + 3)
    expect(() => { guard.admit(old, ROUND + 3) }).not.toThrow()
    expect(errorOf(() => { checkFreshness(old, ROUND + 3) })).toBeInstanceOf(StaleReceiptError)
  })

  it('holds at most maxEntries, dropping the oldest first', () => {
    const guard = new ReplayGuard(3)
    const bodies = [body(), body(), body(), body()]
    for (const b of bodies) guard.admit(b, ROUND)
    // The first was dropped to make room; the three newest are remembered.
    expect(() => { guard.admit(bodies[0] as ReceiptBody, ROUND) }).not.toThrow()
    expect(errorOf(() => { guard.admit(bodies[3] as ReceiptBody, ROUND) })).toBeInstanceOf(ReplayedReceiptError)
    expect(errorOf(() => { guard.admit(bodies[0] as ReceiptBody, ROUND) })).toBeInstanceOf(ReplayedReceiptError)
  })
})

// ---- the hash-chained log ----

async function chain (n: number): Promise<LogEntry[]> {
  const entries: LogEntry[] = []
  for (let i = 0; i < n; i++) entries.push(appendEntry(entries.at(-1), encodeSignedReceipt(await fullReceipt({ units: 100 + i }))))
  return entries
}

function chainError (entries: LogEntry[]): ReceiptChainError {
  const err = errorOf(() => { verifyChain(entries) })
  expect(err).toBeInstanceOf(ReceiptChainError)
  expect((err as HyperspaceError).code).toBe('ERR_RECEIPT_CHAIN')
  return err as ReceiptChainError
}

describe('receipt log hash chain', () => {
  let good: LogEntry[]
  beforeAll(async () => { good = await chain(5) })

  it('appendEntry numbers entries from 0 and links each to the one before, from the genesis hash', () => {
    expect(good.map(e => e.seq)).toEqual([0, 1, 2, 3, 4])
    expect(good[0]?.prev).toEqual(GENESIS_HASH)
    expect(GENESIS_HASH).toEqual(new Uint8Array(32))
    for (let i = 1; i < good.length; i++) expect(good[i]?.prev).toEqual(good[i - 1]?.hash)
    expect(new Set(good.map(e => Buffer.from(e.hash).toString('hex'))).size).toBe(5)
  })

  it('verifies a good chain, and an empty one', () => {
    expect(() => { verifyChain(good) }).not.toThrow()
    expect(() => { verifyChain([]) }).not.toThrow()
  })

  it('detects an edited receipt', () => {
    const edited = good.map(e => ({ ...e }))
    edited[2] = { ...good[2] as LogEntry, receipt: flipped((good[2] as LogEntry).receipt, 20) }
    expect(chainError(edited).message).toMatch(/entry 2: hash does not match/)
  })

  it('detects an edited receipt whose own hash was recomputed, at the next entry', () => {
    const edited = good.map(e => ({ ...e }))
    const at = good[2] as LogEntry
    edited[2] = appendEntry(good[1], flipped(at.receipt, 20))
    expect(edited[2].seq).toBe(2)
    expect(chainError(edited).message).toMatch(/entry 3: does not follow/)
  })

  it('detects a dropped entry, even when the rest is renumbered', () => {
    const dropped = [...good.slice(0, 2), ...good.slice(3)]
    expect(chainError(dropped).message).toMatch(/entry 2: sequence number 3/)
    const renumbered = dropped.map((e, i) => ({ ...e, seq: i }))
    expect(chainError(renumbered).message).toMatch(/entry 2/)
    // Dropping the first entry is caught as well.
    expect(chainError(good.slice(1)).message).toMatch(/entry 0/)
  })

  it('detects a reordered pair', () => {
    const swapped = [good[0], good[2], good[1], good[3], good[4]] as LogEntry[]
    expect(chainError(swapped).message).toMatch(/entry 1/)
    const renumbered = swapped.map((e, i) => ({ ...e, seq: i }))
    expect(chainError(renumbered).message).toMatch(/entry 1/)
  })

  it('detects a changed prev or a changed hash', () => {
    const prev = good.map(e => ({ ...e }))
    prev[3] = { ...good[3] as LogEntry, prev: flipped((good[3] as LogEntry).prev) }
    expect(chainError(prev).message).toMatch(/entry 3: does not follow/)
    const hash = good.map(e => ({ ...e }))
    hash[4] = { ...good[4] as LogEntry, hash: flipped((good[4] as LogEntry).hash, 31) }
    expect(chainError(hash).message).toMatch(/entry 4: hash does not match/)
    const first = good.map(e => ({ ...e }))
    first[0] = { ...good[0] as LogEntry, prev: new Uint8Array(32).fill(1) }
    expect(chainError(first).message).toMatch(/entry 0/)
  })
})

// ---- work points ----

describe('work points', () => {
  it('pay per DESIGN section 6: inference 1 per 1,000 tokens, embedding 1 per 1,000 texts, storage 1 per GiB, proxy 1 per 100 MiB, orchestration 1 per 10,000 inputs', () => {
    expect(UNITS_PER_POINT).toEqual({ inference: 1000, embedding: 1000, storage: 1024 ** 3, proxy: 100 * 1024 ** 2, orchestration: 10_000 })
    expect(pointsOf(body({ kind: 'orchestration', units: 512 }))).toBeCloseTo(0.0512, 12)
    expect(pointsOf(body({ units: 1500 }))).toBe(1.5)
    expect(pointsOf(body({ kind: 'embedding', units: 250 }))).toBe(0.25)
    expect(pointsOf(body({ kind: 'storage', units: 2 * 1024 ** 3 }))).toBe(2)
    expect(pointsOf(body({ units: 0 }))).toBe(0)
  })

  it('pay a cached answer a tenth of the rate, whatever its kind', () => {
    expect(CACHE_RATE).toBe(0.1)
    expect(pointsOf(body({ units: 1000, cached: true }))).toBeCloseTo(0.1, 15)
    expect(pointsOf(body({ kind: 'embedding', units: 50, cached: true }))).toBeCloseTo(0.005, 15)
    const receipts = [body({ units: 1000 }), body({ units: 1000, cached: true })]
    expect(workPoints(receipts, server.peerId, NOW).work).toBeCloseTo(1.1, 15)
  })

  it('count only receipts this node served, in all and since today\'s UTC midnight', () => {
    const midnight = Math.floor(NOW / DAY_MS) * DAY_MS
    const receipts = [
      body({ units: 1000, ts: midnight }), // served today, at the boundary
      body({ units: 2000, ts: midnight - 1 }), // served yesterday
      body({ units: 4000, ts: NOW }), // served today
      body({ units: 8000, ts: NOW, server: mallory.peerId }), // this node was someone's client
      body({ kind: 'embedding', units: 500, ts: NOW })
    ]
    expect(workPoints(receipts, server.peerId, NOW)).toEqual({ work: 1 + 2 + 4 + 0.5, today: 1 + 4 + 0.5 })
    expect(workPoints(receipts, client.peerId, NOW)).toEqual({ work: 0, today: 0 })
    expect(workPoints(receipts, mallory.peerId, NOW)).toEqual({ work: 8, today: 8 })
    // The next day, nothing is from today.
    expect(workPoints(receipts, server.peerId, midnight + DAY_MS).today).toBe(0)
  })
})

// ---- the receipt book over IndexedDB ----

describe('ReceiptBook', () => {
  const NET = 'dev-receipts'
  let db: HyperspaceDb

  beforeAll(async () => { db = await openDb() })
  afterAll(() => { closeAll() })

  it('appends receipts, counts the work points of those it served, and lists the newest first', async () => {
    const store = new ReceiptStore(db)
    const book = new ReceiptBook(store, `${NET}-a`, server.peerId)
    await book.load()
    const changes: number[] = []
    book.addEventListener('change', evt => { changes.push(evt.detail.entries) })
    const served = await fullReceipt({ units: 1500, ts: NOW })
    const asClient = await countersign(await signAsClient(body({ server: mallory.peerId, client: server.peerId, units: 700 }), server.signer), mallory.signer)
    await book.append(served)
    await book.append(asClient)
    expect(changes).toEqual([1, 2])
    expect(book.state()).toEqual({ entries: 2, broken: null })
    expect(book.work(NOW)).toEqual({ work: 1.5, today: 1.5 })
    const recent = book.recent(10)
    expect(recent.map(r => r.role)).toEqual(['client', 'server'])
    expect(recent[0]).toMatchObject({ peer: mallory.peerId, units: 700, points: 0, kind: 'inference', model: 'stories260K', round: ROUND })
    expect(recent[1]).toMatchObject({ id: receiptId(served.body), peer: client.peerId, units: 1500, points: 1.5, ts: NOW })
    expect(book.recent(1)).toHaveLength(1)
    // What was stored is a valid chain of the exact receipts.
    const stored = await store.page(`${NET}-a`, server.peerId, 0, 100)
    expect(() => { verifyChain(stored) }).not.toThrow()
    expect(stored.map(e => plain(e.receipt))).toEqual([plain(encodeSignedReceipt(served)), plain(encodeSignedReceipt(asClient))])
  })

  it('reloads the same log from the store, and keeps chaining after it', async () => {
    const store = new ReceiptStore(db)
    const first = new ReceiptBook(store, `${NET}-b`, server.peerId)
    await first.load()
    for (const units of [100, 200, 300]) await first.append(await fullReceipt({ units }))
    const second = new ReceiptBook(store, `${NET}-b`, server.peerId)
    await second.load()
    expect(second.state()).toEqual({ entries: 3, broken: null })
    expect(second.work(NOW)).toEqual(first.work(NOW))
    expect(second.recent(3)).toEqual(first.recent(3))
    await second.append(await fullReceipt({ units: 400 }))
    const stored = await store.page(`${NET}-b`, server.peerId, 0, 100)
    expect(stored.map(e => e.seq)).toEqual([0, 1, 2, 3])
    expect(() => { verifyChain(stored) }).not.toThrow()
    // Another network's log is separate.
    const other = new ReceiptBook(store, `${NET}-other`, server.peerId)
    await other.load()
    expect(other.state().entries).toBe(0)
  })

  it('reports a tampered store entry as broken on load', async () => {
    const store = new ReceiptStore(db)
    const net = `${NET}-c`
    const book = new ReceiptBook(store, net, server.peerId)
    await book.load()
    for (const units of [100, 200, 300]) await book.append(await fullReceipt({ units }))
    // Someone with access to IndexedDB inflates a receipt's tokens.
    const stored = await db.get('receipts', [net, server.peerId, 1])
    if (stored === undefined) throw new Error('entry 1 missing')
    const record = decodeMessage(stored.receipt, RECEIPT_MAX_BYTES, 2)
    const inflated = encodeReceiptBody({ ...decodeReceiptBody(record.body as Uint8Array), units: 1000 })
    await db.put('receipts', { ...stored, receipt: new Uint8Array(encode({ ...record, body: inflated })) })
    const reloaded = new ReceiptBook(store, net, server.peerId)
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    try {
      await reloaded.load()
    } finally {
      warn.mockRestore()
    }
    expect(reloaded.state().broken).toMatch(/entry 1/)
    expect(reloaded.state().entries).toBe(3)
  })

  it('still reads the version 1 receipts of its own log, as not cached', async () => {
    // Made before `cached` existed, with the round's seed: a log written by the previous release.
    const v1 = async (units: number): Promise<Uint8Array> => {
      const b = body({ units })
      const bodyBytes = new Uint8Array(encode({ v: 1, job: b.job, nonce: b.nonce, kind: b.kind, server: b.server, client: b.client, model: b.model, units, out: b.output, round: b.round, seed: new Uint8Array(32), ts: b.ts }))
      const cs = await client.signer.sign(concat(utf8('hyperspace-receipt/client/1'), bodyBytes))
      const ss = await server.signer.sign(concat(utf8('hyperspace-receipt/server/1'), bodyBytes, cs))
      return new Uint8Array(encode({ v: 1, body: bodyBytes, cs, ss }))
    }
    const old = await v1(500)
    expect(decodeLoggedReceipt(old)).toMatchObject({ units: 500, cached: false, server: server.peerId })
    // From the network, a version 1 receipt is another version.
    expect(await rejectionOf(decodeSignedReceipt(old, verifyPulseSignature, true))).toBeInstanceOf(UnsupportedVersionError)
    const entries: LogEntry[] = []
    entries.push(appendEntry(undefined, old))
    entries.push(appendEntry(entries[0], await v1(250)))
    const book = new ReceiptBook(arrayLog(entries), NET, server.peerId)
    await book.load()
    expect(book.state()).toEqual({ entries: 2, broken: null })
    expect(book.work(NOW).work).toBeCloseTo(0.75, 15)
    await book.append(await fullReceipt({ units: 1000, cached: true }))
    expect(book.work(NOW).work).toBeCloseTo(0.85, 15)
  })

  it('reports an entry that is not a receipt, even with a consistent chain', async () => {
    const entries: LogEntry[] = []
    entries.push(appendEntry(undefined, encodeSignedReceipt(await fullReceipt())))
    entries.push(appendEntry(entries[0], new Uint8Array([1, 2, 3])))
    const store = arrayLog(entries)
    const book = new ReceiptBook(store, NET, server.peerId)
    await book.load()
    expect(book.state()).toEqual({ entries: 2, broken: expect.stringMatching(/entry 1 is not a receipt/) as unknown as string })
    expect(book.recent(5)).toHaveLength(1)
  })

  it('loads a long log a page at a time and holds only the newest receipts', async () => {
    const entries: LogEntry[] = []
    const receipt = encodeSignedReceipt(await fullReceipt({ units: 10, ts: NOW }))
    for (let i = 0; i < RECENT_RECEIPTS + 300; i++) entries.push(appendEntry(entries.at(-1), receipt))
    const log = arrayLog(entries)
    const book = new ReceiptBook(log, NET, server.peerId)
    await book.load()
    // 1,300 entries in pages of 256: six reads, never the whole log at once.
    expect(log.pages).toBe(6)
    expect(book.state()).toEqual({ entries: RECENT_RECEIPTS + 300, broken: null })
    expect(book.work(NOW).work).toBeCloseTo((RECENT_RECEIPTS + 300) * 0.01, 9)
    expect(book.recent(5000)).toHaveLength(RECENT_RECEIPTS)
    // It chains on from the last entry it read.
    await book.append(await fullReceipt({ units: 20 }))
    expect(book.state()).toEqual({ entries: RECENT_RECEIPTS + 301, broken: null })
    expect(book.recent(1)[0]?.units).toBe(20)
    // A break in any page is found.
    const tampered = [...entries]
    tampered[700] = { ...receiptAt(entries, 700), receipt: encodeSignedReceipt(await fullReceipt({ units: 1000, ts: NOW })) }
    const broken = new ReceiptBook(arrayLog(tampered), NET, server.peerId)
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    try {
      await broken.load()
    } finally {
      warn.mockRestore()
    }
    expect(broken.state().broken).toMatch(/entry 700: hash does not match/)
  })

  it('keeps a receipt in memory when the store fails to write it', async () => {
    const store = new ReceiptStore(db)
    const net = `${NET}-d`
    const book = new ReceiptBook(store, net, server.peerId)
    await book.load()
    // Another tab wrote seq 0 first: `add` fails on the existing key.
    await store.append(net, server.peerId, appendEntry(undefined, new Uint8Array([9])))
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    try {
      await book.append(await fullReceipt({ units: 2500 }))
      expect(warn).toHaveBeenCalled()
    } finally {
      warn.mockRestore()
    }
    expect(book.state()).toEqual({ entries: 1, broken: null })
    expect(book.work(NOW).work).toBe(2.5)

    // A store that rejects every write: appends still resolve and count.
    const failing: ReceiptLogStore = { page: async () => [], append: async () => { throw new Error('QuotaExceededError') } }
    const memoryOnly = new ReceiptBook(failing, NET, server.peerId)
    await memoryOnly.load()
    const warn2 = vi.spyOn(console, 'warn').mockImplementation(() => {})
    try {
      await memoryOnly.append(await fullReceipt({ units: 1000 }))
      await memoryOnly.append(await fullReceipt({ units: 1000 }))
    } finally {
      warn2.mockRestore()
    }
    expect(memoryOnly.state().entries).toBe(2)
    expect(memoryOnly.work(NOW).work).toBe(2)
  })
})
