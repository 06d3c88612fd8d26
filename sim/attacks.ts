import { challengeDigest, decodePulse, encodeSigned, resolveVerdict, signPulse, type ChallengeMessage, type PulseMessage, type SignedPulseMessage } from '../src/core/wire/pulse.ts'
import type { PulseSigner, PulseVerifier } from '../src/core/crypto/signing.ts'
import { challengeProofs } from '../src/core/pulse/seed.ts'
import type { PulseEngine } from '../src/core/pulse/engine.ts'
import type { Rng } from './rng.ts'
import type { SimKeys } from './sim-keys.ts'

/**
 * Scripted attackers for the simulator (`npm run sim -- --attack <kind> --attackers <share>`). Every
 * attacker does no real work (it runs the wrong-work prover), so any round in which one is verified is
 * points it did not earn; on top of that, each kind attacks the pulse itself:
 *
 * - seed-grind: during round r, publishes round r + 1's commit and challenge under a seed it chose.
 * - bad-leader: every challenge it publishes lists false roots for the others and omits half of them
 *   (it leads whenever the draw makes it first; its histories are aged).
 * - sybil-verdicts: each round, three fresh keys publish verdicts passing every attacker and striking
 *   every honest committer it heard.
 * - lying-validators: aged attackers; whenever one is drawn to validate, its verdict passes attackers
 *   and strikes honest committers.
 * - commit-flood: each round, commits from 20 fresh keys with the round's true seed.
 * - capability-liar: the one kind that does its pulse work (it earns presence points honestly); it
 *   claims every capability a full browser node serves and serves none, against honest nodes that
 *   serve them (capabilities.ts). What it must not get is the capability bonus.
 */
export const ATTACK_KINDS = ['seed-grind', 'bad-leader', 'sybil-verdicts', 'lying-validators', 'commit-flood', 'capability-liar'] as const
export type AttackKind = typeof ATTACK_KINDS[number]

export function isAttackKind (value: string): value is AttackKind {
  return (ATTACK_KINDS as readonly string[]).includes(value)
}

/** Whether the attackers of this kind have an aged history (days of rounds) when the run starts. */
export function attackersAged (kind: AttackKind): boolean {
  return kind === 'bad-leader' || kind === 'lying-validators' || kind === 'capability-liar'
}

/** Whether the attackers of this kind do the pulse work (their lie is elsewhere). */
export function doesRealWork (kind: AttackKind): boolean {
  return kind === 'capability-liar'
}

export interface AttackerPlace {
  networkId: string
  roundMs: number
  signer: PulseSigner
  engine: PulseEngine
  keys: SimKeys
  verify: PulseVerifier
  rng: Rng
  /** Peer ids of every attacker of the run. */
  accomplices: ReadonlySet<string>
  /** Publishes a signed message from the attacker's place in the gossip, authored by whoever signed it. */
  /** `judged`: a verdict's challenge, which its results travel against. */
  inject(signed: SignedPulseMessage, judged?: ChallengeMessage): Promise<void>
  /** Runs `fn` at `fraction` of every round from now on. */
  everyRoundAt(fraction: number, fn: (round: number) => Promise<void>): void
}

const SYBIL_VERDICTS = 3
const FLOOD_COMMITS = 20

export class Attacker {
  constructor (readonly kind: AttackKind, private readonly place: AttackerPlace) {}

  start (): void {
    const p = this.place
    if (this.kind === 'seed-grind') p.everyRoundAt(0.2, async round => { await this.grindNextSeed(round) })
    if (this.kind === 'sybil-verdicts') p.everyRoundAt(0.75, async round => { await this.sybilVerdicts(round) })
    if (this.kind === 'commit-flood') p.everyRoundAt(0.1, async round => { await this.flood(round) })
  }

  /** What the attacker's own engine publishes, rewritten for the kinds that lie through it. */
  async tamper (data: Uint8Array): Promise<Uint8Array> {
    if (this.kind !== 'bad-leader' && this.kind !== 'lying-validators') return data
    const signed = await decodePulse(data, this.place.verify)
    const message = signed.message
    if (this.kind === 'bad-leader' && message.t === 'challenge') {
      const commits = message.commits
        .filter(([peer], i) => peer === message.peer || i % 2 === 0)
        .map(([peer, root]): [string, Uint8Array] => [peer, peer === message.peer ? root : this.place.rng.bytes(32)])
      return await this.resign({ ...message, commits })
    }
    if (this.kind === 'lying-validators' && message.t === 'verdict-digest') {
      const challenge = this.place.engine.round(message.r)?.canonicalChallenge()
      const verdict = challenge === undefined ? undefined : resolveVerdict({ ...signed, message }, challenge)
      if (verdict === undefined) return data
      const results = verdict.message.results.map(r => this.place.accomplices.has(r.peer)
        ? { peer: r.peer, ok: true, root: r.root, caps: r.caps }
        : { peer: r.peer, ok: false, reason: 'wrong-row' as const, root: r.root, caps: r.caps })
      return await this.resign({ ...verdict.message, results }, challenge?.message)
    }
    return data
  }

  private async resign (message: PulseMessage, judged?: ChallengeMessage): Promise<Uint8Array> {
    return encodeSigned(await signPulse(message, this.place.signer), judged)
  }

  private async grindNextSeed (round: number): Promise<void> {
    const p = this.place
    const seed = p.rng.bytes(32)
    const root = p.rng.bytes(32)
    const base = { net: p.networkId, r: round + 1, peer: p.signer.peerId, seed }
    await p.inject(await signPulse({ t: 'commit', ...base, root, n: 16, caps: [], sid: p.rng.bytes(8) }, p.signer))
    const commits: Array<[string, Uint8Array]> = [[p.signer.peerId, root]]
    const proofs = await challengeProofs(p.keys.beaconKey(p.signer.peerId), p.networkId, round + 1, seed, commits)
    await p.inject(await signPulse({ t: 'challenge', ...base, commits, k: 8, ...proofs }, p.signer))
  }

  private async sybilVerdicts (round: number): Promise<void> {
    const p = this.place
    const state = p.engine.round(round)
    const challenge = state?.canonicalChallenge()
    if (state === undefined || challenge === undefined) return
    // A verdict's results name the committers of the challenge it judged, as that challenge lists them.
    const results = challenge.message.commits.map(([peer, root]) => p.accomplices.has(peer)
      ? { peer, ok: true, root, caps: [] }
      : { peer, ok: false, reason: 'wrong-row' as const, root, caps: [] })
    for (let i = 0; i < SYBIL_VERDICTS; i++) {
      const sybil = p.keys.create()
      await p.inject(await signPulse({ t: 'verdict', net: p.networkId, r: round, peer: sybil.peerId, seed: state.seed, judged: challengeDigest(challenge), results }, sybil), challenge.message)
    }
  }

  private async flood (round: number): Promise<void> {
    const p = this.place
    const state = p.engine.round(round)
    if (state === undefined) return
    for (let i = 0; i < FLOOD_COMMITS; i++) {
      const sybil = p.keys.create()
      await p.inject(await signPulse({ t: 'commit', net: p.networkId, r: round, peer: sybil.peerId, seed: state.seed, root: p.rng.bytes(32), n: state.n, caps: [], sid: p.rng.bytes(8) }, sybil))
    }
  }
}
