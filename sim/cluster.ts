import '../src/relay/polyfills.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { memory } from '@libp2p/memory'
import { noise } from '@libp2p/noise'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { yamux } from '@libp2p/yamux'
import { createLibp2p, type Libp2p } from 'libp2p'
import { systemScheduler } from '../src/core/scheduler.ts'
import { hyperspaceGossip, pulseGossip } from '../src/net/gossip.ts'
import { beaconProver, pulseSigner, verifyBeacon, verifyPulseSignature } from '../src/net/pulse-keys.ts'
import { ValidatorHistory } from '../src/core/pulse/validators.ts'
import { PulseService } from '../src/net/pulse-service.ts'
import type { CapabilityName } from '../src/core/capabilities.ts'
import type { Prover } from '../src/core/pulse/reference-prover.ts'
import type { CapabilityProber } from '../src/core/pulse/ports.ts'
import type { SpotCheckOptions } from '../src/core/pulse/spot-checks.ts'
import type { HyperspaceServices } from '../src/net/services.ts'
import type { PulseStore } from '../src/storage/pulse-store.ts'
import type { PrivateKey } from '@libp2p/interface'

/**
 * Real libp2p nodes in one process (memory transport, real GossipSub, the real PulseService), for
 * integration tests, traffic measurements and the simulator's real mode. Nodes dial every other node,
 * or a given number of random others in larger clusters; GossipSub builds its mesh (D = 6) on top.
 */

export interface ClusterNodeSpec {
  name: string
  /** Absent: a validator-only node, as the relay is. */
  prover?: Prover
  validating: boolean
  /**
   * Trusted by the others as an anchor, as browsers trust the relays of their bootstrap list; by
   * default every validator-only node is.
   */
  anchor?: boolean
  /** The capabilities it commits: `validation` when validating, unless given. */
  caps?: CapabilityName[]
  /** How it spot-checks others' capabilities when drawn, made once its libp2p node exists. */
  prober?: (libp2p: Libp2p<HyperspaceServices>, key: PrivateKey) => CapabilityProber
}

export interface ClusterOptions {
  networkId: string
  roundMs: number
  n: number
  k: number
  /** How many random others each node dials; every other node when absent. */
  dials?: number
  /**
   * Delay on every buffer sent, in ms. Besides modelling a link, it makes deliveries timer events:
   * without it a message's whole flood runs as one chain of microtasks, and nodes sharing the process
   * cannot get a word in until it is over.
   */
  latencyMs?: number
  /** Every member starts with an aged history in every other's view: a network after days of rounds. */
  aged?: boolean
  /** Where a node keeps its rounds and attestations (none by default): what a points proof reads. */
  store?: (name: string) => PulseStore | undefined
  /** Spot-check rates and bounds for every node (the protocol's defaults unless given). */
  spotChecks?: Partial<SpotCheckOptions>
}

/** GossipSub RPCs as they go on the stream (protobuf, before length prefix, Noise and Yamux). */
export interface WireCounters {
  bytesIn: number
  bytesOut: number
  rpcsIn: number
  rpcsOut: number
}

export interface ClusterNode {
  name: string
  libp2p: Libp2p<HyperspaceServices>
  pulse: PulseService
  /** Pulse payload bytes this node published, and received (each message once, as delivered). */
  traffic: { sent: number, received: number }
  /** Its identity key, for tests that act as this node outside its pulse service. */
  key: PrivateKey
  /** Every GossipSub RPC this node sent and received, control included. */
  wire: WireCounters
}

/**
 * GossipSub measures each RPC it sends and receives for its metrics; this stands in for its metrics
 * object to read just those two figures, and ignores every other metric call.
 */
function rpcMeter (wire: WireCounters): unknown {
  const ignore: unknown = new Proxy(() => ignore, { get: () => ignore })
  return new Proxy({}, {
    get: (_, name) => {
      if (name === 'onRpcSent') return (_rpc: unknown, bytes: number) => { wire.bytesOut += bytes; wire.rpcsOut++ }
      if (name === 'onRpcRecv') return (_rpc: unknown, bytes: number) => { wire.bytesIn += bytes; wire.rpcsIn++ }
      return ignore
    }
  })
}

export async function startCluster (specs: ClusterNodeSpec[], options: ClusterOptions): Promise<ClusterNode[]> {
  const isPulse = (topic: string): boolean => topic.startsWith(`hyperspace/v2/${options.networkId}/pulse/`)
  const nodes: ClusterNode[] = []
  const keys = await Promise.all(specs.map(async () => await generateKeyPair('Ed25519')))
  // Validator-only nodes stand for relays, which browsers trust as the anchors of their bootstrap list.
  const ids = keys.map(key => peerIdFromPrivateKey(key).toString())
  const anchors = ids.filter((_, i) => specs[i]?.anchor ?? specs[i]?.prover === undefined)
  const aged = new Set(options.aged === true ? ids : [])
  for (const [i, spec] of specs.entries()) {
    const key = keys[i] as PrivateKey
    const libp2p = await createLibp2p({
      privateKey: key,
      addresses: { listen: [`/memory/${spec.name}-${crypto.randomUUID()}`] },
      transports: [memory({ latency: options.latencyMs ?? 0 })],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: { identify: identify(), pubsub: hyperspaceGossip({ colocationPenalty: false }), pulsePubsub: pulseGossip({ colocationPenalty: false }) }
    }) as unknown as Libp2p<HyperspaceServices>
    const caps: CapabilityName[] = spec.caps ?? (spec.validating ? ['validation'] : [])
    const pulse = new PulseService(libp2p, systemScheduler, {
      networkId: options.networkId,
      roundMs: options.roundMs,
      n: options.n,
      k: options.k,
      signer: pulseSigner(key),
      verify: verifyPulseSignature,
      beaconKey: beaconProver(key),
      verifyBeacon,
      ...(spec.prover !== undefined ? { prover: spec.prover } : {}),
      validating: () => spec.validating,
      workingCaps: () => caps,
      store: options.store?.(spec.name),
      ...(spec.prober !== undefined ? { prober: spec.prober(libp2p, key) } : {}),
      ...(options.spotChecks !== undefined ? { spotChecks: options.spotChecks } : {}),
      history: new ValidatorHistory(anchors, [], peer => aged.has(peer))
    })
    const node: ClusterNode = { name: spec.name, libp2p, pulse, key, traffic: { sent: 0, received: 0 }, wire: { bytesIn: 0, bytesOut: 0, rpcsIn: 0, rpcsOut: 0 } }
    const pulsePubsub = libp2p.services.pulsePubsub
    ;(pulsePubsub as unknown as { metrics: unknown }).metrics = rpcMeter(node.wire)
    pulsePubsub.addEventListener('message', evt => { if (isPulse(evt.detail.topic)) node.traffic.received += evt.detail.data.byteLength })
    const publish = pulsePubsub.publish.bind(pulsePubsub)
    pulsePubsub.publish = async (t, data) => {
      if (isPulse(t)) node.traffic.sent += data?.byteLength ?? 0
      return await publish(t, data)
    }
    nodes.push(node)
  }
  for (const [i, a] of nodes.entries()) {
    const others = options.dials === undefined
      ? nodes.slice(i + 1)
      : Array.from({ length: options.dials }, () => nodes[Math.floor(Math.random() * nodes.length)] as ClusterNode).filter(b => b !== a)
    for (const b of new Set(others)) {
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
