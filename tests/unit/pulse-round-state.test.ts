import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { compareBytes, utf8 } from '../../src/core/pulse/bytes.ts'
import { signPulse, type CommitMessage, type PulseSigner } from '../../src/core/pulse/messages.ts'
import { FALLBACK_VALIDATORS } from '../../src/core/pulse/params.ts'
import { leaderScore } from '../../src/core/pulse/seed.ts'
import { inlineRecomputer } from '../../src/core/pulse/recompute.ts'
import { ReferenceProver } from '../../src/core/pulse/reference-prover.ts'
import { RoundState } from '../../src/core/pulse/round-state.ts'
import { workKey } from '../../src/core/pulse/work.ts'

const NET = 'dev-t6'
const N = 16
const K = 4
const seed = new Uint8Array(32).fill(9)

async function signer (): Promise<PulseSigner> {
  const key = await generateKeyPair('Ed25519')
  return { peerId: peerIdFromPrivateKey(key).toString(), sign: async data => await key.sign(data) }
}

async function honestCommit (who: PulseSigner, prover: ReferenceProver, sid: number): Promise<CommitMessage> {
  const { root } = await prover.prove(1, workKey(seed, utf8(who.peerId)), N)
  return { t: 'commit', net: NET, r: 1, peer: who.peerId, seed, root, n: N, caps: [], sid: new Uint8Array(8).fill(sid) }
}

describe('RoundState', () => {
  it('runs a round: leader, challenge, reveals, and a verdict that passes honest work', async () => {
    const [a, b, validator] = [await signer(), await signer(), await signer()]
    const provers = new Map([[a.peerId, new ReferenceProver()], [b.peerId, new ReferenceProver()]])
    const state = new RoundState(NET, 1, seed, N, K)
    for (const who of [a, b]) expect(state.addCommit(await signPulse(await honestCommit(who, provers.get(who.peerId) as ReferenceProver, 1), who))).toBe('accepted')
    const leader = state.leader() === a.peerId ? a : b
    const challenge = await signPulse({ t: 'challenge', net: NET, r: 1, peer: leader.peerId, seed, commits: state.commitSet(), k: K }, leader)
    expect(state.addChallenge(challenge)).toBe(true)
    const indices = state.indices(challenge)
    expect(new Set(indices).size).toBe(K)
    for (const who of [a, b]) {
      const rows = await (provers.get(who.peerId) as ReferenceProver).reveal(1, indices)
      state.addReveal({ t: 'reveal', net: NET, r: 1, peer: who.peerId, leader: leader.peerId, rows: rows.map(r => ({ i: r.index, proof: r.proof })) })
    }
    expect((await state.judgeAll(validator.peerId, inlineRecomputer)).map(r => [r.peer, r.ok, r.reason])).toEqual(state.commitSet().map(([peer]) => [peer, true, undefined]))
  })

  it('recomputes each challenged row and strikes what does not lead from it to the committed root', async () => {
    const [honest, shortProof, wrongPath, otherRows, forgedRoot, validator] = [await signer(), await signer(), await signer(), await signer(), await signer(), await signer()]
    const committers = [honest, shortProof, wrongPath, otherRows, forgedRoot]
    const provers = new Map(committers.map(who => [who.peerId, new ReferenceProver()]))
    const state = new RoundState(NET, 1, seed, N, K)
    for (const who of committers) {
      const commit = await honestCommit(who, provers.get(who.peerId) as ReferenceProver, 1)
      if (who === forgedRoot) commit.root = new Uint8Array(32).fill(7)
      state.addCommit(await signPulse(commit, who))
    }
    const leader = committers.find(who => who.peerId === state.leader()) as PulseSigner
    const challenge = await signPulse({ t: 'challenge', net: NET, r: 1, peer: leader.peerId, seed, commits: state.commitSet(), k: K }, leader)
    state.addChallenge(challenge)
    const indices = state.indices(challenge)
    const unchallenged = Array.from({ length: N }, (_, i) => i).filter(i => !indices.includes(i)).slice(0, K)
    for (const who of committers) {
      const prover = provers.get(who.peerId) as ReferenceProver
      let rows = (await prover.reveal(1, who === otherRows ? unchallenged : indices)).map(r => ({ i: r.index, proof: r.proof }))
      if (who === shortProof) rows = rows.map(r => ({ i: r.i, proof: r.proof.slice(1) }))
      // Each row's index with another row's path: the right length, the wrong hashes.
      if (who === wrongPath) rows = rows.map((r, j) => ({ i: r.i, proof: (rows[(j + 1) % rows.length] as typeof r).proof }))
      state.addReveal({ t: 'reveal', net: NET, r: 1, peer: who.peerId, leader: leader.peerId, rows })
    }
    const verdicts = new Map((await state.judgeAll(validator.peerId, inlineRecomputer)).map(r => [r.peer, r.reason ?? 'ok']))
    expect([honest, shortProof, wrongPath, otherRows, forgedRoot].map(who => verdicts.get(who.peerId)))
      .toEqual(['ok', 'bad-proof', 'wrong-row', 'wrong-rows-challenged', 'wrong-row'])
  })

  it('with fewer than two validators among its commits, a round is validated by its three lowest-scoring committers', async () => {
    const committers = [await signer(), await signer(), await signer(), await signer(), await signer(), await signer()]
    const prover = new ReferenceProver()
    const roundWith = async (validators: number): Promise<RoundState> => {
      const state = new RoundState(NET, 1, seed, N, K)
      for (const [i, who] of committers.entries()) {
        const commit = await honestCommit(who, prover, 1)
        if (i < validators) commit.caps = ['validation']
        state.addCommit(await signPulse(commit, who))
      }
      return state
    }
    const byScore = committers.map(c => c.peerId).sort((x, y) => compareBytes(leaderScore(seed, utf8(x)), leaderScore(seed, utf8(y))))
    const challenged = async (state: RoundState): Promise<RoundState> => {
      const leader = committers.find(c => c.peerId === state.leader()) as PulseSigner
      state.addChallenge(await signPulse({ t: 'challenge', net: NET, r: 1, peer: leader.peerId, seed, commits: state.commitSet(), k: K }, leader))
      return state
    }
    const none = await roundWith(0)
    expect(committers.some(c => none.isFallbackValidator(c.peerId)), 'before any challenge').toBe(false)
    await challenged(none)
    expect(byScore.filter(peer => none.isFallbackValidator(peer))).toEqual(byScore.slice(0, FALLBACK_VALIDATORS))
    expect(none.isFallbackValidator(none.leader() as string)).toBe(true)
    const one = await challenged(await roundWith(1))
    expect(byScore.filter(peer => one.isFallbackValidator(peer))).toHaveLength(FALLBACK_VALIDATORS)
    const two = await challenged(await roundWith(2))
    expect(committers.some(c => two.isFallbackValidator(c.peerId))).toBe(false)
    // Claims count only from nodes that sent verdicts last round, when that round was seen.
    const claimants = committers.slice(0, 2).map(c => c.peerId)
    expect(byScore.filter(peer => two.isFallbackValidator(peer, new Map([[claimants[0] as string, 'verdict']]))), 'one claim backed').toHaveLength(FALLBACK_VALIDATORS)
    expect(committers.some(c => two.isFallbackValidator(c.peerId, new Map(claimants.map(p => [p, 'verdict']))))).toBe(false)
  })

  it('strikes an identity that commits twice in one round, even with identical work', async () => {
    const [twin, validator] = [await signer(), await signer()]
    const prover = new ReferenceProver()
    const state = new RoundState(NET, 1, seed, N, K)
    const first = await signPulse(await honestCommit(twin, prover, 1), twin)
    expect(state.addCommit(first)).toBe('accepted')
    // The same commit again (gossip can deliver twice) is no conflict.
    expect(state.addCommit(first)).toBe('duplicate')
    // The same work from a second running instance: identical root, another instance id.
    expect(state.addCommit(await signPulse(await honestCommit(twin, prover, 2), twin))).toBe('conflict')
    const challenge = await signPulse({ t: 'challenge', net: NET, r: 1, peer: twin.peerId, seed, commits: state.commitSet(), k: K }, twin)
    state.addChallenge(challenge)
    const rows = await prover.reveal(1, state.indices(challenge))
    state.addReveal({ t: 'reveal', net: NET, r: 1, peer: twin.peerId, leader: twin.peerId, rows: rows.map(r => ({ i: r.index, proof: r.proof })) })
    expect(await state.judgeAll(validator.peerId, inlineRecomputer)).toEqual([expect.objectContaining({ peer: twin.peerId, ok: false, reason: 'duplicate-identity' })])
  })
})
