import { describe, expect, it } from 'vitest'
import { checkProof, type CheckRules } from '../../src/core/points-proof/check.ts'
import { prepareProof, type ProofHistory } from '../../src/core/points-proof/prove.ts'
import { pickSamples } from '../../src/core/points-proof/sample.ts'
import { attestationOf } from '../../src/core/pulse/attestation.ts'
import { equalBytes, sha256Of, utf8 } from '../../src/core/crypto/bytes.ts'
import { encodeSigned, MAX_COMMITTEE, signPulse } from '../../src/core/wire/pulse.ts'
import type { PulseSigner } from '../../src/core/crypto/signing.ts'
import { countsInRound } from '../../src/core/pulse/validators.ts'
import { N, NET, PulseBus, ROUND_MS, type BusNode } from './pulse-bus.ts'

/**
 * Scripted attackers against the real pulse engine (virtual time, every message admitted as GossipSub
 * would). Each test names an attack and asserts that the attacker gains nothing and honest nodes lose
 * nothing.
 */

function committedRounds (node: BusNode, from: number, to: number): number[] {
  const rounds: number[] = []
  for (let r = from; r < to; r++) if (node.book.get(r).committed) rounds.push(r)
  return rounds
}

function verifiedRounds (node: BusNode, from: number, to: number): number[] {
  const rounds: number[] = []
  for (let r = from; r < to; r++) if (node.book.get(r).verified) rounds.push(r)
  return rounds
}

/** Every honest node committed and was verified in every round of [from, to). */
function expectAllVerified (nodes: BusNode[], from: number, to: number): void {
  for (const node of nodes) {
    expect(committedRounds(node, from, to), `${node.name} committed`).toHaveLength(to - from)
    expect(verifiedRounds(node, from, to), `${node.name} verified`).toHaveLength(to - from)
  }
}

interface AgedScene { bus: PulseBus, honest: BusNode[], attackers: PulseSigner[], from: number }

/**
 * A bus seeded `seed` with five honest pages and `attackers` keys the test drives itself, all aged in
 * every view, run `warmUp` rounds; `from` is the round the attack starts in.
 */
async function agedNetworkWithAttackers (seed: number, attackers: number, warmUp: number): Promise<AgedScene> {
  const bus = new PulseBus(seed)
  const honest = bus.add(['a', 'b', 'c', 'd', 'e'].map(name => ({ name, kind: 'honest' as const, aged: true })))
  const keys = bus.agedKeys(attackers)
  await bus.runRounds(warmUp)
  return { bus, honest, attackers: keys, from: bus.round }
}

describe('the pulse against a hostile peer', () => {
  it('a young network: the anchor alone verifies, honest nodes earn every round', async () => {
    const bus = new PulseBus(1)
    bus.add([{ name: 'relay', kind: 'anchor' }, { name: 'a', kind: 'honest' }, { name: 'b', kind: 'honest' }, { name: 'c', kind: 'honest' }])
    await bus.runRounds(2)
    const from = bus.round
    await bus.runRounds(3)
    expectAllVerified(['a', 'b', 'c'].map(n => bus.node(n)), from, bus.round - 1)
  })

  it('seed hijack: a challenge for the next round with a chosen seed is never adopted', async () => {
    const bus = new PulseBus(2)
    const honest = bus.add([{ name: 'relay', kind: 'anchor' }, { name: 'a', kind: 'honest' }, { name: 'b', kind: 'honest' }, { name: 'c', kind: 'honest' }]).slice(1)
    await bus.runRounds(3)
    const attacker = bus.freshKey()
    // In the commit phase of round r it announces round r + 1 with a seed of its own, leading it alone.
    await bus.runTo(0.2)
    const next = bus.round + 1
    const chosen = sha256Of(utf8('attacker seed'))
    await bus.inject(attacker, { t: 'commit', net: NET, r: next, peer: attacker.peerId, seed: chosen, root: new Uint8Array(32), n: 16, caps: [], sid: new Uint8Array(8) })
    await bus.inject(attacker, { t: 'challenge', net: NET, r: next, peer: attacker.peerId, seed: chosen, commits: [[attacker.peerId, new Uint8Array(32)]], k: 4, ...await bus.proofs(attacker, next, chosen, [[attacker.peerId, new Uint8Array(32)]]) })
    await bus.runRounds(3)
    for (const node of honest) {
      const seed = node.engine.round(next)?.seed
      expect(seed, `${node.name} knows round ${next}'s seed`).toBeDefined()
      expect(equalBytes(seed as Uint8Array, chosen)).toBe(false)
      expect(equalBytes(seed as Uint8Array, honest[0]?.engine.round(next)?.seed as Uint8Array)).toBe(true)
    }
    expectAllVerified(honest, next, next + 2)
  })

  it('Sybil verdicts: fresh keys verify nobody, strike nobody and raise no identity conflict', async () => {
    const bus = new PulseBus(3)
    const [, a, b, cheater] = bus.add([{ name: 'relay', kind: 'anchor' }, { name: 'a', kind: 'honest' }, { name: 'b', kind: 'honest' }, { name: 'cheater', kind: 'wrong-work' }]) as BusNode[]
    const idle = bus.freshKey()
    await bus.runRounds(2)
    const from = bus.round
    for (let i = 0; i < 3; i++) {
      await bus.runTo(0.75)
      const r = bus.round
      const seed = a?.engine.round(r)?.seed as Uint8Array
      const rootOf = (node: BusNode | undefined): Uint8Array => node?.engine.round(r)?.commits.get(node.signer.peerId)?.message.root ?? new Uint8Array(32)
      for (let s = 0; s < 4; s++) {
        const sybil = bus.freshKey()
        await bus.inject(sybil, {
          t: 'verdict', net: NET, r, peer: sybil.peerId, seed, results: [
            { peer: cheater?.signer.peerId as string, ok: true, root: rootOf(cheater), caps: [] },
            { peer: idle.peerId, ok: true, root: new Uint8Array(32), caps: [] },
            { peer: a?.signer.peerId as string, ok: false, reason: 'duplicate-identity', root: rootOf(a), caps: [] },
            { peer: b?.signer.peerId as string, ok: false, reason: 'wrong-row', root: rootOf(b), caps: [] }
          ]
        })
      }
      await bus.runRounds(1)
    }
    expect(verifiedRounds(cheater as BusNode, from, bus.round)).toEqual([])
    expect(cheater?.book.get(from).strikes.map(s => s.reason)).toEqual(['wrong-row'])
    expectAllVerified([a as BusNode, b as BusNode], from, bus.round - 1)
    expect(a?.identityConflicts).toEqual([])
    expect(b?.book.get(from).strikes).toEqual([])
    // Only the anchor's verdicts were kept as attestations: spam costs the victim no disk.
    expect(new Set(a?.attestations.map(x => x.validator))).toEqual(new Set([bus.node('relay').signer.peerId]))
  })

  it('its own commit replayed to a node (the pulse\'s GossipSub lets anyone forward one) raises no identity conflict; another commit under its identity does', async () => {
    const bus = new PulseBus(3)
    const a = bus.add([{ name: 'relay', kind: 'anchor' }, { name: 'a', kind: 'honest' }, { name: 'b', kind: 'honest' }])[1] as BusNode
    await bus.runRounds(2)
    await bus.runTo(0.35)
    const r = bus.round
    const own = a.engine.round(r)?.commits.get(a.signer.peerId)
    if (own === undefined) throw new Error('a did not commit')
    bus.replay(encodeSigned(own))
    await bus.runTo(0.4)
    expect(a.identityConflicts).toEqual([])
    bus.replay(encodeSigned(await signPulse({ ...own.message, root: sha256Of(utf8('work done elsewhere')) }, a.signer)))
    await bus.runTo(0.45)
    expect(a.identityConflicts).toEqual([r])
  })

  it('aged keys below quorum: two aged attackers vouching for a cheater verify nothing', async () => {
    const bus = new PulseBus(4)
    const names = ['a', 'b', 'c', 'd', 'e']
    const honest = bus.add([...names.map(name => ({ name, kind: 'honest' as const, aged: true })), { name: 'cheater', kind: 'wrong-work', aged: true }])
    const cheater = bus.node('cheater')
    const attackers = bus.agedKeys(2)
    await bus.runRounds(2)
    const from = bus.round
    await bus.roundsWithCommits(attackers, 4, honest[0] as BusNode, async (r, seed) => {
      await bus.runTo(0.75)
      const root = cheater.engine.round(r)?.commits.get(cheater.signer.peerId)?.message.root as Uint8Array
      for (const key of attackers) {
        await bus.inject(key, { t: 'verdict', net: NET, r, peer: key.peerId, seed, results: [{ peer: cheater.signer.peerId, ok: true, root, caps: [] }] })
      }
    })
    expect(committedRounds(cheater, from, bus.round - 1)).toHaveLength(bus.round - 1 - from)
    expect(verifiedRounds(cheater, from, bus.round)).toEqual([])
    expectAllVerified(honest.slice(0, names.length), from, bus.round - 1)
  })

  it('commit flood: thousands of fresh keys past the cap cost honest nodes nothing and memory stays bounded', async () => {
    const bus = new PulseBus(5)
    const honest = bus.add(['a', 'b', 'c', 'd'].map(name => ({ name, kind: 'honest' as const, aged: true })))
    await bus.runRounds(2)
    await bus.runTo(0.1)
    const r = bus.round
    const seed = honest[0]?.engine.round(r)?.seed as Uint8Array
    for (let i = 0; i < MAX_COMMITTEE + 200; i++) {
      const key = bus.freshKey()
      await bus.inject(key, { t: 'commit', net: NET, r, peer: key.peerId, seed, root: sha256Of(utf8(key.peerId)), n: 16, caps: [], sid: new Uint8Array(8) })
    }
    await bus.runTo(0.9)
    for (const node of honest) {
      const state = node.engine.round(r)
      expect(state?.commits.size, `${node.name} holds a bounded commit set`).toBe(MAX_COMMITTEE)
      for (const other of honest) expect(state?.commits.has(other.signer.peerId), `${node.name} kept ${other.name}`).toBe(true)
    }
    await bus.runRounds(1)
    expectAllVerified(honest, r, r + 1)
  })

  it('a newcomer learns the chain by watching a round, and a lone liar cannot steer it', async () => {
    const bus = new PulseBus(6)
    const honest = bus.add([{ name: 'relay', kind: 'anchor' }, { name: 'a', kind: 'honest' }, { name: 'b', kind: 'honest' }, { name: 'c', kind: 'honest' }]).slice(1)
    await bus.runRounds(3)
    await bus.runTo(0.6)
    const [newcomer] = bus.add([{ name: 'newcomer', kind: 'honest' }]) as [BusNode]
    // In the first round the newcomer watches whole, a liar commits and leads under a seed of its own.
    await bus.runTo(0.05)
    const watched = bus.round
    const liar = bus.freshKey()
    const fake = sha256Of(utf8('fake chain'))
    const root = sha256Of(utf8('nothing'))
    await bus.inject(liar, { t: 'commit', net: NET, r: watched, peer: liar.peerId, seed: fake, root, n: 16, caps: [], sid: new Uint8Array(8) })
    await bus.runTo(0.43)
    await bus.inject(liar, { t: 'challenge', net: NET, r: watched, peer: liar.peerId, seed: fake, commits: [[liar.peerId, root]], k: 4, ...await bus.proofs(liar, watched, fake, [[liar.peerId, root]]) })
    await bus.runRounds(1)
    expect(equalBytes(newcomer.engine.round(watched + 1)?.seed as Uint8Array, honest[0]?.engine.round(watched + 1)?.seed as Uint8Array)).toBe(true)
    await bus.runRounds(2)
    expectAllVerified([newcomer], watched + 1, bus.round - 1)
  })

  it('a node that missed a challenge and forked onto its own seed follows the others back', async () => {
    const bus = new PulseBus(7)
    const honest = bus.add([{ name: 'relay', kind: 'anchor' }, { name: 'a', kind: 'honest' }, { name: 'b', kind: 'honest' }, { name: 'c', kind: 'honest' }]).slice(1)
    await bus.runRounds(3)
    // A committer that does not lead this round hears nothing from before the challenge to the round's
    // end: it sees no challenge and takes the empty beacon.
    await bus.runTo(0.35)
    const missed = bus.round
    const leader = honest[0]?.engine.round(missed)?.leaderRanking()[0]
    const deaf = honest.find(node => node.signer.peerId !== leader) as BusNode
    const other = honest.find(node => node !== deaf) as BusNode
    bus.deafen(deaf, 0.65 * 6_000)
    await bus.runRounds(1)
    expect(equalBytes(deaf.engine.round(missed + 1)?.seed as Uint8Array, other.engine.round(missed + 1)?.seed as Uint8Array), 'forked').toBe(false)
    await bus.runRounds(3)
    const back = missed + 2
    expect(equalBytes(deaf.engine.round(back)?.seed as Uint8Array, other.engine.round(back)?.seed as Uint8Array)).toBe(true)
    expectAllVerified(honest, back, bus.round - 1)
  })


  for (const [pages, aged] of [[3, false], [3, true], [2, false], [2, true]] as const) {
    it(`a node whose uplink was cut for 20 rounds comes back to the others' chain and is verified again (${pages} pages, ${aged ? 'aged' : 'young'} network)`, async () => {
      const bus = new PulseBus(9)
      const honest = bus.add([{ name: 'relay', kind: 'anchor' }, ...['a', 'b', 'c'].slice(0, pages).map(name => ({ name, kind: 'honest' as const, aged }))]).slice(1)
      await bus.runRounds(3)
      const cutOff = honest[pages - 1] as BusNode
      const other = honest[0] as BusNode
      bus.cut(cutOff, 20 * 6_000)
      await bus.runRounds(21)
      const healed = bus.round
      await bus.runRounds(4)
      const back = healed + 2
      expect(equalBytes(cutOff.engine.round(back)?.seed as Uint8Array, other.engine.round(back)?.seed as Uint8Array), 'back on the chain').toBe(true)
      expectAllVerified(honest, back, bus.round - 1)
    })
  }

  for (const pages of [2, 3]) {
    it(`a node that comes back mid-round, after the commits and before the challenge, is verified in the very next round (${pages} pages)`, async () => {
      const bus = new PulseBus(11)
      const honest = bus.add([{ name: 'relay', kind: 'anchor' }, ...['a', 'b', 'c'].slice(0, pages).map(name => ({ name, kind: 'honest' as const }))]).slice(1)
      await bus.runRounds(3)
      const cutOff = honest[pages - 1] as BusNode
      const other = honest[0] as BusNode
      // Back at 0.3T: the round's commits went out while it was away, its challenge and verdicts reach it.
      bus.cut(cutOff, 5.3 * 6_000)
      await bus.runRounds(6)
      const backIn = bus.round - 1
      await bus.runRounds(1)
      expect(equalBytes(cutOff.engine.round(backIn + 1)?.seed as Uint8Array, other.engine.round(backIn + 1)?.seed as Uint8Array), 'on the chain the round after').toBe(true)
      await bus.runRounds(2)
      expectAllVerified(honest, backIn + 1, bus.round - 1)
    })
  }

  it('a node that comes back after the challenge sits out the next round and is verified in the one after (the challenge it missed carried the beacon)', async () => {
    const bus = new PulseBus(11)
    const honest = bus.add([{ name: 'relay', kind: 'anchor' }, { name: 'a', kind: 'honest' }, { name: 'b', kind: 'honest' }]).slice(1)
    await bus.runRounds(3)
    const [other, cutOff] = honest as [BusNode, BusNode]
    // Back at 0.6T: past the challenge (0.42T) and the time a late one is still taken (0.52T).
    bus.cut(cutOff, 5.6 * 6_000)
    await bus.runRounds(6)
    const backIn = bus.round - 1
    await bus.runRounds(3)
    expect(cutOff.engine.round(backIn + 1), 'no seed of its own the round after').toBeUndefined()
    expect(equalBytes(cutOff.engine.round(backIn + 2)?.seed as Uint8Array, other.engine.round(backIn + 2)?.seed as Uint8Array), 'on the chain two rounds after').toBe(true)
    expectAllVerified(honest, backIn + 2, bus.round - 1)
  })

  it('a relay (anchor) that missed a challenge follows the pages back, and its verdicts count again', async () => {
    const bus = new PulseBus(10)
    const [relay, ...honest] = bus.add([{ name: 'relay', kind: 'anchor' }, { name: 'a', kind: 'honest' }, { name: 'b', kind: 'honest' }])
    await bus.runRounds(3)
    await bus.runTo(0.35)
    const missed = bus.round
    bus.deafen(relay as BusNode, 0.65 * 6_000)
    await bus.runRounds(4)
    const back = missed + 2
    expect(equalBytes(relay?.engine.round(back)?.seed as Uint8Array, honest[0]?.engine.round(back)?.seed as Uint8Array)).toBe(true)
    expectAllVerified(honest, back, bus.round - 1)
  })

  it('lying strikes: aged attackers drawn to validate cannot unverify honest work, which each node checks itself', async () => {
    const { bus, honest, attackers: liars, from } = await agedNetworkWithAttackers(8, 3, 2)
    await bus.roundsWithCommits(liars, 4, honest[0] as BusNode, async (r, seed) => {
      await bus.runTo(0.73)
      const state = honest[0]?.engine.round(r)
      const results = honest.map(node => ({ peer: node.signer.peerId, ok: false, reason: 'wrong-row' as const, root: state?.commits.get(node.signer.peerId)?.message.root as Uint8Array, caps: [] }))
      for (const key of liars) await bus.inject(key, { t: 'verdict', net: NET, r, peer: key.peerId, seed, results })
    })
    const drawnLiars = Array.from({ length: bus.round - from }, (_, i) => honest[0]?.engine.round(from + i)?.drawnValidators().filter(v => liars.some(l => l.peerId === v)).length ?? 0)
    expect(Math.max(...drawnLiars), 'liars drawn as voters in some round').toBeGreaterThan(0)
    expectAllVerified(honest, from, bus.round - 1)
  })

  it('backdated passes: aged keys that were not drawn in a round cannot vouch for it in a points proof', async () => {
    // Two keys aged in every honest view that never commit: they are never drawn.
    const { bus, honest, attackers: colluders, from } = await agedNetworkWithAttackers(9, 2, 3)
    await bus.runRounds(4)
    const to = bus.round - 2
    const checker = honest[0] as BusNode
    // After the fact, the colluders sign passes for an accomplice that did no work, under the rounds' real seeds.
    const accomplice = bus.freshKey()
    const records: Array<{ round: number, verified: boolean, commit: Uint8Array }> = []
    const attestations: Array<{ round: number, attestation: Uint8Array }> = []
    async function forge (round: number, seed: Uint8Array, voters: PulseSigner[]): Promise<void> {
      const root = sha256Of(utf8(`forged ${round}`))
      const commit = await signPulse({ t: 'commit', net: NET, r: round, peer: accomplice.peerId, seed, root, n: N, caps: [], sid: new Uint8Array(8) }, accomplice)
      records.push({ round, verified: true, commit: encodeSigned(commit) })
      for (const voter of voters) {
        const verdict = await signPulse({ t: 'verdict', net: NET, r: round, peer: voter.peerId, seed, judged: new Uint8Array(32), results: [{ peer: accomplice.peerId, ok: true, root, caps: [] }] }, voter)
        attestations.push({ round, attestation: attestationOf(verdict, accomplice.peerId) as Uint8Array })
      }
    }
    const seedOf = (r: number): Uint8Array => checker.book.get(r).drawn?.seed as Uint8Array
    for (let r = from; r <= to; r++) await forge(r, seedOf(r), colluders)
    const history: ProofHistory = { self: accomplice.peerId, rounds: () => records, attestations: async () => attestations, served: () => [] }
    const proof = await prepareProof(history, from, to)
    expect(proof.summary.rounds).toHaveLength(to - from + 1)
    const pick = pickSamples(proof.summary)
    const rules = (counts: CheckRules['counts']): CheckRules => ({ subject: accomplice.peerId, networkId: NET, roundMs: ROUND_MS, verify: bus.keys.verify, counts })
    const ask = { t: 'ask' as const, net: NET, from, to }
    // Counting any aged key, as the checker once did, the forgery passes.
    const aged = await checkProof(rules(v => checker.engine.history.isAged(v)), ask, proof.summary, pick, proof.evidence(pick))
    expect(aged).toMatchObject({ checked: true })
    // Counting only the round's own drawn validators, re-derived by the checker from the seed it followed, it does not.
    const drawn = countsInRound(checker.engine.history, checker.book)
    expect(await checkProof(rules(drawn), ask, proof.summary, pick, proof.evidence(pick))).toMatchObject({ checked: false, reason: 'unknown-validators' })

    // Drawn validators under a seed of the forger's own making count for nothing either.
    const round = from
    const realDrawn = checker.book.get(round).drawn?.validators ?? []
    expect(realDrawn.length).toBeGreaterThanOrEqual(2)
    expect(drawn(realDrawn[0] as string, round, sha256Of(utf8('another seed')))).toBe(false)
    expect(drawn(realDrawn[0] as string, round, seedOf(round))).toBe(true)
    expect(colluders.some(c => drawn(c.peerId, round, seedOf(round)))).toBe(false)

    // An honest node's real proof still checks under the same rule.
    const prover = honest[1] as BusNode
    const honestHistory: ProofHistory = {
      self: prover.signer.peerId,
      rounds: (f, t) => prover.book.between(f, t),
      attestations: async (f, t) => prover.attestations.filter(a => a.round >= f && a.round <= t),
      served: () => []
    }
    const real = await prepareProof(honestHistory, from, to)
    expect(real.summary.rounds.length).toBeGreaterThan(0)
    const realPick = pickSamples(real.summary)
    expect(await checkProof({ ...rules(drawn), subject: prover.signer.peerId }, ask, real.summary, realPick, real.evidence(realPick))).toMatchObject({ checked: true })
  })

  it('lying no-reveal: a committer that never reveals is struck no-reveal by the drawn validators, not just left unverified', async () => {
    // One aged key and one fresh key commit every round and never reveal: work claimed, none shown.
    const { bus, honest, attackers, from } = await agedNetworkWithAttackers(10, 1, 2)
    const [aged] = attackers as [PulseSigner]
    const fresh = bus.freshKey()
    const silent = [aged, fresh]
    await bus.roundsWithCommits(silent, 3, honest[0] as BusNode, async r => {
      await bus.runTo(0.9)
      for (const node of honest) {
        const state = node.engine.round(r)
        expect(state?.canonicalChallenge()?.message.commits.map(([peer]) => peer), `${node.name} round ${r}: the challenge lists them`).toEqual(expect.arrayContaining(silent.map(k => k.peerId)))
        for (const key of silent) {
          const outcome = state?.outcomeFor(key.peerId)
          expect(outcome?.verified, `${node.name} round ${r}`).toBe(false)
          // Every drawn validator that voted struck it, for the reason it failed: nobody passed it.
          const votes = state?.verdictsAbout(key.peerId).filter(v => state.drawnValidators().includes(v.validator)) ?? []
          expect(votes.length, `${node.name} round ${r}: drawn voters heard about ${key === aged ? 'the aged' : 'the fresh'} key`).toBeGreaterThanOrEqual(2)
          expect(votes.map(v => v.result.reason)).toEqual(votes.map(() => 'no-reveal'))
          expect(outcome?.strikes.length).toBe(votes.length)
        }
      }
    })
    // The silent committers' work is never vouched for, and it costs honest nodes nothing.
    expectAllVerified(honest, from, bus.round - 1)
  })
})
