import type { CapabilityName } from '../capabilities.ts'
import { decodeMessage, encodeMessage } from './cbor.ts'
import { concat, equalBytes, sha256Of, utf8 } from '../crypto/bytes.ts'
import { requireSignature, type PulseSigner, type PulseVerifier } from '../crypto/signing.ts'
import { isCommitteeCount } from '../pulse/committee.ts'
import { bytesField, capsField, fail, listField, peerField, uintField } from '../pulse/fields.ts'
import { resultsTree, type VerdictResult } from '../pulse/verdict-tree.ts'
import { canonicalCaps, decodeEntries, encodeEntries, resultsOf, type VerdictEntry } from '../pulse/verdict-entries.ts'
import { bodyOf, packBody, unpackBody } from './pulse-compact.ts'
import { MAX_N, MIN_N } from '../pulse/work.ts'

export { STRIKE_REASONS, type StrikeReason, type VerdictResult } from '../pulse/verdict-tree.ts'

/**
 * Pulse messages. Each is signed as `body`, the canonical CBOR of the message, with `sig` the author's
 * Ed25519 signature over "hyperspace-pulse-v1" | body. The author is the body's `peer`, so a message
 * stored today can be checked by anyone later, without the gossip message it came in. A verdict's
 * body carries the Merkle root `rr` of its results and their `count`; the results travel beside it,
 * and every receiver recomputes `rr` (verdict-tree.ts), so one result and its path can later stand for
 * the whole verdict. On the wire (v10) a message travels as `{ v, m, s }`: the body's values without
 * their keys (pulse-compact.ts; since v11 with Ed25519 peer ids as their keys), from which every
 * receiver rebuilds the signed body; records keep the full envelope `{ v, body, sig }` (encodeKept).
 */

export const PULSE_VERSION = 11
/**
 * Versions whose commits and verdict headers are read from kept records (history, points proofs,
 * identity files): v5 changed only challenges, v6 only reveals, v7 only how reveals travel
 * (pulse-reveal.ts), v8 how verdict results travel (verdict-entries.ts, adding `judged` to the
 * verdict header), v9 only who may lead (an anchor, listing no commit of its own), v10 only how
 * messages travel (pulse-compact.ts) and v11 only how peer ids travel (peer-key.ts), so what a node
 * signed under v4 still verifies.
 */
export const KEPT_VERSIONS: readonly number[] = [4, 5, 6, 7, 8, 9, 10, PULSE_VERSION]
/** The first version whose verdict header names the challenge it judged. */
const JUDGED_SINCE = 8
export const MAX_CHALLENGE_ROWS = 16
export const MAX_COMMITTEE = 512

export interface CommitMessage {
  t: 'commit'
  net: string
  r: number
  peer: string
  seed: Uint8Array
  root: Uint8Array
  n: number
  /** Capabilities enabled and working at commit time: the points' capability bonus. */
  caps: CapabilityName[]
  /**
   * Random per running instance: two copies of one identity do the very same work and would send
   * byte-identical commits, so this is what tells them apart.
   */
  sid: Uint8Array
  /**
   * K in the sender's view, present only when above 1 (so a network of one committee sends exactly
   * what it sent before committees existed): how a node that has just joined learns K.
   */
  committees?: number
}

export interface ChallengeMessage {
  t: 'challenge'
  net: string
  r: number
  /** The leader. */
  peer: string
  seed: Uint8Array
  /** The commit set the leader saw, sorted by peer id: [peer, root]. */
  commits: Array<[string, Uint8Array]>
  k: number
  /**
   * The leader's VRF proof (ECVRF-EDWARDS25519-SHA512-TAI, 80 bytes) over beaconInput(net, r, seed):
   * its output drives the next seed, and only one output verifies per key and round, so a leader
   * cannot grind it (its Ed25519 signature could be re-made with other nonces).
   */
  vrf: Uint8Array
  /** The leader's VRF proof over rowsInput(net, r, seed, commits): its output picks the challenged rows. */
  rowsVrf: Uint8Array
}

export interface RevealMessage {
  t: 'reveal'
  net: string
  r: number
  peer: string
  /** Which challenge this answers. */
  leader: string
  /** The challenged rows' indices, ascending. */
  rows: number[]
  /**
   * Their multiproof (merkle.ts, v6): the rows themselves are not sent, as the validator recomputes
   * them from the seed anyway and a proof verifies only for the right rows.
   */
  proof: Uint8Array[]
}

export interface VerdictMessage {
  t: 'verdict'
  net: string
  r: number
  /** The validator. */
  peer: string
  seed: Uint8Array
  /** SHA-256 of the signed body of the challenge judged (challengeDigest): every result names one of its entries. */
  judged: Uint8Array
  /** Sorted by peer id, one per peer; signed through their Merkle root (see VerdictHeader). */
  results: VerdictResult[]
}

/**
 * A verdict as it comes off the wire (v8): its signed header, and its results as entries of the
 * judged challenge (verdict-entries.ts), until a node holding that challenge resolves it (resolveVerdict).
 */
export interface VerdictDigest {
  t: 'verdict-digest'
  net: string
  r: number
  peer: string
  seed: Uint8Array
  judged: Uint8Array
  rr: Uint8Array
  count: number
  entries: VerdictEntry[]
}

/** What a validator signs of a verdict: the round, and the root over its results and their count. */
export interface VerdictHeader {
  t: 'verdict'
  net: string
  r: number
  peer: string
  seed: Uint8Array
  /** Present from v8 on. */
  judged?: Uint8Array
  rr: Uint8Array
  count: number
}

export type PulseMessage = CommitMessage | ChallengeMessage | RevealMessage | VerdictMessage
/** What decodePulse gives: a verdict still to be resolved against its challenge. */
export type WireMessage = Exclude<PulseMessage, VerdictMessage> | VerdictDigest
/** What a node's engine takes in: off the wire, or whole (its own, and in tests). */
export type ReceivedMessage = PulseMessage | VerdictDigest

export interface SignedPulseMessage<M extends PulseMessage | VerdictDigest = PulseMessage> {
  message: M
  body: Uint8Array
  sig: Uint8Array
}

/** Proves the leader's VRF over an input with the node's key (see ChallengeMessage.vrf). */
export interface BeaconProver {
  prove(input: Uint8Array): Promise<Uint8Array>
}

/** The VRF output of `proof` over `input` for `peerId`'s key, or undefined when the proof is not valid. */
export type BeaconVerifier = (peerId: string, input: Uint8Array, proof: Uint8Array) => Uint8Array | undefined

export const VRF_PROOF_BYTES = 80

const DOMAIN = utf8('hyperspace-pulse-v1')
const LIMITS: Record<PulseMessage['t'], number> = {
  commit: 1024,
  challenge: 64 * 1024,
  reveal: 8 * 1024,
  verdict: 1024
}
export const PULSE_MAX_BYTES = 64 * 1024 + 256
/** The largest reveal envelope: its body, the signature and the envelope's own fields. */
export const REVEAL_ENVELOPE_MAX_BYTES = LIMITS.reveal + 256

export function signedData (body: Uint8Array): Uint8Array {
  return concat(DOMAIN, body)
}

/** The body a message is signed as: a verdict's results are replaced by their root and count. */
function bodyRecord (message: PulseMessage): Record<string, unknown> {
  if (message.t !== 'verdict') return { v: PULSE_VERSION, ...message }
  const { results, ...header } = message
  return { v: PULSE_VERSION, ...header, rr: resultsTree(results).root, count: results.length }
}

export async function signPulse<M extends PulseMessage> (message: M, signer: PulseSigner): Promise<SignedPulseMessage<M>> {
  if (message.peer !== signer.peerId) throw new RangeError('a node signs only its own messages')
  // Verdict results are signed in peer order, whatever order they were listed in; caps are signed in
  // the one order the wire's bit sets give back.
  const signedMessage = message.t === 'verdict'
    ? { ...message, results: [...message.results].sort((a, b) => (a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0)).map(r => ({ ...r, caps: canonicalCaps(r.caps) })) }
    : message.t === 'commit' ? { ...message, caps: canonicalCaps(message.caps) } : message
  const body = encodeMessage(bodyRecord(signedMessage))
  const sig = await signer.sign(signedData(body))
  return { message: signedMessage, body, sig }
}

/** Whether two commits are the same (root and session); a peer with two different ones in a round runs in two places. */
export function sameCommit (a: CommitMessage | undefined, b: CommitMessage): boolean {
  return a !== undefined && equalBytes(a.root, b.root) && equalBytes(a.sid, b.sid)
}

/**
 * The wire bytes of a signed message (pulse-compact.ts). A verdict's results travel as entries of the
 * challenge it judged: `judged` is that challenge, whose commit list is needed here (RangeError
 * without it, or for a result it does not list).
 */
export function encodeSigned (signed: SignedPulseMessage, judged?: ChallengeMessage): Uint8Array {
  const message = signed.message
  const body = bodyOf(signed.body)
  if (message.t !== 'verdict') return encodeMessage({ v: body.v, m: packBody(body), s: signed.sig })
  if (judged === undefined) throw new RangeError('a verdict is sent with the challenge it judged')
  return encodeMessage({ v: body.v, m: packBody(body, encodeEntries(message.results, judged.commits)), s: signed.sig })
}

/** A commit, challenge or reveal as a node keeps it in its records: the signed body itself (read with decodePulse's `kept`). */
export function encodeKept (signed: SignedPulseMessage): Uint8Array {
  if (signed.message.t === 'verdict') throw new RangeError('records keep attestations, not verdicts')
  return encodeMessage({ v: PULSE_VERSION, body: signed.body, sig: signed.sig })
}

const digests = new WeakMap<SignedPulseMessage<ChallengeMessage>, Uint8Array>()

/** What a verdict's `judged` names a challenge by: SHA-256 of its signed body (hashed once per challenge). */
export function challengeDigest (signed: SignedPulseMessage<ChallengeMessage>): Uint8Array {
  let digest = digests.get(signed)
  if (digest === undefined) {
    digest = sha256Of(signed.body)
    digests.set(signed, digest)
  }
  return digest
}

/** Each digest's resolution against each challenge: `null` where it does not resolve. */
const resolutions = new WeakMap<SignedPulseMessage<VerdictDigest>, WeakMap<SignedPulseMessage<ChallengeMessage>, SignedPulseMessage<VerdictMessage> | null>>()

/**
 * The verdict a digest stands for, given the challenge it judged (its `judged` must be that
 * challenge's digest); undefined when its entries do not give the signed root and count, which
 * only its own signer can have caused. Resolved once per digest and challenge: where one decoded
 * message reaches many engines (the simulator's thousands of nodes), they share the rebuilt results
 * and their tree is hashed once, as a decoded v7 verdict was.
 */
export function resolveVerdict (signed: SignedPulseMessage<VerdictDigest>, challenge: SignedPulseMessage<ChallengeMessage>): SignedPulseMessage<VerdictMessage> | undefined {
  let byChallenge = resolutions.get(signed)
  if (byChallenge === undefined) {
    byChallenge = new WeakMap()
    resolutions.set(signed, byChallenge)
  }
  let resolved = byChallenge.get(challenge)
  if (resolved === undefined) {
    resolved = rebuildVerdict(signed, challenge) ?? null
    byChallenge.set(challenge, resolved)
  }
  return resolved ?? undefined
}

function rebuildVerdict (signed: SignedPulseMessage<VerdictDigest>, challenge: SignedPulseMessage<ChallengeMessage>): SignedPulseMessage<VerdictMessage> | undefined {
  const digest = signed.message
  if (!equalBytes(challengeDigest(challenge), digest.judged)) return undefined
  const results = resultsOf(digest.entries, challenge.message.commits)
  if (results === undefined || results.length !== digest.count || !equalBytes(resultsTree(results).root, digest.rr)) return undefined
  const message: VerdictMessage = { t: 'verdict', net: digest.net, r: digest.r, peer: digest.peer, seed: digest.seed, judged: digest.judged, results }
  return { message, body: signed.body, sig: signed.sig }
}

function decodeBody (record: Record<string, unknown>): Exclude<PulseMessage, VerdictMessage> | VerdictHeader {
  const base = {
    net: typeof record.net === 'string' && record.net.length <= 48 ? record.net : fail('net must be a network id'),
    r: uintField(record.r, 'r'),
    peer: peerField(record.peer, 'peer')
  }
  switch (record.t) {
    case 'commit': {
      const n = uintField(record.n, 'n', MAX_N)
      if (n < MIN_N) fail(`n must be at least ${MIN_N}`)
      const commit: CommitMessage = { t: 'commit', ...base, seed: bytesField(record.seed, 'seed', 32), root: bytesField(record.root, 'root', 32), n, caps: capsField(record.caps), sid: bytesField(record.sid, 'sid', 8) }
      if (record.committees !== undefined) {
        // One committee is said by leaving the field out: one meaning, one encoding.
        if (typeof record.committees !== 'number' || !isCommitteeCount(record.committees) || record.committees === 1) fail('committees must be a power of two above 1')
        commit.committees = record.committees
      }
      return commit
    }
    case 'challenge': {
      const commits = listField(record.commits, 'commits', MAX_COMMITTEE).map(entry => {
        if (!Array.isArray(entry) || entry.length !== 2) fail('a commit entry must be [peer, root]')
        return [peerField(entry[0], 'commit peer'), bytesField(entry[1], 'commit root', 32)] as [string, Uint8Array]
      })
      for (let i = 1; i < commits.length; i++) {
        if ((commits[i - 1] as [string, Uint8Array])[0] >= (commits[i] as [string, Uint8Array])[0]) fail('commits must be sorted by peer id, without repeats')
      }
      return { t: 'challenge', ...base, seed: bytesField(record.seed, 'seed', 32), commits, k: uintField(record.k, 'k', MAX_CHALLENGE_ROWS), vrf: bytesField(record.vrf, 'vrf', VRF_PROOF_BYTES), rowsVrf: bytesField(record.rowsVrf, 'rowsVrf', VRF_PROOF_BYTES) }
    }
    case 'reveal': {
      const rows = listField(record.rows, 'rows', MAX_CHALLENGE_ROWS).map(i => uintField(i, 'row', MAX_N - 1))
      if (rows.some((i, j) => j > 0 && i <= (rows[j - 1] as number))) fail('revealed rows must be ascending, without repeats')
      // k audit paths of at most 11 hashes bound a multiproof of k rows.
      const proof = listField(record.proof, 'proof', MAX_CHALLENGE_ROWS * 11).map(p => bytesField(p, 'proof hash', 32))
      return { t: 'reveal', ...base, leader: peerField(record.leader, 'leader'), rows, proof }
    }
    case 'verdict': {
      const header: VerdictHeader = { t: 'verdict', ...base, seed: bytesField(record.seed, 'seed', 32), rr: bytesField(record.rr, 'rr', 32), count: uintField(record.count, 'count', MAX_COMMITTEE) }
      // v8 on names the challenge judged; earlier headers, read from kept attestations, do not.
      if ((record.v as number) >= JUDGED_SINCE) header.judged = bytesField(record.judged, 'judged', 32)
      else if (record.judged !== undefined) fail('judged appeared in v8')
      return header
    }
    default:
      return fail('unknown pulse message type')
  }
}

/** A signed verdict header's body, as kept in an attestation: strict CBOR, version and fields, no signature check. */
export function decodeVerdictBody (body: Uint8Array): VerdictHeader {
  const header = decodeBody(decodeMessage(body, LIMITS.verdict, KEPT_VERSIONS))
  if (header.t !== 'verdict') fail('not a verdict')
  return header
}

/** The signed body, signature and verdict entries a wire message (`m`) stands for. */
function fromWire (envelope: Record<string, unknown>): { body: Uint8Array, sig: Uint8Array, res?: unknown } {
  if (Object.keys(envelope).length !== 3 || envelope.s === undefined) fail('a pulse message is { v, m, s }')
  const { body, entries } = unpackBody(envelope.m, MAX_COMMITTEE)
  return { body: encodeMessage({ v: envelope.v, ...body }), sig: bytesField(envelope.s, 'sig', 64), res: entries }
}

/** A kept record's full envelope `{ v, body, sig }`. */
function fromRecord (envelope: Record<string, unknown>): { body: Uint8Array, sig: Uint8Array, res?: unknown } {
  return { body: bytesField(envelope.body, 'body', undefined, PULSE_MAX_BYTES), sig: bytesField(envelope.sig, 'sig', 64), res: envelope.res }
}

/**
 * Decodes and checks a signed pulse message: size before parsing, strict canonical CBOR, version,
 * every field, a verdict's results against its signed root, then the author's signature. Throws a
 * named HyperspaceError on anything wrong. A `kept` message (from a node's records, not the topic)
 * may be of any version whose records still verify, in its full envelope or the wire's.
 */
export async function decodePulse (bytes: Uint8Array, verify: PulseVerifier, kept = false): Promise<SignedPulseMessage<WireMessage>> {
  const versions = kept ? KEPT_VERSIONS : PULSE_VERSION
  const envelope = decodeMessage(bytes, PULSE_MAX_BYTES, versions)
  const wire = envelope.m !== undefined
  // One form per message on the wire; the full envelope is a record's, and the wire's is this version's.
  if (wire ? envelope.v !== PULSE_VERSION : !kept) fail(wire ? `the wire form is v${PULSE_VERSION}'s` : 'a pulse message travels as { v, m, s }')
  const { body, sig, res } = wire ? fromWire(envelope) : fromRecord(envelope)
  const decoded = decodeBody(decodeMessage(body, PULSE_MAX_BYTES, versions))
  if (body.byteLength > LIMITS[decoded.t]) fail(`${decoded.t} exceeds ${LIMITS[decoded.t]} bytes`)
  let message: WireMessage
  if (decoded.t === 'verdict') {
    // Only a verdict of this version travels: kept records hold attestations, never whole verdicts.
    if (decoded.judged === undefined) fail('a verdict names the challenge it judged')
    const entries = decodeEntries(res, MAX_COMMITTEE)
    if (entries.length !== decoded.count) fail('verdict results do not match their signed count')
    message = { t: 'verdict-digest', net: decoded.net, r: decoded.r, peer: decoded.peer, seed: decoded.seed, judged: decoded.judged, rr: decoded.rr, count: decoded.count, entries }
  } else {
    if (res !== undefined) fail('only a verdict carries results')
    message = decoded
  }
  await requireSignature(verify, message.peer, signedData(body), sig)
  return { message, body, sig }
}
