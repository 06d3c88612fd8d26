import { describe, expect, it } from 'vitest'
import { encodeMessage, decodeMessage } from '../../src/core/wire/cbor.ts'
import { MalformedMessageError, OversizeMessageError } from '../../src/core/errors.ts'
import { readAttestation } from '../../src/core/pulse/attestation.ts'
import { PULSE_VERSION, encodeSigned, signPulse } from '../../src/core/wire/pulse.ts'
import { countersign, encodeSignedReceipt, signAsClient } from '../../src/core/receipts/receipt.ts'
import { checkProof, type CheckRules, type PointsCheck } from '../../src/core/points-proof/check.ts'
import { claimPresenceByRound, type RoundClaim } from '../../src/core/points-proof/claims.ts'
import {
  FRAME_LIMITS, MAX_PERIOD_ROUNDS, PROOF_MAX_BYTES, SAMPLE_ROUNDS, decodeProverFrame, encodeProofFrame,
  type AskFrame, type EvidenceFrame, type PickFrame, type RoundEvidence, type SummaryFrame
} from '../../src/core/wire/points.ts'
import { CAPABILITY_NAMES, type CapabilityName } from '../../src/core/capabilities.ts'
import { prepareProof } from '../../src/core/points-proof/prove.ts'
import { pickSamples } from '../../src/core/points-proof/sample.ts'
import { verifyPulseSignature } from '../../src/net/pulse-keys.ts'
import { FIRST_ROUND, NET, ROUND_MS, attest, makeWorld, signer, type World } from './points-world.ts'

/**
 * Points anyone can check (issue 12): a prover's summary, the checker's random picks, the prover's
 * evidence, and the pure check. Most of this file is forgeries, each caught with its named reason.
 */

const ROUNDS = 8

function rulesFor (world: World, counted = world.validators.map(v => v.peerId)): CheckRules {
  return { subject: world.subject.peerId, networkId: NET, roundMs: ROUND_MS, verify: verifyPulseSignature, counts: v => counted.includes(v) }
}

const ask: AskFrame = { t: 'ask', net: NET, from: FIRST_ROUND, to: FIRST_ROUND + ROUNDS - 1 }

/** Through the wire encoding both ways, as the protocol carries them. */
function wire<T extends SummaryFrame | EvidenceFrame> (frame: T): T {
  return decodeProverFrame(encodeProofFrame(frame), frame.t) as T
}

async function honest (world: World): Promise<{ summary: SummaryFrame, pick: PickFrame, evidence: EvidenceFrame }> {
  const proof = await prepareProof(world.history, ask.from, ask.to)
  const summary = wire(proof.summary)
  const pick = pickSamples(summary)
  return { summary, pick, evidence: wire(proof.evidence(pick)) }
}

function expectUnchecked (result: PointsCheck, reason: string): void {
  expect(result.checked ? 'checked' : `${result.reason} (${result.detail})`).toMatch(new RegExp(`^${reason} `))
}

/** The evidence with round `i`'s attestations replaced. */
function withAttestations (evidence: EvidenceFrame, i: number, attestations: Uint8Array[]): EvidenceFrame {
  return { ...evidence, rounds: evidence.rounds.map((e, j) => j === i ? { ...e, attestations } : e) }
}

describe('an honest proof', () => {
  it('checks, and its points are the presence of the claimed rounds plus the served receipts', async () => {
    const world = await makeWorld({ rounds: ROUNDS, receipts: 5 })
    const { summary, pick, evidence } = await honest(world)
    expect(summary.rounds).toHaveLength(ROUNDS)
    expect(pick.rounds).toHaveLength(ROUNDS)
    const result = await checkProof(rulesFor(world), ask, summary, pick, evidence)
    if (!result.checked) throw new Error(result.detail)
    expect(result.presence).toBeCloseTo([...claimPresenceByRound(summary.rounds, ROUND_MS).values()].reduce((a, b) => a + b, 0))
    expect(result.presence).toBeGreaterThan(0)
    expect(result.work).toBeCloseTo((100 + 101 + 102 + 103 + 104) / 1000)
    expect(result.sampled).toEqual({ rounds: ROUNDS, receipts: 5, unknownRounds: 0 })
  })

  it('claims only rounds it can back: unverified, commit-less and single-voter rounds are left out', async () => {
    const world = await makeWorld({ rounds: ROUNDS })
    ;(world.records[0] as World['records'][number]).verified = false
    delete (world.records[1] as World['records'][number]).commit
    const third = FIRST_ROUND + 2
    world.attestations.splice(0, world.attestations.length, ...world.attestations.filter((a, i) => a.round !== third || i % 3 === 0))
    const { summary } = await honest(world)
    expect(summary.rounds.map(c => c.round)).toEqual(Array.from({ length: ROUNDS - 3 }, (_, i) => FIRST_ROUND + 3 + i))
  })

  it('claims the capabilities every shown voter confirmed, no more', async () => {
    const world = await makeWorld({ rounds: 2, caps: ['inference', 'validation', 'storage'], confirmed: ['inference', 'storage'] })
    const { summary } = await honest(world)
    expect(summary.rounds.map(c => c.caps)).toEqual([['inference', 'storage'], ['inference', 'storage']])
  })
})

describe('forged proofs', () => {
  it('a tampered leaf or a wrong path → malformed', async () => {
    const world = await makeWorld({ rounds: ROUNDS })
    const { summary, pick, evidence } = await honest(world)
    const first = evidence.rounds[0]?.attestations ?? []
    const record = decodeMessage(first[0] as Uint8Array, 2048, PULSE_VERSION)
    const tampered = encodeMessage({ ...record, res: { ...(record.res as object), caps: ['inference', 'validation', 'proxy'] } })
    expectUnchecked(await checkProof(rulesFor(world), ask, summary, pick, withAttestations(evidence, 0, [tampered, ...first.slice(1)])), 'malformed')
    const path = [...(record.path as Uint8Array[])].reverse()
    const rerouted = encodeMessage({ ...record, path })
    expectUnchecked(await checkProof(rulesFor(world), ask, summary, pick, withAttestations(evidence, 0, [rerouted, ...first.slice(1)])), 'malformed')
  })

  it('a flipped signature byte → bad-signature', async () => {
    const world = await makeWorld({ rounds: ROUNDS })
    const { summary, pick, evidence } = await honest(world)
    const first = evidence.rounds[0]?.attestations ?? []
    const record = decodeMessage(first[0] as Uint8Array, 2048, PULSE_VERSION)
    const sig = Uint8Array.from(record.sig as Uint8Array, (x, i) => i === 5 ? x ^ 1 : x)
    expectUnchecked(await checkProof(rulesFor(world), ask, summary, pick, withAttestations(evidence, 0, [encodeMessage({ ...record, sig }), ...first.slice(1)])), 'bad-signature')
  })

  it('one validator only → not-quorum', async () => {
    const world = await makeWorld({ rounds: ROUNDS })
    const { summary, pick, evidence } = await honest(world)
    const one = evidence.rounds[3]?.attestations.slice(0, 1) ?? []
    expectUnchecked(await checkProof(rulesFor(world), ask, summary, pick, withAttestations(evidence, 3, one)), 'not-quorum')
    // The same voter twice is still one voter.
    expectUnchecked(await checkProof(rulesFor(world), ask, summary, pick, withAttestations(evidence, 3, [...one, ...one])), 'not-quorum')
  })

  it('the subject passing itself does not count towards its quorum → not-quorum', async () => {
    const world = await makeWorld({ rounds: ROUNDS })
    const { summary, pick, evidence } = await honest(world)
    const round = pick.rounds[2] as number
    const own = await attest(world.subject, round, world.seedOf(round), { peer: world.subject.peerId, ok: true, root: world.rootOf(round), caps: ['inference'] }, 64)
    const one = evidence.rounds[2]?.attestations.slice(0, 1) ?? []
    expectUnchecked(await checkProof(rulesFor(world, [...world.validators.map(v => v.peerId), world.subject.peerId]), ask, summary, pick, withAttestations(evidence, 2, [...one, own])), 'not-quorum')
  })

  it('passes from fresh keys this checker does not count are not a pass: unknown-validators, or presence scaled by the rounds it could judge', async () => {
    const world = await makeWorld({ rounds: ROUNDS })
    const { summary, pick, evidence } = await honest(world)
    expectUnchecked(await checkProof(rulesFor(world, []), ask, summary, pick, evidence), 'unknown-validators')
    const full = await checkProof(rulesFor(world), ask, summary, pick, evidence)
    if (!full.checked) throw new Error(full.detail)
    // Sybils that sign whatever they are asked: two fresh keys pass a round that had no voters.
    const round = pick.rounds[1] as number
    const sybils = await Promise.all([signer(), signer()])
    const forged = await Promise.all(sybils.map(async s => await attest(s, round, world.seedOf(round), { peer: world.subject.peerId, ok: true, root: world.rootOf(round), caps: ['inference', 'validation'] }, 64)))
    const scaled = await checkProof(rulesFor(world), ask, summary, pick, withAttestations(evidence, 1, forged))
    if (!scaled.checked) throw new Error(scaled.detail)
    expect(scaled.sampled.unknownRounds).toBe(1)
    // Scaled by the share of the sampled rounds' points it could judge; the uptime streak starts again
    // after the round it could not.
    const byRound = claimPresenceByRound(summary.rounds, ROUND_MS)
    const sampledPoints = pick.rounds.reduce((sum, r) => sum + (byRound.get(r) ?? 0), 0)
    const credited = [...claimPresenceByRound(summary.rounds, ROUND_MS, new Set([round])).values()].reduce((a, b) => a + b, 0)
    expect(credited).toBeLessThan(full.presence)
    expect(scaled.presence).toBeCloseTo(credited * (sampledPoints - (byRound.get(round) ?? 0)) / sampledPoints, 12)
    expect(scaled.work).toBe(full.work)
  })

  it('a round whose quorum this checker knows only in part is scaled out, but the streak runs through it', async () => {
    const world = await makeWorld({ rounds: ROUNDS })
    const { summary, pick, evidence } = await honest(world)
    const full = await checkProof(rulesFor(world), ask, summary, pick, evidence)
    if (!full.checked) throw new Error(full.detail)
    // An honest round's voters are the network's validators: a checker whose view differs counts one of them.
    const round = pick.rounds[1] as number
    const voters = world.validators.slice(0, 2)
    const attestations = await Promise.all(voters.map(async v => await attest(v, round, world.seedOf(round), { peer: world.subject.peerId, ok: true, root: world.rootOf(round), caps: [] }, 64)))
    const partly = await checkProof(rulesFor(world, world.validators.filter(v => v !== voters[1]).map(v => v.peerId)), ask, summary, pick, withAttestations(evidence, 1, attestations))
    if (!partly.checked) throw new Error(partly.detail)
    expect(partly.sampled.unknownRounds).toBe(1)
    const byRound = claimPresenceByRound(summary.rounds, ROUND_MS)
    const sampledPoints = pick.rounds.reduce((sum, r) => sum + (byRound.get(r) ?? 0), 0)
    expect(partly.presence).toBeCloseTo(full.presence * (sampledPoints - (byRound.get(round) ?? 0)) / sampledPoints, 12)
  })

  it('passes for a root other than the committed one → mismatch', async () => {
    const world = await makeWorld({ rounds: ROUNDS })
    const { summary, pick, evidence } = await honest(world)
    const round = pick.rounds[0] as number
    const other = await Promise.all(world.validators.map(async v => await attest(v, round, world.seedOf(round), { peer: world.subject.peerId, ok: true, root: new Uint8Array(32).fill(7), caps: ['inference'] }, 64)))
    expectUnchecked(await checkProof(rulesFor(world), ask, summary, pick, withAttestations(evidence, 0, other)), 'mismatch')
    // And a summary whose root is not the commit's.
    const lying = { ...summary, rounds: summary.rounds.map((c, i) => i === 0 ? { ...c, root: new Uint8Array(32).fill(7) } : c) }
    expectUnchecked(await checkProof(rulesFor(world), ask, lying, pick, evidence), 'mismatch')
  })

  it('inflated capabilities: above the commit, or above what the voters confirmed → mismatch', async () => {
    const world = await makeWorld({ rounds: ROUNDS, caps: ['inference', 'validation'], confirmed: ['validation'] })
    const { summary, pick, evidence } = await honest(world)
    expect(summary.rounds[0]?.caps).toEqual(['validation'])
    const inflate = (caps: SummaryFrame['rounds'][number]['caps']): SummaryFrame => ({ ...summary, rounds: summary.rounds.map(c => ({ ...c, caps })) })
    expectUnchecked(await checkProof(rulesFor(world), ask, inflate(['inference', 'validation']), pick, evidence), 'mismatch')
    expectUnchecked(await checkProof(rulesFor(world), ask, inflate(['validation', 'proxy']), pick, evidence), 'mismatch')
    expect((await checkProof(rulesFor(world), ask, summary, pick, evidence)).checked).toBe(true)
  })

  it('another peer\'s attestations, or a strike, shown as the subject\'s → mismatch', async () => {
    const world = await makeWorld({ rounds: ROUNDS })
    const other = await makeWorld({ rounds: ROUNDS })
    const { summary, pick, evidence } = await honest(world)
    const theirs = other.attestations.filter(a => a.round === pick.rounds[0]).map(a => a.attestation as Uint8Array)
    expectUnchecked(await checkProof(rulesFor(world, [...world.validators, ...other.validators].map(v => v.peerId)), ask, summary, pick, withAttestations(evidence, 0, theirs)), 'mismatch')
    const round = pick.rounds[0] as number
    const strikes = await Promise.all(world.validators.map(async v => await attest(v, round, world.seedOf(round), { peer: world.subject.peerId, ok: false, reason: 'wrong-row', root: world.rootOf(round), caps: [] }, 64)))
    expectUnchecked(await checkProof(rulesFor(world), ask, summary, pick, withAttestations(evidence, 0, strikes)), 'mismatch')
    // Another round's attestations for this one.
    const shifted = world.attestations.filter(a => a.round === (pick.rounds[1] as number)).map(a => a.attestation as Uint8Array)
    expectUnchecked(await checkProof(rulesFor(world), ask, summary, pick, withAttestations(evidence, 0, shifted)), 'mismatch')
    // Another peer's commit.
    const commits = { ...evidence, rounds: evidence.rounds.map((e, i) => i === 0 ? { ...e, commit: other.records[0]?.commit as Uint8Array } : e) }
    expectUnchecked(await checkProof(rulesFor(world), ask, summary, pick, commits), 'mismatch')
  })

  it('a summary claiming rounds the evidence does not back → mismatch', async () => {
    const world = await makeWorld({ rounds: ROUNDS })
    const proof = await prepareProof(world.history, ask.from, ask.to)
    // The prover adds two rounds it never committed in; with every round sampled, both are picked.
    const padded = { ...proof.summary, to: ask.to + 2, rounds: [...proof.summary.rounds, { round: ask.to + 1, root: new Uint8Array(32), caps: [] }, { round: ask.to + 2, root: new Uint8Array(32), caps: [] }] }
    const widerAsk = { ...ask, to: ask.to + 2 }
    const pick = pickSamples(padded)
    expectUnchecked(await checkProof(rulesFor(world), widerAsk, padded, pick, proof.evidence(pick)), 'mismatch')
    // Evidence for other rounds than picked, and a summary of another period.
    const honestPick = pickSamples(proof.summary)
    const dropped = { ...proof.evidence(honestPick), rounds: proof.evidence(honestPick).rounds.slice(1) }
    expectUnchecked(await checkProof(rulesFor(world), ask, proof.summary, honestPick, dropped), 'mismatch')
    expectUnchecked(await checkProof(rulesFor(world), { ...ask, from: ask.from + 1 }, proof.summary, honestPick, proof.evidence(honestPick)), 'mismatch')
  })

  it('receipts: another server\'s, a bad client signature, units above the receipt → caught', async () => {
    const world = await makeWorld({ rounds: 2, receipts: 2 })
    const twoRounds = { ...ask, to: FIRST_ROUND + 1 }
    const proof = await prepareProof(world.history, twoRounds.from, twoRounds.to)
    const pick = pickSamples(proof.summary)
    const evidence = proof.evidence(pick)
    const inflated = { ...proof.summary, receipts: proof.summary.receipts.map(c => ({ ...c, units: c.units + 500 })) }
    expectUnchecked(await checkProof(rulesFor(world), twoRounds, inflated, pick, evidence), 'mismatch')
    const stranger = await signer()
    const body = { job: new Uint8Array(16), nonce: new Uint8Array(16), kind: 'inference' as const, server: stranger.peerId, client: world.client.peerId, model: 'm', units: 5, cached: false, output: new Uint8Array(32), round: FIRST_ROUND, ts: 1 }
    const foreign = encodeSignedReceipt(await countersign(await signAsClient(body, world.client), stranger))
    expectUnchecked(await checkProof(rulesFor(world), twoRounds, proof.summary, pick, { ...evidence, receipts: [foreign, ...evidence.receipts.slice(1)] }), 'mismatch')
    const record = decodeMessage(evidence.receipts[0] as Uint8Array, 2048, 2)
    const badClient = encodeMessage({ ...record, cs: Uint8Array.from(record.cs as Uint8Array, (x, i) => i === 0 ? x ^ 1 : x) })
    expectUnchecked(await checkProof(rulesFor(world), twoRounds, proof.summary, pick, { ...evidence, receipts: [badClient, ...evidence.receipts.slice(1)] }), 'bad-signature')
  })

  it('oversize and over-long answers are refused before they are parsed', async () => {
    const huge = encodeMessage({ v: 1, t: 'summary', from: 0, to: 0, rounds: [], receipts: [], pad: new Uint8Array(FRAME_LIMITS.summary) })
    expect(() => decodeProverFrame(huge, 'summary')).toThrow(OversizeMessageError)
    const tooMany = { t: 'summary' as const, from: 0, to: MAX_PERIOD_ROUNDS, rounds: Array.from({ length: MAX_PERIOD_ROUNDS + 1 }, (_, round) => ({ round, root: new Uint8Array(32), caps: [] })), receipts: [] }
    expect(() => decodeProverFrame(encodeProofFrame(tooMany), 'summary')).toThrow(MalformedMessageError)
    const unsorted = { t: 'summary' as const, from: 0, to: 9, rounds: [5, 3].map(round => ({ round, root: new Uint8Array(32), caps: [] })), receipts: [] }
    expect(() => decodeProverFrame(encodeProofFrame(unsorted), 'summary')).toThrow(MalformedMessageError)
    const outside = { ...unsorted, rounds: [{ round: 10, root: new Uint8Array(32), caps: [] }] }
    expect(() => decodeProverFrame(encodeProofFrame(outside), 'summary')).toThrow(MalformedMessageError)
    expect(PROOF_MAX_BYTES).toBe(256 * 1024)
  })
})

describe('a period padded with rounds nobody this checker counts voted on', () => {
  const PERIOD = 1024
  /** One real verified round in 8, without capabilities: gaps longer than the grace, so no streak of its own. */
  const EVERY = 8
  const ALL: CapabilityName[] = [...CAPABILITY_NAMES]
  const bytes32 = (label: string, round: number): Uint8Array => {
    const out = new Uint8Array(32)
    new DataView(out.buffer).setUint32(0, round)
    out.set(new TextEncoder().encode(label).subarray(0, 28), 4)
    return out
  }

  it('gains neither the padded rounds\' claimed capabilities nor the uptime streak they bridge', async () => {
    const subject = await signer()
    const validators = await Promise.all([signer(), signer(), signer()])
    // Two fresh keys pass every invented round: this checker does not count them, so those rounds are unknown, not lies.
    const fakes = await Promise.all([signer(), signer()])
    const counted = new Set(validators.map(v => v.peerId))
    const rules: CheckRules = { subject: subject.peerId, networkId: NET, roundMs: ROUND_MS, verify: verifyPulseSignature, counts: v => counted.has(v) }
    const periodAsk: AskFrame = { t: 'ask', net: NET, from: FIRST_ROUND, to: FIRST_ROUND + PERIOD - 1 }
    const real = (round: number): boolean => (round - FIRST_ROUND) % EVERY === 0
    const rootOf = (round: number): Uint8Array => bytes32(`root ${subject.peerId}`, round)
    const claim = (round: number): RoundClaim => ({ round, root: rootOf(round), caps: real(round) ? [] : ALL })
    const evidenceFor = async (round: number): Promise<RoundEvidence> => {
      const caps = real(round) ? [] : ALL
      const seed = bytes32('seed', round)
      const commit = await signPulse({ t: 'commit', net: NET, r: round, peer: subject.peerId, seed, root: rootOf(round), n: 256, caps, sid: new Uint8Array(8) }, subject)
      const attestations = await Promise.all((real(round) ? validators : fakes).map(async v => await attest(v, round, seed, { peer: subject.peerId, ok: true, root: rootOf(round), caps }, 64)))
      return { commit: encodeSigned(commit), attestations }
    }
    const rounds = Array.from({ length: PERIOD }, (_, i) => FIRST_ROUND + i)
    // A sample as the padded period's own mix: 6 real rounds among 48 (every 21st round; the 8th ones are real).
    const sampled = Array.from({ length: 48 }, (_, i) => FIRST_ROUND + i * 21)
    const check = async (claims: RoundClaim[], picked: number[]): Promise<number> => {
      const summary: SummaryFrame = { t: 'summary', from: periodAsk.from, to: periodAsk.to, rounds: claims, receipts: [] }
      const result = await checkProof(rules, periodAsk, summary, { t: 'pick', rounds: picked, receipts: [] }, { t: 'evidence', rounds: await Promise.all(picked.map(evidenceFor)), receipts: [] })
      if (!result.checked) throw new Error(result.detail)
      return result.presence
    }
    const honestPresence = await check(rounds.filter(real).map(claim), sampled.filter(real))
    const padded = await check(rounds.map(claim), sampled)
    // By the share of sampled rounds confirmed (6 of 48) it was 1.8 times the honest figure: 1.49 of it
    // the capabilities. Scaled by the share of the sampled points, 1.2 times: the streak the invented
    // rounds bridge over the real ones' gaps. A streak now starts again after each round this checker
    // could not judge, so the padding bridges at most the stretch between two sampled rounds.
    expect(padded / honestPresence).toBeLessThan(1.05)
  })
})

describe('sampling and size', () => {
  it('picks SAMPLE_ROUNDS distinct claimed rounds, all of them when fewer', () => {
    const summary: SummaryFrame = { t: 'summary', from: 0, to: 999, rounds: Array.from({ length: 960 }, (_, round) => ({ round, root: new Uint8Array(32), caps: [] })), receipts: [] }
    const pick = pickSamples(summary)
    expect(pick.rounds).toHaveLength(SAMPLE_ROUNDS)
    expect(new Set(pick.rounds).size).toBe(SAMPLE_ROUNDS)
    expect(pickSamples({ ...summary, rounds: summary.rounds.slice(0, 5) }).rounds).toEqual([0, 1, 2, 3, 4])
  })

  it('an attestation is a few hundred bytes, and a commit round trips its root', async () => {
    const world = await makeWorld({ rounds: 1 })
    const bytes = world.attestations[0]?.attestation as Uint8Array
    expect(bytes.byteLength).toBeLessThan(800)
    expect(readAttestation(bytes).result.peer).toBe(world.subject.peerId)
    const commit = await signPulse({ t: 'commit', net: NET, r: 1, peer: world.subject.peerId, seed: new Uint8Array(32), root: new Uint8Array(32), n: 256, caps: [], sid: new Uint8Array(8) }, world.subject)
    expect(encodeSigned(commit).byteLength).toBeLessThan(400)
  })
})
