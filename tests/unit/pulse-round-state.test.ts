import { generateKeyPair, generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { describe, expect, it } from 'vitest'
import { compareBytes, utf8 } from '../../src/core/crypto/bytes.ts'
import { MAX_COMMITTEE, signPulse, type BeaconProver, type ChallengeMessage, type CommitMessage, type SignedPulseMessage, type VerdictMessage } from '../../src/core/wire/pulse.ts'
import type { PulseSigner } from '../../src/core/crypto/signing.ts'
import { inlineRecomputer } from '../../src/core/pulse/recompute.ts'
import { ReferenceProver } from '../../src/core/pulse/reference-prover.ts'
import { MerkleTree, leafHash, multiproofOf } from '../../src/core/pulse/merkle.ts'
import { beaconInput, challengeIndices, challengeProofs, leaderScore } from '../../src/core/pulse/seed.ts'
import { beaconProver, pulseSigner, verifyBeacon } from '../../src/net/pulse-keys.ts'
import { RoundState } from '../../src/core/pulse/round-state.ts'
import { MAX_CHALLENGES } from '../../src/core/pulse/params.ts'
import { DRAWN_VALIDATORS, ValidatorHistory, validatorScore } from '../../src/core/pulse/validators.ts'
import { expectedRows, rowBytes, workKey } from '../../src/core/pulse/work.ts'

const NET = 'dev-t6'
const N = 16
const K = 4
const seed = new Uint8Array(32).fill(9)

type Signer = PulseSigner & { beacon: BeaconProver }

async function signer (fixedSeed?: number): Promise<Signer> {
  // A fixed key where the rows it is challenged decide what a test checks.
  const key = fixedSeed === undefined ? await generateKeyPair('Ed25519') : await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(fixedSeed))
  return { ...pulseSigner(key), beacon: beaconProver(key) }
}

/** A leader's challenge over `commits`, with its real VRF proof. */
async function challengeBy (leader: Signer, commits: Array<[string, Uint8Array]>): Promise<SignedPulseMessage<ChallengeMessage>> {
  return await signPulse({ t: 'challenge', net: NET, r: 1, peer: leader.peerId, seed, commits, k: K, ...await challengeProofs(leader.beacon, NET, 1, seed, commits) }, leader)
}

/** A reveal's rows and their multiproof, from rows with their audit paths as a prover answers them. */
function revealed (rows: ReadonlyArray<{ index: number, proof: Uint8Array[] }>): { rows: number[], proof: Uint8Array[] } {
  const sorted = [...rows].sort((x, y) => x.index - y.index)
  return { rows: sorted.map(r => r.index), proof: multiproofOf(N, sorted) }
}

async function honestCommit (who: PulseSigner, prover: ReferenceProver, sid: number): Promise<CommitMessage> {
  const { root } = await prover.prove(1, workKey(seed, utf8(who.peerId)), N)
  return { t: 'commit', net: NET, r: 1, peer: who.peerId, seed, root, n: N, caps: [], sid: new Uint8Array(8).fill(sid) }
}

describe('RoundState', () => {
  it('runs a round: leader, challenge, reveals, and a verdict that passes honest work', async () => {
    const [a, b, validator] = [await signer(), await signer(), await signer()]
    const provers = new Map([[a.peerId, new ReferenceProver()], [b.peerId, new ReferenceProver()]])
    const state = new RoundState(NET, 1, seed, N, K, { verifyBeacon })
    for (const who of [a, b]) expect(state.addCommit(await signPulse(await honestCommit(who, provers.get(who.peerId) as ReferenceProver, 1), who))).toBe('accepted')
    const leader = state.leader() === a.peerId ? a : b
    const challenge = await challengeBy(leader, state.commitSet())
    expect(state.addChallenge(challenge)).toBe(true)
    for (const who of [a, b]) {
      const indices = state.indices(challenge, who.peerId)
      expect(new Set(indices).size).toBe(K)
      const rows = await (provers.get(who.peerId) as ReferenceProver).reveal(1, indices)
      expect(state.addReveal({ t: 'reveal', net: NET, r: 1, peer: who.peerId, leader: leader.peerId, ...revealed(rows) })).toBe(true)
    }
    // A reveal from a key that did not commit is not kept: a flood of them would only take memory.
    const stranger = await signer()
    expect(state.addReveal({ t: 'reveal', net: NET, r: 1, peer: stranger.peerId, leader: leader.peerId, rows: [0], proof: [] })).toBe(false)
    expect(state.reveals.has(stranger.peerId)).toBe(false)
    expect((await state.judgeAll(validator.peerId, inlineRecomputer)).map(r => [r.peer, r.ok, r.reason])).toEqual(state.commitSet().map(([peer]) => [peer, true, undefined]))
  })

  it('recomputes each challenged row and strikes what does not lead from it to the committed root', async () => {
    const [honest, shortProof, wrongPath, otherRows, forgedRoot, validator] = [await signer(), await signer(), await signer(), await signer(), await signer(), await signer()]
    const committers = [honest, shortProof, wrongPath, otherRows, forgedRoot]
    const provers = new Map(committers.map(who => [who.peerId, new ReferenceProver()]))
    const state = new RoundState(NET, 1, seed, N, K, { verifyBeacon })
    for (const who of committers) {
      const commit = await honestCommit(who, provers.get(who.peerId) as ReferenceProver, 1)
      if (who === forgedRoot) commit.root = new Uint8Array(32).fill(7)
      state.addCommit(await signPulse(commit, who))
    }
    const leader = committers.find(who => who.peerId === state.leader()) as Signer
    const challenge = await challengeBy(leader, state.commitSet())
    state.addChallenge(challenge)
    for (const who of committers) {
      const indices = state.indices(challenge, who.peerId)
      const unchallenged = Array.from({ length: N }, (_, i) => i).filter(i => !indices.includes(i)).slice(0, K)
      const prover = provers.get(who.peerId) as ReferenceProver
      const reveal = revealed(await prover.reveal(1, who === otherRows ? unchallenged : indices))
      if (who === shortProof) reveal.proof = reveal.proof.slice(1)
      // The proof's hashes rotated by one: the right length, the wrong hashes.
      if (who === wrongPath) reveal.proof = reveal.proof.map((_, j) => reveal.proof[(j + 1) % reveal.proof.length] as Uint8Array)
      state.addReveal({ t: 'reveal', net: NET, r: 1, peer: who.peerId, leader: leader.peerId, ...reveal })
    }
    const verdicts = new Map((await state.judgeAll(validator.peerId, inlineRecomputer)).map(r => [r.peer, r.reason ?? 'ok']))
    expect([honest, shortProof, wrongPath, otherRows, forgedRoot].map(who => verdicts.get(who.peerId)))
      .toEqual(['ok', 'bad-proof', 'wrong-row', 'wrong-rows-challenged', 'wrong-row'])
  })

  it('rows known early are worthless: a leader and its accomplice that computed only the rows the beacon VRF would pick are struck', async () => {
    // Under v4 the rows came from the beacon VRF, whose input a leader knows at the round's start: it
    // could tell an accomplice its rows before either committed. Now they come from a second VRF over
    // the listed commit set, which exists only once every listed root (the leader's own too) is fixed.
    const [leader, accomplice, honest, validator] = [await signer(1), await signer(2), await signer(3), await signer(4)]
    const state = new RoundState(NET, 1, seed, N, K, { verifyBeacon })
    const earlyOutput = verifyBeacon(leader.peerId, beaconInput(NET, 1, seed), await leader.beacon.prove(beaconInput(NET, 1, seed))) as Uint8Array
    const lazyTrees = new Map<string, MerkleTree>()
    for (const who of [leader, accomplice]) {
      const key = workKey(seed, utf8(who.peerId))
      const known = challengeIndices(seed, earlyOutput, who.peerId, N, K)
      const rows = expectedRows(key, N, known)
      const tree = new MerkleTree(Array.from({ length: N }, (_, i) => leafHash(rows.has(i) ? rowBytes(rows.get(i) as Uint32Array) : utf8(`not computed ${i}`))))
      lazyTrees.set(who.peerId, tree)
      state.addCommit(await signPulse({ t: 'commit', net: NET, r: 1, peer: who.peerId, seed, root: tree.root, n: N, caps: [], sid: new Uint8Array(8) }, who))
    }
    const honestProver = new ReferenceProver()
    state.addCommit(await signPulse(await honestCommit(honest, honestProver, 1), honest))
    const challenge = await challengeBy(leader, state.commitSet())
    expect(state.addChallenge(challenge)).toBe(true)
    expect(state.canonicalChallenge()).toBe(challenge)
    for (const who of [leader, accomplice]) {
      const tree = lazyTrees.get(who.peerId) as MerkleTree
      state.addReveal({ t: 'reveal', net: NET, r: 1, peer: who.peerId, leader: leader.peerId, ...revealed(state.indices(challenge, who.peerId).map(index => ({ index, proof: tree.proof(index) }))) })
    }
    const rows = await honestProver.reveal(1, state.indices(challenge, honest.peerId))
    state.addReveal({ t: 'reveal', net: NET, r: 1, peer: honest.peerId, leader: leader.peerId, ...revealed(rows) })
    const verdicts = new Map((await state.judgeAll(validator.peerId, inlineRecomputer)).map(r => [r.peer, r.reason ?? 'ok']))
    expect([leader, accomplice, honest].map(who => verdicts.get(who.peerId))).toEqual(['wrong-row', 'wrong-row', 'ok'])
  })

  it('refuses a rows proof made over another commit set than the one the challenge lists', async () => {
    const [a, b, late] = [await signer(), await signer(), await signer()]
    const prover = new ReferenceProver()
    const state = new RoundState(NET, 1, seed, N, K, { verifyBeacon })
    for (const who of [a, b]) state.addCommit(await signPulse(await honestCommit(who, prover, 1), who))
    const leader = state.leader() === a.peerId ? a : b
    const proved = state.commitSet()
    // The leader proves its rows over one set, then lists another (here: a late commit added).
    const listed = [...proved, [late.peerId, new Uint8Array(32).fill(3)] as [string, Uint8Array]].sort((x, y) => (x[0] < y[0] ? -1 : 1))
    const proofs = await challengeProofs(leader.beacon, NET, 1, seed, proved)
    state.addChallenge(await signPulse({ t: 'challenge', net: NET, r: 1, peer: leader.peerId, seed, commits: listed, k: K, ...proofs }, leader))
    expect(Object.fromEntries(state.challengeFaults())).toEqual({ [leader.peerId]: 'bad-vrf' })
    expect(state.canonicalChallenge()).toBeUndefined()
  })

  it('draws its validators from aged committers by the seed, and counts verdicts only from them and anchors', async () => {
    const committers = await Promise.all(Array.from({ length: 8 }, signer))
    const [anchor, stranger] = [await signer(), await signer()]
    const prover = new ReferenceProver()
    const aged = committers.slice(0, 6).map(c => c.peerId)
    const history = new ValidatorHistory([anchor.peerId], [], peer => aged.includes(peer))
    const state = new RoundState(NET, 1, seed, N, K, { history, verifyBeacon })
    for (const who of committers) state.addCommit(await signPulse(await honestCommit(who, prover, 1), who))
    expect(state.drawnValidators(), 'before any challenge').toEqual([])
    const ranking = state.leaderRanking()
    expect(ranking.every(peer => aged.includes(peer)), 'only aged committers lead while any is aged').toBe(true)
    const leader = committers.find(c => c.peerId === ranking[0]) as Signer
    state.addChallenge(await challengeBy(leader, state.commitSet()))
    const byScore = [...aged].sort((x, y) => compareBytes(validatorScore(seed, x), validatorScore(seed, y)))
    expect(state.drawnValidators()).toEqual(byScore.slice(0, DRAWN_VALIDATORS))
    expect(state.isVoter(anchor.peerId)).toBe(true)
    const notDrawn = aged.find(peer => !state.drawnValidators().includes(peer)) as string
    expect(state.isVoter(notDrawn)).toBe(false)
    // A verdict from a fresh key is not even kept; an anchor's is.
    const verdict = async (who: PulseSigner): Promise<SignedPulseMessage<VerdictMessage>> => await signPulse({ t: 'verdict', net: NET, r: 1, peer: who.peerId, seed, judged: new Uint8Array(32), results: [] }, who)
    expect(state.addVerdict(await verdict(stranger))).toBeUndefined()
    expect(state.addVerdict(await verdict(anchor))).toBeDefined()
  })

  it('refuses a challenge that asks for other than the network\'s k rows: k = 0 would void every reveal', async () => {
    const [a, b] = (await Promise.all([signer(), signer()]))
      .sort((x, y) => compareBytes(leaderScore(seed, utf8(x.peerId)), leaderScore(seed, utf8(y.peerId))))
    const prover = new ReferenceProver()
    const state = new RoundState(NET, 1, seed, N, K, { verifyBeacon })
    for (const who of [a, b] as Signer[]) state.addCommit(await signPulse(await honestCommit(who, prover, 1), who))
    const all = state.commitSet()
    const noRows = await signPulse({ t: 'challenge', net: NET, r: 1, peer: (a as Signer).peerId, seed, commits: all, k: 0, ...await challengeProofs((a as Signer).beacon, NET, 1, seed, all) }, a as Signer)
    state.addChallenge(noRows)
    expect(state.challengeFaults().get((a as Signer).peerId)).toBe('wrong-k')
    expect(state.canonicalChallenge()).toBeUndefined()
    // The next leader's challenge with the network's k stands in.
    const standIn = await challengeBy(b as Signer, all)
    state.addChallenge(standIn)
    expect(state.canonicalChallenge()).toBe(standIn)
  })

  it('keeps no challenge from a key that did not commit, and only a few in a watched round', async () => {
    // Keys are free and the seed is known when the round opens: the flood's keys rank before the committer.
    const [committer, ...flooders] = (await Promise.all(Array.from({ length: 13 }, async () => await signer())))
      .sort((x, y) => compareBytes(leaderScore(seed, utf8(y.peerId)), leaderScore(seed, utf8(x.peerId)))) as [Signer, ...Signer[]]
    const prover = new ReferenceProver()
    const own = new RoundState(NET, 1, seed, N, K, { verifyBeacon })
    const watched = new RoundState(NET, 1, seed, N, K, { verifyBeacon, anchorsVouchForLeaders: true })
    for (const state of [own, watched]) state.addCommit(await signPulse(await honestCommit(committer, prover, 1), committer))
    const listed = own.commitSet()
    const flood = await Promise.all(flooders.map(async flooder => await challengeBy(flooder, listed)))
    expect(flood.map(challenge => own.addChallenge(challenge)).filter(Boolean)).toHaveLength(0)
    expect(own.challenges.size).toBe(0)
    // A node back mid-round missed the commits; an anchor may still vouch for a leader it never heard commit.
    expect(flood.map(challenge => watched.addChallenge(challenge)).filter(Boolean)).toHaveLength(8)
    // A committer's challenge is always kept: in a watched round, in the place of one whose leader it never heard commit.
    expect(own.addChallenge(await challengeBy(committer, listed))).toBe(true)
    expect(watched.addChallenge(await challengeBy(committer, listed))).toBe(true)
  })

  it('keeps a few challenges, the best-ranked leaders\' first: committing fresh keys cannot make it hold one each', async () => {
    const fresh = await Promise.all(Array.from({ length: 48 }, signer))
    const [veteran, anchor] = [await signer(), await signer()]
    const prover = new ReferenceProver()
    for (const watched of [false, true]) {
      const history = new ValidatorHistory([anchor.peerId], [], peer => peer === veteran.peerId)
      const state = new RoundState(NET, 1, seed, N, K, { history, verifyBeacon, anchorsVouchForLeaders: watched })
      for (const who of [veteran, ...fresh]) state.addCommit(await signPulse(await honestCommit(who, prover, 1), who))
      const listed = state.commitSet()
      // Each fresh committer leads too, with the whole commit set: a challenge kept per committer.
      for (const who of fresh) state.addChallenge(await challengeBy(who, listed))
      expect(state.challenges.size, watched ? 'watched' : 'own').toBe(MAX_CHALLENGES)
      // The aged committer's and the anchor's challenges rank before every fresh key's.
      expect(state.addChallenge(await challengeBy(veteran, listed))).toBe(true)
      expect(state.addChallenge(await challengeBy(anchor, listed))).toBe(true)
      expect(state.challenges.size).toBe(MAX_CHALLENGES)
      expect(state.canonicalChallenge()?.message.peer).toBe(anchor.peerId)
      expect(state.challenges.has(veteran.peerId)).toBe(true)
      // A fresh key ranking after all those kept is not kept.
      const worst = [...state.challenges.keys()].filter(peer => peer !== veteran.peerId && peer !== anchor.peerId).sort((x, y) => compareBytes(leaderScore(seed, utf8(x)), leaderScore(seed, utf8(y)))).at(-1) as string
      const late = fresh.find(who => !state.challenges.has(who.peerId) && compareBytes(leaderScore(seed, utf8(who.peerId)), leaderScore(seed, utf8(worst))) > 0) as Signer
      expect(state.addChallenge(await challengeBy(late, listed))).toBe(false)
    }
  })

  it('takes as canonical only a valid challenge: leader listed, no false root, no early commit omitted', async () => {
    // In leader order: the first three lead in turn, the last one's commit arrives late.
    const committers = (await Promise.all(Array.from({ length: 5 }, signer)))
      .sort((x, y) => compareBytes(leaderScore(seed, utf8(x.peerId)), leaderScore(seed, utf8(y.peerId))))
    const [first, second, third, , late] = committers as [Signer, Signer, Signer, Signer, Signer]
    const prover = new ReferenceProver()
    const state = new RoundState(NET, 1, seed, N, K, { omitCutoff: 100, verifyBeacon, history: new ValidatorHistory([], [], () => true) })
    for (const who of committers) state.addCommit(await signPulse(await honestCommit(who, prover, 1), who), who === late ? 200 : 50)
    expect(state.leaderRanking()).toEqual(committers.map(c => c.peerId))
    const all = state.commitSet()
    const challenge = challengeBy
    state.addChallenge(await challenge(first, all.map(([peer, root]): [string, Uint8Array] => [peer, peer === first.peerId ? root : new Uint8Array(32).fill(3)])))
    expect(state.challengeFaults().get(first.peerId)).toBe('false-root')
    expect(state.canonicalChallenge()).toBeUndefined()
    state.addChallenge(await challenge(second, all.filter(([peer]) => peer === second.peerId || peer === late.peerId)))
    expect(state.challengeFaults().get(second.peerId)).toBe('omission')
    // The third in line lists everything heard early and leaves out the late commit: it stands.
    const standIn = await challenge(third, all.filter(([peer]) => peer !== late.peerId))
    state.addChallenge(standIn)
    expect(state.canonicalChallenge()).toBe(standIn)
    // A leader whose challenge was invalid is struck in the verdicts too.
    const validator = await signer()
    const verdicts = new Map((await state.judgeAll(validator.peerId, inlineRecomputer)).map(r => [r.peer, r.reason]))
    expect(verdicts.get(first.peerId)).toBe('bad-challenge')
    expect(verdicts.get(second.peerId)).toBe('bad-challenge')
    expect(verdicts.has(late.peerId)).toBe(false)
  })

  it('takes a challenge only with its leader\'s VRF proof for this round: no other proof, no other key\'s', async () => {
    const committers = (await Promise.all(Array.from({ length: 3 }, signer)))
      .sort((x, y) => compareBytes(leaderScore(seed, utf8(x.peerId)), leaderScore(seed, utf8(y.peerId))))
    const [first, second] = committers as [Signer, Signer, Signer]
    const prover = new ReferenceProver()
    const state = new RoundState(NET, 1, seed, N, K, { verifyBeacon })
    for (const who of committers) state.addCommit(await signPulse(await honestCommit(who, prover, 1), who))
    const commits = state.commitSet()
    // The best-ranked leader signs its challenge with a proof made by another key, then the runner-up
    // with its proof for another round: both are refused, and neither can make the next seed.
    const borrowed = await challengeProofs(second.beacon, NET, 1, seed, commits)
    state.addChallenge(await signPulse({ t: 'challenge', net: NET, r: 1, peer: first.peerId, seed, commits, k: K, ...borrowed }, first))
    state.addChallenge(await signPulse({ t: 'challenge', net: NET, r: 1, peer: second.peerId, seed, commits, k: K, ...await challengeProofs(second.beacon, NET, 2, seed, commits) }, second))
    expect(Object.fromEntries(state.challengeFaults())).toEqual({ [first.peerId]: 'bad-vrf', [second.peerId]: 'bad-vrf' })
    expect(state.canonicalChallenge()).toBeUndefined()
  })

  it('keeps at most MAX_COMMITTEE commits, aged committers first, then by leader score', async () => {
    const fresh = await Promise.all(Array.from({ length: MAX_COMMITTEE }, signer))
    const veteran = await signer()
    const prover = new ReferenceProver()
    const { root } = await prover.prove(1, workKey(seed, utf8('x')), N)
    const commit = async (who: PulseSigner): Promise<SignedPulseMessage<CommitMessage>> =>
      await signPulse({ t: 'commit', net: NET, r: 1, peer: who.peerId, seed, root, n: N, caps: [], sid: new Uint8Array(8) }, who)
    const state = new RoundState(NET, 1, seed, N, K, { history: new ValidatorHistory([], [], peer => peer === veteran.peerId), verifyBeacon })
    for (const who of fresh) expect(state.addCommit(await commit(who))).toBe('accepted')
    const worst = state.leaderRanking().at(-1) as string
    expect(state.addCommit(await commit(veteran))).toBe('accepted')
    expect(state.commits.size).toBe(MAX_COMMITTEE)
    expect(state.commits.has(worst)).toBe(false)
    // A fresh newcomer gets in only by ranking before the fresh committer ranked last.
    const extra = await signer()
    const byScore = (peers: string[]): string[] => peers.sort((x, y) => compareBytes(leaderScore(seed, utf8(x)), leaderScore(seed, utf8(y))))
    const last = byScore([...state.commits.keys()].filter(peer => peer !== veteran.peerId)).at(-1) as string
    const ranksBefore = compareBytes(leaderScore(seed, utf8(extra.peerId)), leaderScore(seed, utf8(last))) < 0
    expect(state.addCommit(await commit(extra))).toBe(ranksBefore ? 'accepted' : 'full')
    expect(state.commits.size).toBe(MAX_COMMITTEE)
    expect(state.commits.has(last)).toBe(!ranksBefore)
  })

  it('strikes an identity that commits twice in one round, even with identical work', async () => {
    const [twin, validator] = [await signer(), await signer()]
    const prover = new ReferenceProver()
    const state = new RoundState(NET, 1, seed, N, K, { verifyBeacon })
    const first = await signPulse(await honestCommit(twin, prover, 1), twin)
    expect(state.addCommit(first)).toBe('accepted')
    // The same commit again (gossip can deliver twice) is no conflict.
    expect(state.addCommit(first)).toBe('duplicate')
    // The same work from a second running instance: identical root, another instance id.
    expect(state.addCommit(await signPulse(await honestCommit(twin, prover, 2), twin))).toBe('conflict')
    const challenge = await challengeBy(twin, state.commitSet())
    state.addChallenge(challenge)
    const rows = await prover.reveal(1, state.indices(challenge, twin.peerId))
    state.addReveal({ t: 'reveal', net: NET, r: 1, peer: twin.peerId, leader: twin.peerId, ...revealed(rows) })
    expect(await state.judgeAll(validator.peerId, inlineRecomputer)).toEqual([expect.objectContaining({ peer: twin.peerId, ok: false, reason: 'duplicate-identity' })])
  })

  it('a committer that sends the leader one root and everyone else another cannot make the leader\'s challenge invalid', async () => {
    const [leader, twoFaced] = (await Promise.all([signer(), signer()]))
      .sort((x, y) => compareBytes(leaderScore(seed, utf8(x.peerId)), leaderScore(seed, utf8(y.peerId))))
    const prover = new ReferenceProver()
    const state = new RoundState(NET, 1, seed, N, K, { verifyBeacon })
    state.addCommit(await signPulse(await honestCommit(leader as Signer, prover, 1), leader as Signer))
    const toOthers = await signPulse({ ...await honestCommit(twoFaced as Signer, prover, 1), root: new Uint8Array(32).fill(7) }, twoFaced as Signer)
    const toLeader = await signPulse(await honestCommit(twoFaced as Signer, prover, 2), twoFaced as Signer)
    state.addCommit(toOthers)
    const listed = [[(leader as Signer).peerId, state.commits.get((leader as Signer).peerId)?.message.root as Uint8Array], [(twoFaced as Signer).peerId, toLeader.message.root]] as Array<[string, Uint8Array]>
    const challenge = await challengeBy(leader as Signer, listed.sort((a, b) => (a[0] < b[0] ? -1 : 1)))
    state.addChallenge(challenge)
    expect(state.challengeFaults().get((leader as Signer).peerId), 'before the other root is heard').toBe('false-root')
    // The leader forwards the commit it took: once this node has heard both, the listed one is no lie.
    expect(state.addCommit(toLeader)).toBe('conflict')
    expect(state.canonicalChallenge()).toBe(challenge)
  })
})
