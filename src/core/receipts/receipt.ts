import { decodeMessage, encodeMessage } from '../wire/cbor.ts'
import { BLOCK_MAX_BYTES } from '../blocks/cid.ts'
import { EMBED_LIMITS } from '../embedding/limits.ts'
import { MalformedMessageError, ReceiptMismatchError, ReceiptUnitsError, ReplayedReceiptError, StaleReceiptError, UnknownWorkKindError, UnsignedReceiptError, UnsupportedVersionError } from '../errors.ts'
import { REQUEST_LIMITS } from '../inference/request.ts'
import { PROXY_MAX_BODY_BYTES } from '../proxy/limits.ts'
import { TASK_LIMITS } from '../tasks/limits.ts'
import { concat, equalBytes, toHex, utf8 } from '../crypto/bytes.ts'
import { requireSignature, type PulseSigner, type PulseVerifier } from '../crypto/signing.ts'

/**
 * A work receipt (DESIGN section 6): after a job the client signs what it got, the server
 * countersigns, and anyone can verify both signatures from the peer ids alone (Ed25519 keys are in
 * them). The client's job id and the server's nonce make every receipt single-use, and its round
 * dates it, so none can be replayed or submitted late. It carries no pulse seed: with more than one
 * committee each has its own seed chain, and a receipt must verify in every committee.
 */
export type WorkKind = 'inference' | 'embedding' | 'storage' | 'proxy' | 'orchestration'
/** In this order: a points proof names a kind by its index here (new kinds go at the end). */
export const WORK_KINDS: readonly WorkKind[] = ['inference', 'embedding', 'storage', 'proxy', 'orchestration']

export interface ReceiptBody {
  job: Uint8Array
  nonce: Uint8Array
  kind: WorkKind
  server: string
  client: string
  model: string
  /** Tokens generated, texts embedded, bytes served (storage), body bytes fetched (proxy) or inputs orchestrated. */
  units: number
  /** Served from the server's cache: paid at the cache rate (work-points.ts). */
  cached: boolean
  /** SHA-256 of the output the client received. */
  output: Uint8Array
  round: number
  /** Client clock, ms. */
  ts: number
}

export interface SignedReceipt {
  body: ReceiptBody
  /** The canonical encoding both parties signed. */
  bodyBytes: Uint8Array
  clientSig: Uint8Array
  /** Absent until the server countersigns. */
  serverSig?: Uint8Array
}

/**
 * The most units one job of each kind can hold, whatever its two parties sign: a request asks for at
 * most 1024 tokens, an embedding batch holds at most 64 texts, a storage job moves one block, a
 * proxy job one body of at most 1 MiB, and an orchestrated task at most 4,096 inputs.
 * A colluding client and server can sign any count between themselves; these caps are what anyone
 * who checks their receipt can hold them to.
 */
export const RECEIPT_UNIT_CAPS: Readonly<Record<WorkKind, number>> = {
  inference: REQUEST_LIMITS.maxTokens,
  embedding: EMBED_LIMITS.batch,
  storage: BLOCK_MAX_BYTES,
  proxy: PROXY_MAX_BODY_BYTES,
  orchestration: TASK_LIMITS.embedInputs
}

/** Version 2 added `cached` and dropped the round's seed. */
export const RECEIPT_VERSION = 2
/** Receipts of version 1 are read from a node's own log only (see decodeLoggedReceipt). */
const LOGGED_V1 = 1
export const RECEIPT_MAX_BYTES = 2048
/** A receipt is accepted for its own round and this many rounds after it. */
export const RECEIPT_MAX_AGE_ROUNDS = 2
const PEER_ID_MAX = 128
const MODEL_MAX = 128
const CLIENT_DOMAIN = utf8('hyperspace-receipt/client/1')
const SERVER_DOMAIN = utf8('hyperspace-receipt/server/1')

function bodyRecord (b: ReceiptBody): Record<string, unknown> {
  return { v: RECEIPT_VERSION, job: b.job, nonce: b.nonce, kind: b.kind, server: b.server, client: b.client, model: b.model, units: b.units, cached: b.cached, out: b.output, round: b.round, ts: b.ts }
}

export function encodeReceiptBody (body: ReceiptBody): Uint8Array {
  return encodeMessage(bodyRecord(body))
}

function fixedBytes (value: unknown, field: string, length: number): Uint8Array {
  if (!(value instanceof Uint8Array) || value.byteLength !== length) throw new MalformedMessageError(`${field} must be ${length} bytes`)
  return value
}

function count (value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new MalformedMessageError(`${field} must be a non-negative integer`)
  return value
}

function shortText (value: unknown, field: string, max: number): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) throw new MalformedMessageError(`${field} must be text of 1 to ${max} characters`)
  return value
}

export function decodeReceiptBody (bytes: Uint8Array): ReceiptBody {
  const m = decodeMessage(bytes, RECEIPT_MAX_BYTES, RECEIPT_VERSION)
  if (typeof m.cached !== 'boolean') throw new MalformedMessageError('cached must be a boolean')
  return bodyFields(m, m.cached)
}

function bodyFields (m: Record<string, unknown>, cached: boolean): ReceiptBody {
  if (!WORK_KINDS.includes(m.kind as WorkKind)) {
    // A short name is a kind a newer release added: its forwarders are not to blame.
    if (typeof m.kind === 'string' && /^[a-z]{1,32}$/.test(m.kind)) throw new UnknownWorkKindError(m.kind)
    throw new MalformedMessageError('kind must be inference, embedding, storage, proxy or orchestration')
  }
  const body: ReceiptBody = {
    job: fixedBytes(m.job, 'job', 16),
    nonce: fixedBytes(m.nonce, 'nonce', 16),
    kind: m.kind as WorkKind,
    server: shortText(m.server, 'server', PEER_ID_MAX),
    client: shortText(m.client, 'client', PEER_ID_MAX),
    model: shortText(m.model, 'model', MODEL_MAX),
    units: count(m.units, 'units'),
    cached,
    output: fixedBytes(m.out, 'out', 32),
    round: count(m.round, 'round'),
    ts: count(m.ts, 'ts')
  }
  if (body.server === body.client) throw new MalformedMessageError('a node cannot be its own client')
  const cap = RECEIPT_UNIT_CAPS[body.kind]
  if (body.units > cap) throw new ReceiptUnitsError(body.kind, body.units, cap)
  return body
}

function clientSignedData (bodyBytes: Uint8Array): Uint8Array {
  return concat(CLIENT_DOMAIN, bodyBytes)
}

/** The server signs over the client's signature too: its countersignature vouches for that exact receipt. */
function serverSignedData (bodyBytes: Uint8Array, clientSig: Uint8Array): Uint8Array {
  return concat(SERVER_DOMAIN, bodyBytes, clientSig)
}

export async function signAsClient (body: ReceiptBody, signer: PulseSigner): Promise<SignedReceipt> {
  if (signer.peerId !== body.client) throw new ReceiptMismatchError('the signer is not the receipt\'s client')
  const bodyBytes = encodeReceiptBody(body)
  return { body, bodyBytes, clientSig: await signer.sign(clientSignedData(bodyBytes)) }
}

export async function countersign (receipt: SignedReceipt, signer: PulseSigner): Promise<SignedReceipt> {
  if (signer.peerId !== receipt.body.server) throw new ReceiptMismatchError('the signer is not the receipt\'s server')
  return { ...receipt, serverSig: await signer.sign(serverSignedData(receipt.bodyBytes, receipt.clientSig)) }
}

export function encodeSignedReceipt (r: SignedReceipt): Uint8Array {
  return encodeMessage(r.serverSig === undefined
    ? { v: RECEIPT_VERSION, body: r.bodyBytes, cs: r.clientSig }
    : { v: RECEIPT_VERSION, body: r.bodyBytes, cs: r.clientSig, ss: r.serverSig })
}

/**
 * Decodes a receipt and checks every signature it carries (the client's always, the server's when
 * present); `requireCountersigned` refuses one the server has not signed.
 */
/** The body of a signed receipt, its signatures not yet checked: what cheap checks look at first. */
export function unverifiedReceiptBody (bytes: Uint8Array): ReceiptBody {
  const m = decodeMessage(bytes, RECEIPT_MAX_BYTES, RECEIPT_VERSION)
  if (!(m.body instanceof Uint8Array)) throw new MalformedMessageError('body must be bytes')
  return decodeReceiptBody(m.body)
}

export async function decodeSignedReceipt (bytes: Uint8Array, verify: PulseVerifier, requireCountersigned: boolean): Promise<SignedReceipt> {
  const m = decodeMessage(bytes, RECEIPT_MAX_BYTES, RECEIPT_VERSION)
  if (!(m.body instanceof Uint8Array)) throw new MalformedMessageError('body must be bytes')
  const body = decodeReceiptBody(m.body)
  const clientSig = fixedBytes(m.cs, 'cs', 64)
  await requireSignature(verify, body.client, clientSignedData(m.body), clientSig)
  const receipt: SignedReceipt = { body, bodyBytes: m.body, clientSig }
  if (m.ss === undefined) {
    if (requireCountersigned) throw new UnsignedReceiptError()
    return receipt
  }
  const serverSig = fixedBytes(m.ss, 'ss', 64)
  await requireSignature(verify, body.server, serverSignedData(m.body, clientSig), serverSig)
  return { ...receipt, serverSig }
}

/**
 * The job a client-signed receipt names, read without checking its signature: only to find which job
 * of several it must then be checked against (decodeSignedReceipt does that).
 */
export function claimedReceiptJob (bytes: Uint8Array): Uint8Array {
  const m = decodeMessage(bytes, RECEIPT_MAX_BYTES, RECEIPT_VERSION)
  if (!(m.body instanceof Uint8Array)) throw new MalformedMessageError('body must be bytes')
  return decodeReceiptBody(m.body).job
}

/**
 * The body of a receipt from this node's own log, which may hold receipts of version 1 (made before
 * `cached` existed: read as not cached; their seed is not checked, as no receipt's is now). Anything
 * from the network goes through decodeSignedReceipt, which takes the current version only.
 */
export function decodeLoggedReceipt (bytes: Uint8Array): ReceiptBody {
  let m: Record<string, unknown>
  try {
    m = decodeMessage(bytes, RECEIPT_MAX_BYTES, RECEIPT_VERSION)
  } catch (err) {
    if (!(err instanceof UnsupportedVersionError)) throw err
    const v1 = decodeMessage(bytes, RECEIPT_MAX_BYTES, LOGGED_V1)
    if (!(v1.body instanceof Uint8Array)) throw new MalformedMessageError('body must be bytes')
    return bodyFields(decodeMessage(v1.body, RECEIPT_MAX_BYTES, LOGGED_V1), false)
  }
  if (!(m.body instanceof Uint8Array)) throw new MalformedMessageError('body must be bytes')
  return decodeReceiptBody(m.body)
}

/** A receipt belongs to a recent round: its own, up to RECEIPT_MAX_AGE_ROUNDS after it, or one before it (clock skew). */
export function checkFreshness (body: ReceiptBody, currentRound: number): void {
  if (body.round > currentRound + 1 || body.round < currentRound - RECEIPT_MAX_AGE_ROUNDS) {
    throw new StaleReceiptError(body.round, currentRound)
  }
}

/** What a party expects a receipt to say about the job it took part in. */
export interface ReceiptExpectation {
  job: Uint8Array
  nonce: Uint8Array
  server: string
  client: string
  model: string
  output: Uint8Array
  kind: WorkKind
  cached: boolean
}

export function checkMatches (body: ReceiptBody, expected: ReceiptExpectation): void {
  for (const field of ['job', 'nonce', 'output'] as const) {
    if (!equalBytes(body[field], expected[field])) throw new ReceiptMismatchError(`${field} differs from the job's`)
  }
  for (const field of ['server', 'client', 'model', 'kind', 'cached'] as const) {
    if (body[field] !== expected[field]) throw new ReceiptMismatchError(`${field} is ${body[field]}, expected ${expected[field]}`)
  }
}

export function receiptId (body: ReceiptBody): string {
  return toHex(body.job) + toHex(body.nonce)
}

/**
 * Remembers the receipts seen in the rounds a receipt can still be fresh in, so a second copy of
 * one is refused; older entries are dropped as rounds pass, which keeps it bounded.
 */
export class ReplayGuard {
  private readonly seen = new Map<string, number>()

  constructor (private readonly maxEntries = 100_000) {}

  /** Throws ReplayedReceiptError when the receipt was seen before. */
  check (body: ReceiptBody): void {
    const id = receiptId(body)
    if (this.seen.has(id)) throw new ReplayedReceiptError(id)
  }

  /** Records the receipt; throws ReplayedReceiptError when it was seen before. */
  admit (body: ReceiptBody, currentRound: number): void {
    this.check(body)
    const id = receiptId(body)
    for (const [key, round] of this.seen) {
      if (round >= currentRound - RECEIPT_MAX_AGE_ROUNDS && this.seen.size < this.maxEntries) break
      this.seen.delete(key)
    }
    this.seen.set(id, body.round)
  }
}
