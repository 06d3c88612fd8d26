import { generateKeyPair } from '@libp2p/crypto/keys'
import { attestationOf } from '../../src/core/pulse/attestation.ts'
import { encodeSigned, signPulse, type VerdictResult } from '../../src/core/wire/pulse.ts'
import type { PulseSigner } from '../../src/core/crypto/signing.ts'
import { countersign, encodeSignedReceipt, signAsClient } from '../../src/core/receipts/receipt.ts'
import { pulseSigner } from '../../src/net/pulse-keys.ts'
import type { CapabilityName } from '../../src/core/capabilities.ts'
import type { ProofHistory } from '../../src/core/points-proof/prove.ts'

/**
 * A prover's history made with real keys and signatures: its commits, its voters' verdicts over a
 * committee of `committee` members (the prover's result among fakes), the attestations cut from
 * them, and receipts it served. Tests forge from here; the benchmark measures a day of it.
 */

export const NET = 'dev-t90'
export const ROUND_MS = 90_000
export const FIRST_ROUND = 19_600_000

export interface World {
  subject: PulseSigner
  validators: PulseSigner[]
  client: PulseSigner
  history: ProofHistory
  records: Array<{ round: number, verified: boolean, commit?: Uint8Array }>
  attestations: Array<{ round: number, attestation?: Uint8Array }>
  receipts: Uint8Array[]
  seedOf: (round: number) => Uint8Array
  rootOf: (round: number) => Uint8Array
}

export async function signer (): Promise<PulseSigner> {
  return pulseSigner(await generateKeyPair('Ed25519'))
}

function bytes (label: string, round: number): Uint8Array {
  const out = new Uint8Array(32)
  new DataView(out.buffer).setUint32(0, round)
  out.set(new TextEncoder().encode(label).subarray(0, 28), 4)
  return out
}

/** Fake committee members: real-looking peer ids that never sign anything. */
function member (i: number): string {
  return `12D3KooW${String(i).padStart(44, 'Q').replace(/0/g, 'z')}`
}

export interface WorldOptions {
  rounds: number
  committee?: number
  voters?: number
  receipts?: number
  caps?: CapabilityName[]
  /** What each voter confirms of the caps (default: all of them). */
  confirmed?: CapabilityName[]
  /** The prover (default: a fresh key). */
  subject?: PulseSigner
  /** The first round (default FIRST_ROUND). */
  first?: number
}

/** A verdict of `validator` over the committee with `result` for the subject, and its attestation for the subject. */
export async function attest (validator: PulseSigner, round: number, seed: Uint8Array, result: VerdictResult, committee: number): Promise<Uint8Array> {
  const results: VerdictResult[] = [result, ...Array.from({ length: committee - 1 }, (_, i) => ({ peer: member(i), ok: true, root: bytes('other', i), caps: [] }))]
  // An attestation stands on its own: the challenge judged is named, never needed to check it.
  const signed = await signPulse({ t: 'verdict', net: NET, r: round, peer: validator.peerId, seed, judged: new Uint8Array(32), results }, validator)
  return attestationOf(signed, result.peer) as Uint8Array
}

export async function makeWorld (options: WorldOptions): Promise<World> {
  const committee = options.committee ?? 64
  const caps = options.caps ?? ['inference', 'validation']
  const confirmed = options.confirmed ?? caps
  const subject = options.subject ?? await signer()
  const first = options.first ?? FIRST_ROUND
  const validators = await Promise.all(Array.from({ length: options.voters ?? 3 }, signer))
  const client = await signer()
  const records: World['records'] = []
  const attestations: World['attestations'] = []
  const seedOf = (round: number): Uint8Array => bytes('seed', round)
  const rootOf = (round: number): Uint8Array => bytes(`root ${subject.peerId}`, round)
  for (let round = first; round < first + options.rounds; round++) {
    const seed = seedOf(round)
    const root = rootOf(round)
    const commit = await signPulse({ t: 'commit', net: NET, r: round, peer: subject.peerId, seed, root, n: 256, caps, sid: new Uint8Array(8) }, subject)
    records.push({ round, verified: true, commit: encodeSigned(commit) })
    for (const validator of validators) {
      attestations.push({ round, attestation: await attest(validator, round, seed, { peer: subject.peerId, ok: true, root, caps: confirmed }, committee) })
    }
  }
  const receipts: Uint8Array[] = []
  for (let i = 0; i < (options.receipts ?? 0); i++) {
    const body = {
      job: crypto.getRandomValues(new Uint8Array(16)), nonce: crypto.getRandomValues(new Uint8Array(16)), kind: 'inference' as const,
      server: subject.peerId, client: client.peerId, model: 'stories260K', units: 100 + i, cached: false,
      output: new Uint8Array(32), round: first + (i % options.rounds), ts: 1_764_000_000_000
    }
    receipts.push(encodeSignedReceipt(await countersign(await signAsClient(body, client), subject)))
  }
  const history: ProofHistory = {
    self: subject.peerId,
    rounds: (from, to) => records.filter(r => r.round >= from && r.round <= to),
    attestations: async (from, to) => attestations.filter(a => a.round >= from && a.round <= to),
    served: () => receipts
  }
  return { subject, validators, client, history, records, attestations, receipts, seedOf, rootOf }
}
