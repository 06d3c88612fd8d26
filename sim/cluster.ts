import '../src/relay/polyfills.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { memory } from '@libp2p/memory'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { createLibp2p, type Libp2p } from 'libp2p'
import { systemScheduler } from '../src/core/scheduler.ts'
import { hyperspaceGossip } from '../src/net/gossip.ts'
import { pulseSigner, verifyPulseSignature } from '../src/net/pulse-keys.ts'
import { PulseService, pulseTopic } from '../src/net/pulse-service.ts'
import type { CapabilityName } from '../src/core/capabilities.ts'
import type { Prover } from '../src/core/pulse/reference-prover.ts'
import type { HyperspaceServices } from '../src/net/services.ts'

/**
 * Real libp2p nodes in one process (memory transport, real GossipSub, the real PulseService), for
 * integration tests and traffic measurements. Every node dials every other; GossipSub builds its
 * mesh (D = 6) on top.
 */

export interface ClusterNodeSpec {
  name: string
  /** Absent: a validator-only node, as the relay is. */
  prover?: Prover
  validating: boolean
}

export interface ClusterOptions {
  networkId: string
  roundMs: number
  n: number
  k: number
}

export interface ClusterNode {
  name: string
  libp2p: Libp2p<HyperspaceServices>
  pulse: PulseService
  /** Pulse payload bytes this node published, and received (each message once, as delivered). */
  traffic: { sent: number, received: number }
}

export async function startCluster (specs: ClusterNodeSpec[], options: ClusterOptions): Promise<ClusterNode[]> {
  const topic = pulseTopic(options.networkId)
  const nodes: ClusterNode[] = []
  for (const spec of specs) {
    const key = await generateKeyPair('Ed25519')
    const libp2p = await createLibp2p({
      privateKey: key,
      addresses: { listen: [`/memory/${spec.name}-${crypto.randomUUID()}`] },
      transports: [memory()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: { identify: identify(), pubsub: hyperspaceGossip({ colocationPenalty: false }) }
    }) as unknown as Libp2p<HyperspaceServices>
    const caps: CapabilityName[] = spec.validating ? ['validation'] : []
    const pulse = new PulseService(libp2p, systemScheduler, {
      ...options,
      signer: pulseSigner(key),
      verify: verifyPulseSignature,
      ...(spec.prover !== undefined ? { prover: spec.prover } : {}),
      validating: () => spec.validating,
      workingCaps: () => caps
    })
    const node: ClusterNode = { name: spec.name, libp2p, pulse, traffic: { sent: 0, received: 0 } }
    libp2p.services.pubsub.addEventListener('message', evt => { if (evt.detail.topic === topic) node.traffic.received += evt.detail.data.byteLength })
    const publish = libp2p.services.pubsub.publish.bind(libp2p.services.pubsub)
    libp2p.services.pubsub.publish = async (t, data) => {
      if (t === topic) node.traffic.sent += data?.byteLength ?? 0
      return await publish(t, data)
    }
    nodes.push(node)
  }
  for (const [i, a] of nodes.entries()) {
    for (const b of nodes.slice(i + 1)) {
      const addr = b.libp2p.getMultiaddrs()[0]
      if (addr !== undefined) await a.libp2p.dial(addr)
    }
  }
  await Promise.all(nodes.map(async node => { await node.pulse.start() }))
  return nodes
}

export async function stopCluster (nodes: ClusterNode[]): Promise<void> {
  for (const node of nodes) node.pulse.stop()
  await Promise.all(nodes.map(async node => { await node.libp2p.stop() }))
}
