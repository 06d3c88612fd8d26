import { describe, expect, it } from 'vitest'
import { encodeSigned, signPulse, type RevealMessage } from '../../src/core/wire/pulse.ts'
import { revealRecipients } from '../../src/core/pulse/reveal-recipients.ts'
import { DRAWN_VALIDATORS } from '../../src/core/pulse/validators.ts'
import { NET, PulseBus, type BusNode } from './pulse-bus.ts'

/**
 * Pulse v7: reveals travel on streams to the peers that judge them (reveal-recipients.ts), not on the
 * committee topic. The engine's side, on virtual time: who gets reveals, what a receiver refuses, and
 * what a committer does when a judge cannot be reached.
 */

function verifiedIn (nodes: BusNode[], from: number, to: number): number {
  let verified = 0
  for (const node of nodes) for (let r = from; r < to; r++) if (node.book.get(r).verified) verified++
  return verified
}

function agedCommittee (bus: PulseBus, size: number): BusNode[] {
  return bus.add(Array.from({ length: size }, (_, i) => ({ name: `n${i}`, kind: 'honest' as const, aged: true })))
}

describe('reveals sent to their judges (pulse v7)', () => {
  it('in an aged committee every reveal goes over streams to the draw\'s first peers, none on the topic, and every node is verified', async () => {
    const bus = new PulseBus(21)
    const nodes = agedCommittee(bus, 12)
    await bus.runRounds(2)
    const from = bus.round
    await bus.runTo(0.9)
    const state = nodes[0]?.engine.round(from)
    const round = state?.revealRound()
    if (state === undefined || round === undefined) throw new Error('no round')
    // Each committer sends to the drawn validators and the margin after them: 8 of its 11 peers at most.
    const judges = new Set(revealRecipients(round, ''))
    expect(judges.size).toBeLessThan(nodes.length)
    for (const node of nodes) {
      const held = [...node.engine.round(from)?.reveals.keys() ?? []].filter(peer => peer !== node.signer.peerId)
      expect(held.length, node.name).toBe(judges.has(node.signer.peerId) ? nodes.length - 1 : 0)
    }
    await bus.runRounds(3)
    expect(bus.topicReveals).toBe(0)
    expect(bus.directReveals).toBeGreaterThanOrEqual(4 * nodes.length * DRAWN_VALIDATORS)
    expect(verifiedIn(nodes, from, bus.round - 1)).toBe(nodes.length * (bus.round - 1 - from))
  })

  it('unsolicited reveals are refused and kept nowhere: from a key that never committed, for a round not held, relayed by another peer, or not a reveal', async () => {
    const bus = new PulseBus(22)
    const nodes = agedCommittee(bus, 6)
    await bus.runRounds(2)
    await bus.runTo(0.6)
    const judge = nodes[0] as BusNode
    const committer = nodes[1] as BusNode
    const r = bus.round
    const state = judge.engine.round(r)
    if (state === undefined) throw new Error('no round')
    const reveal = (peer: string, round: number): RevealMessage => ({ t: 'reveal', net: NET, r: round, peer, leader: peer, rows: [0, 1], proof: [new Uint8Array(32)] })
    const stranger = bus.freshKey()
    const fromStranger = encodeSigned(await signPulse(reveal(stranger.peerId, r), stranger))
    expect(await bus.offerReveal(judge, stranger.peerId, fromStranger)).toBe(false)
    expect(state.reveals.has(stranger.peerId)).toBe(false)
    // A committer's reveal for a round the judge holds no state of (the next one), and one sent by someone else.
    const ahead = encodeSigned(await signPulse(reveal(committer.signer.peerId, r + 1), committer.signer))
    expect(await bus.offerReveal(judge, committer.signer.peerId, ahead)).toBe(false)
    const genuine = encodeSigned(await signPulse({ ...reveal(committer.signer.peerId, r), leader: 'x' }, committer.signer))
    expect(await bus.offerReveal(judge, stranger.peerId, genuine)).toBe(false)
    const commit = encodeSigned(await signPulse({ t: 'commit', net: NET, r, peer: stranger.peerId, seed: state.seed, root: new Uint8Array(32), n: state.n, caps: [], sid: new Uint8Array(8) }, stranger))
    expect(await bus.offerReveal(judge, stranger.peerId, commit)).toBe(false)
    expect(state.commits.has(stranger.peerId)).toBe(false)
    // Bounded: a flood of them leaves the judge's reveals as they were.
    const before = state.reveals.size
    for (let i = 0; i < 50; i++) {
      const key = bus.freshKey()
      await bus.offerReveal(judge, key.peerId, encodeSigned(await signPulse(reveal(key.peerId, r), key)))
    }
    expect(state.reveals.size).toBe(before)
  })

  it('a judge that refuses every stream: committers publish on the topic instead, and nobody is struck for a reveal it never got', async () => {
    const bus = new PulseBus(23)
    const nodes = agedCommittee(bus, 7)
    await bus.runRounds(2)
    const from = bus.round
    for (const node of nodes.slice(0, 2)) bus.refusing.add(node.signer.peerId)
    await bus.runRounds(3)
    expect(bus.topicReveals).toBeGreaterThan(0)
    for (const node of nodes) {
      for (let r = from; r < bus.round - 1; r++) {
        expect(node.book.get(r).verified, `${node.name} round ${r}`).toBe(true)
        expect(node.book.get(r).strikes, `${node.name} round ${r}`).toEqual([])
      }
    }
  })

  it('a young network (nobody aged): reveals go on the topic as before, and the anchor verifies everyone', async () => {
    const bus = new PulseBus(24)
    bus.add([{ name: 'relay', kind: 'anchor' }, { name: 'a', kind: 'honest' }, { name: 'b', kind: 'honest' }])
    await bus.runRounds(2)
    const from = bus.round
    await bus.runRounds(2)
    expect(bus.directReveals).toBe(0)
    expect(bus.topicReveals).toBeGreaterThan(0)
    expect(verifiedIn(['a', 'b'].map(n => bus.node(n)), from, bus.round - 1)).toBe(2 * (bus.round - 1 - from))
  })
})
