import { encodeMessage } from '../src/core/wire/cbor.ts'
import { multiproofLength } from '../src/core/pulse/merkle.ts'
import { encodeSigned, PULSE_VERSION, type ChallengeMessage, type PulseMessage } from '../src/core/wire/pulse.ts'

/**
 * Encoded sizes of pulse messages, from the real codec: what the simulator puts on its modelled wire
 * where it does not send a real message (reveals at the network's n, traffic without committees).
 */

const ROOT = new Uint8Array(32)

function signedBytes (message: PulseMessage, judged?: ChallengeMessage): number {
  // A verdict signs its results' root and count; the results travel beside the body (v4), as
  // entries of the challenge judged (v8).
  const body = encodeMessage(message.t === 'verdict'
    ? { v: PULSE_VERSION, t: message.t, net: message.net, r: message.r, peer: message.peer, seed: message.seed, judged: message.judged, rr: ROOT, count: message.results.length }
    : { v: PULSE_VERSION, ...message })
  return encodeSigned({ message, body, sig: new Uint8Array(64) }, judged).byteLength
}

export interface Shape {
  networkId: string
  round: number
  /** Any peer id of the network's shape (the simulated ones all have the same length). */
  peer: string
}

export function commitBytes ({ networkId, round, peer }: Shape): number {
  return signedBytes({ t: 'commit', net: networkId, r: round, peer, seed: ROOT, root: ROOT, n: 256, caps: [], sid: new Uint8Array(8) })
}

/** Row sets drawn to find a multiproof's mean length. */
const ROW_SAMPLES = 256

/** The mean number of hashes in the multiproof of k random distinct rows of n (deterministic). */
function meanMultiproofLength (n: number, k: number): number {
  let state = 1
  const next = (): number => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0
    return state
  }
  let total = 0
  for (let sample = 0; sample < ROW_SAMPLES; sample++) {
    const rows = new Set<number>()
    while (rows.size < Math.min(k, n)) rows.add(next() % n)
    total += multiproofLength([...rows].sort((a, b) => a - b), n)
  }
  return Math.round(total / ROW_SAMPLES)
}

/** A reveal of k random rows from an n x n product: their multiproof, of its mean length (the rows themselves are not sent). */
export function revealBytes ({ networkId, round, peer }: Shape, n: number, k: number): number {
  const rows = Array.from({ length: Math.min(k, n) }, (_, i) => i)
  const proof = Array.from({ length: meanMultiproofLength(n, k) }, () => ROOT)
  return signedBytes({ t: 'reveal', net: networkId, r: round, peer, leader: peer, rows, proof })
}

export function challengeBytes ({ networkId, round, peer }: Shape, commits: number, k: number): number {
  return signedBytes({ t: 'challenge', net: networkId, r: round, peer, seed: ROOT, commits: Array.from({ length: commits }, () => [peer, ROOT] as [string, Uint8Array]), k, vrf: new Uint8Array(80), rowsVrf: new Uint8Array(80) })
}

export function verdictBytes ({ networkId, round, peer }: Shape, results: number): number {
  const commits = Array.from({ length: results }, (_, i) => [`${peer}${String(i).padStart(3, '0')}`, ROOT] as [string, Uint8Array])
  const judged: ChallengeMessage = { t: 'challenge', net: networkId, r: round, peer, seed: ROOT, commits, k: 8, vrf: new Uint8Array(80), rowsVrf: new Uint8Array(80) }
  return signedBytes({ t: 'verdict', net: networkId, r: round, peer, seed: ROOT, judged: ROOT, results: commits.map(([listed]) => ({ peer: listed, ok: true, root: ROOT, caps: [] })) }, judged)
}

/**
 * How many bytes a reveal grows by when the network's matrices are `wireN` instead of the `n` the
 * simulated nodes compute: the simulator computes small products but counts and times reveals at
 * the size the real network sends. Only reveals depend on n (through their proofs' length).
 */
export function revealGrowth (shape: Shape, n: number, wireN: number, k: number): number {
  return revealBytes(shape, wireN, k) - revealBytes(shape, n, k)
}
