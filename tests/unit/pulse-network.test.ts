import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ReferenceProver, type Prover } from '../../src/core/pulse/reference-prover.ts'
import { pulseTopic } from '../../src/net/pulse-service.ts'
import { startCluster, stopCluster, type ClusterNode } from '../../sim/cluster.ts'
import type { WorkKey } from '../../src/core/pulse/work.ts'
import type { RoundSummary } from '../../src/net/pulse-ledger.ts'

/**
 * Several real libp2p nodes in one process (memory transport, real GossipSub) run the pulse with a
 * short round: honest nodes are verified every round, each kind of cheater is struck and earns nothing.
 */

const ROUND_MS = 3_000
const N = 16
const NET = 'dev-t3'

/** Commits a root over the wrong rows: its work used a different key. */
class WrongWorkProver implements Prover {
  private readonly inner = new ReferenceProver()
  async prove (round: number, key: WorkKey, n: number) { return await this.inner.prove(round, { k0: key.k0 ^ 1, k1: key.k1 }, n) }
  async reveal (round: number, indices: readonly number[]) { return await this.inner.reveal(round, indices) }
}

/** Serves last round's proof as this round's: stale rows. */
class StaleProver implements Prover {
  private readonly inner = new ReferenceProver()
  private lastKey?: WorkKey
  async prove (round: number, key: WorkKey, n: number) {
    // In its first round it has no earlier proof: it uses any other round's key.
    const used = this.lastKey ?? { k0: key.k0, k1: key.k1 ^ 1 }
    this.lastKey = key
    return await this.inner.prove(round, used, n)
  }

  async reveal (round: number, indices: readonly number[]) { return await this.inner.reveal(round, indices) }
}

/** Does no work of its own: commits and reveals exactly what an honest node computed. */
class CopyingProver implements Prover {
  constructor (private readonly victim: ReferenceProver) {}
  async prove (round: number) {
    for (let i = 0; i < 50; i++) {
      try {
        const rows = await this.victim.reveal(round, [0])
        if (rows.length > 0) return { root: (await this.victimRoot(round)) }
      } catch { await new Promise(resolve => setTimeout(resolve, 10)) }
    }
    throw new Error('victim never proved')
  }

  private async victimRoot (round: number) { return (this.victim as unknown as { proofs: Map<number, { tree: { root: Uint8Array } }> }).proofs.get(round)?.tree.root as Uint8Array }
  async reveal (round: number, indices: readonly number[]) { return await this.victim.reveal(round, indices) }
}

type TestPeer = ClusterNode

let peers: TestPeer[] = []

/** Rounds this node committed in whose verdict window has closed. */
function finishedCommits (peer: TestPeer): RoundSummary[] {
  const current = Math.floor(Date.now() / ROUND_MS)
  return peer.pulse.ledger.history(30).filter(r => r.committed && r.round < current - 1)
}

function verifiedRounds (history: RoundSummary[]): number[] {
  return history.filter(r => r.verified).map(r => r.round)
}

describe('pulse between real libp2p nodes', () => {
  const honestProvers = [new ReferenceProver(), new ReferenceProver(), new ReferenceProver()]

  beforeAll(async () => {
    const provers: Array<[string, Prover]> = [
      ['honest-a', honestProvers[0] as ReferenceProver],
      ['honest-b', honestProvers[1] as ReferenceProver],
      ['honest-c', honestProvers[2] as ReferenceProver],
      ['wrong-work', new WrongWorkProver()],
      ['stale', new StaleProver()],
      ['copier', new CopyingProver(honestProvers[0] as ReferenceProver)]
    ]
    // A validator-only node stands for the relay every browser trusts as an anchor: in a network where
    // nobody has aged yet, its verdicts are the only ones that count.
    peers = await startCluster([...provers.map(([name, prover]) => ({ name, prover, validating: true })), { name: 'relay', validating: true }], { networkId: NET, roundMs: ROUND_MS, n: N, k: 4 })
    // Until every node has at least three finished rounds it committed in (the first round is spent
    // learning the beacon); bounded, so a stalled pulse fails below instead of hanging.
    const deadline = Date.now() + 20 * ROUND_MS
    while (Date.now() < deadline && !peers.slice(0, provers.length).every(p => finishedCommits(p).length >= 3)) {
      await new Promise(resolve => setTimeout(resolve, ROUND_MS / 4))
    }
  }, 60_000)

  afterAll(async () => { await stopCluster(peers) })

  it('verifies honest nodes in every round they committed', () => {
    for (const peer of peers.slice(0, 3)) {
      const committed = finishedCommits(peer)
      expect(committed.length, peer.name).toBeGreaterThanOrEqual(3)
      for (const round of committed) expect(round.verified, `${peer.name} round ${round.round}`).toBe(true)
      expect(peer.pulse.ledger.summary(Date.now()).presence).toBeGreaterThan(0)
    }
  })

  it('strikes every cheater and gives it no points', () => {
    for (const peer of peers.slice(3, 6)) {
      const committed = finishedCommits(peer)
      expect(committed.length, peer.name).toBeGreaterThanOrEqual(3)
      expect(verifiedRounds(committed), peer.name).toEqual([])
      for (const round of committed) expect(round.strike?.reason, `${peer.name} round ${round.round}`).toBe('wrong-row')
      expect(peer.pulse.ledger.summary(Date.now()).presence, peer.name).toBe(0)
    }
  })

  it('rejects a node replaying another node\'s signed commit under its own gossip identity', async () => {
    const [victim, attacker, watcher] = [peers[0] as TestPeer, peers[3] as TestPeer, peers[1] as TestPeer]
    const topic = pulseTopic(NET, 0)
    const victimCommit = await new Promise<Uint8Array>(resolve => {
      attacker.libp2p.services.pubsub.addEventListener('message', evt => {
        const msg = evt.detail
        if (msg.topic === topic && msg.type === 'signed' && msg.from.equals(victim.libp2p.peerId) && msg.data.byteLength < 1024) resolve(msg.data)
      })
    })
    const seenByWatcher: string[] = []
    watcher.libp2p.services.pubsub.addEventListener('message', evt => {
      const msg = evt.detail
      if (msg.topic === topic && msg.type === 'signed' && msg.from.equals(attacker.libp2p.peerId) && msg.data.byteLength === victimCommit.byteLength &&
        msg.data.every((b, i) => b === victimCommit[i])) seenByWatcher.push('replay')
    })
    await attacker.libp2p.services.pubsub.publish(topic, victimCommit)
    await new Promise(resolve => setTimeout(resolve, 500))
    expect(seenByWatcher).toEqual([])
  })
})
