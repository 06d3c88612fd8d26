import '../../src/relay/polyfills.ts'
import { memory } from '@libp2p/memory'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ReferenceProver, type Prover } from '../../src/core/pulse/reference-prover.ts'
import type { WorkKey } from '../../src/core/pulse/work.ts'
import { systemScheduler } from '../../src/core/scheduler.ts'
import { hyperspaceGossip } from '../../src/net/gossip.ts'
import { pulseSigner, verifyPulseSignature } from '../../src/net/pulse-keys.ts'
import { PulseService, pulseTopic } from '../../src/net/pulse-service.ts'
import type { HyperspaceServices } from '../../src/net/services.ts'
import type { RoundSummary } from '../../src/net/pulse-ledger.ts'

/**
 * Several real libp2p nodes in one process (memory transport, real GossipSub) run the pulse with a
 * short round: honest nodes are verified every round, each kind of cheater is struck and earns nothing.
 */

const ROUND_MS = 2_000
const N = 16
const NET = 'dev-t2'

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

interface TestPeer {
  name: string
  libp2p: Libp2p<HyperspaceServices>
  pulse: PulseService
}

const peers: TestPeer[] = []

async function makePeer (name: string, prover: Prover): Promise<TestPeer> {
  const key = await generateKeyPair('Ed25519')
  const libp2p = await createLibp2p({
    privateKey: key,
    addresses: { listen: [`/memory/${name}-${Math.random().toString(36).slice(2)}`] },
    transports: [memory()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), pubsub: hyperspaceGossip({ colocationPenalty: false }) }
  }) as unknown as Libp2p<HyperspaceServices>
  const pulse = new PulseService(libp2p, systemScheduler, {
    networkId: NET, roundMs: ROUND_MS, n: N, k: 4, signer: pulseSigner(key), verify: verifyPulseSignature,
    prover, validating: () => true, workingCaps: () => ['validation']
  })
  return { name, libp2p, pulse }
}

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
    peers.push(
      await makePeer('honest-a', honestProvers[0] as ReferenceProver),
      await makePeer('honest-b', honestProvers[1] as ReferenceProver),
      await makePeer('honest-c', honestProvers[2] as ReferenceProver),
      await makePeer('wrong-work', new WrongWorkProver()),
      await makePeer('stale', new StaleProver()),
      await makePeer('copier', new CopyingProver(honestProvers[0] as ReferenceProver))
    )
    for (const a of peers) {
      for (const b of peers) {
        if (a !== b && a.name < b.name) await a.libp2p.dial(multiaddr(b.libp2p.getMultiaddrs()[0]?.toString() ?? ''))
      }
    }
    await Promise.all(peers.map(async p => { await p.pulse.start() }))
    // Until every node has at least three finished rounds it committed in (the first round is spent
    // learning the beacon); bounded, so a stalled pulse fails below instead of hanging.
    const deadline = Date.now() + 20 * ROUND_MS
    while (Date.now() < deadline && !peers.every(p => finishedCommits(p).length >= 3)) {
      await new Promise(resolve => setTimeout(resolve, ROUND_MS / 4))
    }
  }, 60_000)

  afterAll(async () => {
    for (const p of peers) p.pulse.stop()
    await Promise.all(peers.map(async p => { await p.libp2p.stop() }))
  })

  it('verifies honest nodes in every round they committed', () => {
    for (const peer of peers.slice(0, 3)) {
      const committed = finishedCommits(peer)
      expect(committed.length, peer.name).toBeGreaterThanOrEqual(3)
      for (const round of committed) expect(round.verified, `${peer.name} round ${round.round}`).toBe(true)
      expect(peer.pulse.ledger.summary(Date.now()).presence).toBeGreaterThan(0)
    }
  })

  it('strikes every cheater and gives it no points', () => {
    for (const peer of peers.slice(3)) {
      const committed = finishedCommits(peer)
      expect(committed.length, peer.name).toBeGreaterThanOrEqual(3)
      expect(verifiedRounds(committed), peer.name).toEqual([])
      for (const round of committed) expect(round.strike?.reason, `${peer.name} round ${round.round}`).toBe('wrong-row')
      expect(peer.pulse.ledger.summary(Date.now()).presence, peer.name).toBe(0)
    }
  })

  it('rejects a node replaying another node\'s signed commit under its own gossip identity', async () => {
    const [victim, attacker, watcher] = [peers[0] as TestPeer, peers[3] as TestPeer, peers[1] as TestPeer]
    const topic = pulseTopic(NET)
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
