import { isCapabilityName, type CapabilityName } from '../capabilities.ts'
import { decodeMessage, encodeMessage } from '../cbor.ts'
import { BadSignatureError, MalformedMessageError } from '../errors.ts'
import { concat, utf8 } from './bytes.ts'
import { isCommitteeCount } from './committee.ts'
import { MAX_N, MIN_N } from './work.ts'

/**
 * Pulse messages. Each is a signed envelope `{ v: 1, body, sig }` where `body` is the canonical CBOR
 * of the message and `sig` the author's Ed25519 signature over "hyperspace-pulse-v1" | body. The
 * author is the body's `peer`, so a verdict stored today can be checked by anyone later, without the
 * gossip message it came in.
 */

export const PULSE_VERSION = 3
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
   * its output drives the next seed and the challenged rows, and only one output verifies per key and
   * round, so a leader cannot grind either (its Ed25519 signature could be re-made with other nonces).
   */
  vrf: Uint8Array
}

/**
 * The inclusion proof of challenged row `i`. The row itself is not sent: the validator recomputes it
 * from the seed anyway, and a proof verifies only for the right row, so sending it would only add n·4
 * bytes per row to every copy of every reveal.
 */
export interface RevealedRow {
  i: number
  proof: Uint8Array[]
}

export interface RevealMessage {
  t: 'reveal'
  net: string
  r: number
  peer: string
  /** Which challenge this answers. */
  leader: string
  rows: RevealedRow[]
}

/**
 * `duplicate-identity`: the validator saw two different commits under this peer id in the round.
 * `bad-challenge`: the peer published a challenge the validator found invalid (a false root, an omitted commit).
 */
export type StrikeReason = 'no-reveal' | 'wrong-row' | 'bad-proof' | 'wrong-rows-challenged' | 'duplicate-identity' | 'bad-challenge'
export const STRIKE_REASONS: readonly StrikeReason[] = ['no-reveal', 'wrong-row', 'bad-proof', 'wrong-rows-challenged', 'duplicate-identity', 'bad-challenge']

export interface VerdictResult {
  peer: string
  ok: boolean
  reason?: StrikeReason
  root: Uint8Array
  caps: CapabilityName[]
}

export interface VerdictMessage {
  t: 'verdict'
  net: string
  r: number
  /** The validator. */
  peer: string
  seed: Uint8Array
  results: VerdictResult[]
}

export type PulseMessage = CommitMessage | ChallengeMessage | RevealMessage | VerdictMessage

export interface SignedPulseMessage<M extends PulseMessage = PulseMessage> {
  message: M
  body: Uint8Array
  sig: Uint8Array
}

export interface PulseSigner {
  peerId: string
  sign(data: Uint8Array): Promise<Uint8Array>
}

export type PulseVerifier = (peerId: string, data: Uint8Array, sig: Uint8Array) => Promise<boolean>

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
  verdict: 64 * 1024
}
export const PULSE_MAX_BYTES = 64 * 1024 + 256
const PEER_ID = /^[1-9A-HJ-NP-Za-km-z]{40,60}$/

export function signedData (body: Uint8Array): Uint8Array {
  return concat(DOMAIN, body)
}

export async function signPulse<M extends PulseMessage> (message: M, signer: PulseSigner): Promise<SignedPulseMessage<M>> {
  if (message.peer !== signer.peerId) throw new RangeError('a node signs only its own messages')
  const body = encodeMessage({ v: PULSE_VERSION, ...message })
  const sig = await signer.sign(signedData(body))
  return { message, body, sig }
}

export function encodeSigned (signed: SignedPulseMessage): Uint8Array {
  return encodeMessage({ v: PULSE_VERSION, body: signed.body, sig: signed.sig })
}

function fail (what: string): never {
  throw new MalformedMessageError(what)
}

function bytesField (value: unknown, name: string, length?: number, max = 4096): Uint8Array {
  if (!(value instanceof Uint8Array)) fail(`${name} must be bytes`)
  if (length !== undefined && value.byteLength !== length) fail(`${name} must be ${length} bytes`)
  if (value.byteLength > max) fail(`${name} is too long`)
  return value
}

function uintField (value: unknown, name: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > max) fail(`${name} must be an integer in [0, ${max}]`)
  return value
}

function peerField (value: unknown, name: string): string {
  if (typeof value !== 'string' || !PEER_ID.test(value)) fail(`${name} must be a peer id`)
  return value
}

function capsField (value: unknown): CapabilityName[] {
  if (!Array.isArray(value) || value.length > 9 || !value.every(isCapabilityName) || new Set(value).size !== value.length) {
    fail('caps must be distinct capability names')
  }
  return value
}

function listField (value: unknown, name: string, max: number): unknown[] {
  if (!Array.isArray(value) || value.length > max) fail(`${name} must be a list of at most ${max}`)
  return value
}

function decodeBody (record: Record<string, unknown>): PulseMessage {
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
      return { t: 'challenge', ...base, seed: bytesField(record.seed, 'seed', 32), commits, k: uintField(record.k, 'k', MAX_CHALLENGE_ROWS), vrf: bytesField(record.vrf, 'vrf', VRF_PROOF_BYTES) }
    }
    case 'reveal': {
      const rows = listField(record.rows, 'rows', MAX_CHALLENGE_ROWS).map(entry => {
        const row = entry as Record<string, unknown> | null
        if (typeof row !== 'object' || row === null) fail('a revealed row must be a map')
        const proof = listField(row.proof, 'proof', 11).map(p => bytesField(p, 'proof hash', 32))
        return { i: uintField(row.i, 'i', MAX_N - 1), proof }
      })
      return { t: 'reveal', ...base, leader: peerField(record.leader, 'leader'), rows }
    }
    case 'verdict': {
      const results = listField(record.results, 'results', MAX_COMMITTEE).map(entry => {
        const res = entry as Record<string, unknown> | null
        if (typeof res !== 'object' || res === null || typeof res.ok !== 'boolean') fail('a verdict result needs ok')
        const result: VerdictResult = { peer: peerField(res.peer, 'result peer'), ok: res.ok, root: bytesField(res.root, 'result root', 32), caps: capsField(res.caps) }
        if (res.reason !== undefined) {
          if (!STRIKE_REASONS.includes(res.reason as StrikeReason)) fail('unknown strike reason')
          result.reason = res.reason as StrikeReason
        }
        if (result.ok === (result.reason !== undefined)) fail('a strike needs a reason and a pass has none')
        return result
      })
      return { t: 'verdict', ...base, seed: bytesField(record.seed, 'seed', 32), results }
    }
    default:
      return fail('unknown pulse message type')
  }
}

/**
 * Decodes and checks a signed pulse message: size before parsing, strict canonical CBOR, version,
 * every field, then the author's signature. Throws a named HyperspaceError on anything wrong.
 */
export async function decodePulse (bytes: Uint8Array, verify: PulseVerifier): Promise<SignedPulseMessage> {
  const envelope = decodeMessage(bytes, PULSE_MAX_BYTES, PULSE_VERSION)
  const body = bytesField(envelope.body, 'body', undefined, PULSE_MAX_BYTES)
  const sig = bytesField(envelope.sig, 'sig', 64)
  const record = decodeMessage(body, PULSE_MAX_BYTES, PULSE_VERSION)
  const message = decodeBody(record)
  if (body.byteLength > LIMITS[message.t]) fail(`${message.t} exceeds ${LIMITS[message.t]} bytes`)
  let valid: boolean
  try {
    valid = await verify(message.peer, signedData(body), sig)
  } catch {
    // A peer field that looks like a peer id but is not one cannot have signed anything.
    valid = false
  }
  if (!valid) throw new BadSignatureError(message.peer)
  return { message, body, sig }
}
