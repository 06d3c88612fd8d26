import { describe, expect, it } from 'vitest'
import { compareBytes, sha256Of, utf8 } from '../../src/core/crypto/bytes.ts'
import { leaderScore } from '../../src/core/pulse/seed.ts'
import { AGE_ROUNDS, AGE_SLACK } from '../../src/core/pulse/validators.ts'
import { MAX_COMMITTEE } from '../../src/core/wire/pulse.ts'
import type { PulseSigner } from '../../src/core/crypto/signing.ts'
import { NET, N, PulseBus, type BusNode } from './pulse-bus.ts'

/**
 * A young network (no committer aged anywhere) against the cheapest leader attack: a free key ground
 * until it ranks first for the round's public seed, which commits and publishes a valid challenge
 * listing only itself and its Sybils. Without anchors leading young rounds, honest committers were
 * never listed, so never verified, never aged, while the Sybils aged in their place.
 */

const HONEST = ['a', 'b', 'c']

function verifiedIn (node: BusNode, from: number, to: number): number {
  let count = 0
  for (let r = from; r < to; r++) if (node.book.get(r).verified) count++
  return count
}

interface YoungNetwork { bus: PulseBus, relay: BusNode, honest: BusNode[], from: number }

/**
 * A young network on a bus seeded `seed`: one relay, an anchor of every page, and the honest pages,
 * run `warmUp` rounds; `from` is the first round the test judges.
 */
async function youngNetwork (seed: number, warmUp: number): Promise<YoungNetwork> {
  const bus = new PulseBus(seed)
  const [relay, ...honest] = bus.add([{ name: 'relay', kind: 'anchor' }, ...HONEST.map(name => ({ name, kind: 'honest' as const }))]) as [BusNode, ...BusNode[]]
  await bus.runRounds(warmUp)
  return { bus, relay, honest, from: bus.round }
}

/** Every node of `nodes` was verified in every finished round since `from`. */
function expectEveryRoundVerified (bus: PulseBus, nodes: readonly BusNode[], from: number): void {
  for (const node of nodes) expect(verifiedIn(node, from, bus.round - 1), `${node.name} verified`).toBe(bus.round - 1 - from)
}

/** A fresh key whose leader score for `seed` beats every peer of `rivals`: about rivals + 1 key generations. */
function groundLeader (bus: PulseBus, seed: Uint8Array, rivals: readonly string[]): PulseSigner {
  const best = rivals.map(peer => leaderScore(seed, utf8(peer))).sort(compareBytes)[0] as Uint8Array
  for (;;) {
    const key = bus.freshKey()
    if (compareBytes(leaderScore(seed, utf8(key.peerId)), best) < 0) return key
  }
}

/** Each round: a ground leader and two Sybils commit early, and the leader lists only them at 0.41T; `atReveal` looks on at 0.6T. */
async function groundLeaderRounds (bus: PulseBus, rounds: number, seedFrom: BusNode, honest: readonly BusNode[], atReveal: (round: number) => void): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    await bus.runTo(0.05)
    const r = bus.round
    const seed = seedFrom.engine.round(r)?.seed
    if (seed === undefined) throw new Error(`${seedFrom.name} holds no seed for round ${r}`)
    const leader = groundLeader(bus, seed, honest.map(node => node.signer.peerId))
    const sybils = [leader, bus.freshKey(), bus.freshKey()]
    const commits = sybils
      .map(key => [key.peerId, sha256Of(utf8(key.peerId))] as [string, Uint8Array])
      .sort((x, y) => (x[0] < y[0] ? -1 : 1))
    for (const key of sybils) {
      await bus.inject(key, { t: 'commit', net: NET, r, peer: key.peerId, seed, root: sha256Of(utf8(key.peerId)), n: N, caps: [], sid: new Uint8Array(8) })
    }
    await bus.runTo(0.41)
    await bus.inject(leader, { t: 'challenge', net: NET, r, peer: leader.peerId, seed, commits, k: 4, ...await bus.proofs(leader, r, seed, commits) })
    await bus.runTo(0.6)
    atReveal(r)
    await bus.runRounds(1)
  }
}

describe('a young network against a leader ground from free keys', () => {
  it('the anchor leads: every honest committer is listed and verified, every round', async () => {
    const { bus, relay, honest, from } = await youngNetwork(41, 2)
    const leaders: Array<string | undefined> = []
    await groundLeaderRounds(bus, 4, honest[0] as BusNode, honest, r => { leaders.push(honest[0]?.engine.round(r)?.canonicalChallenge()?.message.peer) })
    expectEveryRoundVerified(bus, honest, from)
    expect(leaders).toEqual(leaders.map(() => relay.signer.peerId))
  })

  it('while the anchor leads, committers publish no challenge of their own', async () => {
    const { bus, relay, honest, from } = await youngNetwork(46, 3)
    for (let i = 0; i < 3; i++) {
      await bus.runTo(0.6)
      for (const node of honest) expect([...node.engine.round(bus.round)?.challenges.keys() ?? []], `${node.name}'s challenges`).toEqual([relay.signer.peerId])
    }
    await bus.runRounds(1)
    expectEveryRoundVerified(bus, honest, from)
  })

  it('a full commit set keeps committers with a verified history before fresh keys ground to rank first', async () => {
    const { bus, relay, honest, from } = await youngNetwork(43, 4)
    for (let i = 0; i < 2; i++) {
      await bus.runTo(0.05)
      const r = bus.round
      const seed = honest[0]?.engine.round(r)?.seed as Uint8Array
      const rivals = honest.map(node => node.signer.peerId)
      for (let j = 0; j < MAX_COMMITTEE; j++) {
        const key = groundLeader(bus, seed, rivals)
        await bus.inject(key, { t: 'commit', net: NET, r, peer: key.peerId, seed, root: sha256Of(utf8(key.peerId)), n: N, caps: [], sid: new Uint8Array(8) })
      }
      await bus.runTo(0.6)
      const listed = relay?.engine.round(r)?.canonicalChallenge()?.message.commits.map(([peer]) => peer) ?? []
      for (const node of honest) expect(listed, `${node.name} listed in round ${r}`).toContain(node.signer.peerId)
      await bus.runRounds(1)
    }
    expectEveryRoundVerified(bus, honest, from)
  })

  it('two relays told of each other (--anchor) follow one leader: both vote on every page, every round', async () => {
    const bus = new PulseBus(45)
    const [relay1, relay2, ...honest] = bus.add([{ name: 'relay-1', kind: 'anchor' }, { name: 'relay-2', kind: 'anchor' }, ...HONEST.map(name => ({ name, kind: 'honest' as const }))]) as BusNode[]
    await bus.runRounds(3)
    const from = bus.round
    for (let i = 0; i < 4; i++) {
      await bus.runTo(0.95)
      for (const node of honest) {
        const passes = node.engine.round(bus.round)?.outcomeFor(node.signer.peerId)?.passes
        expect(passes, `${node.name}'s passes in round ${bus.round}`).toBe(2)
      }
    }
    await bus.runRounds(1)
    expectEveryRoundVerified(bus, honest, from)
    expect([...relay1?.unknownLeaders ?? [], ...relay2?.unknownLeaders ?? []]).toEqual([])
  })

  it('two relays that were not told of each other (no --anchor) both lead: one drops off the chain, and the pages still verify every round', async () => {
    const bus = new PulseBus(44)
    const [relay1, relay2, ...honest] = bus.add([
      { name: 'relay-1', kind: 'anchor', unconfigured: true },
      { name: 'relay-2', kind: 'anchor', unconfigured: true },
      ...HONEST.map(name => ({ name, kind: 'honest' as const }))
    ]) as BusNode[]
    await bus.runRounds(3)
    const from = bus.round
    await bus.runRounds(6)
    expectEveryRoundVerified(bus, honest, from)
    // The relay that dropped off says why, so that its operator can pass --anchor.
    const told = [...relay1?.unknownLeaders ?? [], ...relay2?.unknownLeaders ?? []]
    expect(told.length).toBeGreaterThan(0)
    for (const leader of told) expect([relay1?.signer.peerId, relay2?.signer.peerId]).toContain(leader)
  })

  it('once every view holds a committer as firmly aged, the anchor steps back and committers lead', async () => {
    const settled = AGE_ROUNDS + 2 * AGE_SLACK
    const bus = new PulseBus(42)
    const seen = Object.fromEntries(HONEST.map(name => [name, settled]))
    const [relay, ...honest] = bus.add([{ name: 'relay', kind: 'anchor', seen }, ...HONEST.map(name => ({ name, kind: 'honest' as const, seen }))]) as [BusNode, ...BusNode[]]
    await bus.runRounds(2)
    const from = bus.round
    const leaders = new Set<string | undefined>()
    for (let i = 0; i < 3; i++) {
      await bus.runTo(0.9)
      leaders.add(honest[0]?.engine.round(bus.round)?.canonicalChallenge()?.message.peer)
    }
    await bus.runRounds(1)
    expectEveryRoundVerified(bus, honest, from)
    expect(leaders.has(relay.signer.peerId)).toBe(false)
    for (const leader of leaders) expect(honest.map(node => node.signer.peerId)).toContain(leader)
  })
})
