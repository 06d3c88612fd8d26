import '../../src/relay/polyfills.ts'
import v8 from 'node:v8'
import vm from 'node:vm'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { generateKeyPair, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { gossipsub, type GossipSub } from '@libp2p/gossipsub'
import { RPC } from '@libp2p/gossipsub/message'
import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { peerIdFromMultihash, peerIdFromPrivateKey } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import { webSockets } from '@libp2p/websockets'
import { yamux } from '@libp2p/yamux'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { create as createDigest, decode as decodeDigest } from 'multiformats/hashes/digest'
import { systemScheduler } from '../../src/core/scheduler.ts'
import { CapabilityGossip, type PeerAnnouncement } from '../../src/net/capability-gossip.ts'
import { hyperspaceGossip, pulseGossip } from '../../src/net/gossip.ts'
import { PULSE_GOSSIP_PROTOCOL } from '../../src/core/wire/pulse-gossip.ts'
import { dhtProtocol } from '../../src/core/wire/dht.ts'
import { RELAY_DEFAULTS, startRelay, type Relay, type RelayOptions } from '../../src/relay/relay.ts'
import type { HyperspaceServices } from '../../src/net/services.ts'
import type { PeerId, PrivateKey, Stream } from '@libp2p/interface'
import type { KadDHT } from '@libp2p/kad-dht'
import { afterEach } from 'vitest'
import { eventually, until } from './waiting.ts'
import { varint } from './length-prefixed.ts'

/**
 * The adversarial-peer harness: a real relay in this process on 127.0.0.1 and Node libp2p peers
 * that attack it over WebSockets, as a remote peer would.
 */

export async function startTestRelay (options: Partial<RelayOptions> = {}): Promise<Relay> {
  return await startRelay({
    ...RELAY_DEFAULTS,
    privateKey: await generateKeyPair('Ed25519'),
    port: 0,
    announce: [],
    ...options
  })
}

export type Peer = Libp2p<{ identify: ReturnType<ReturnType<typeof identify>> }>

/** What a describe block's tests started: stopped after each test, the peers first, then the relay. */
export interface RelayTestbed {
  /** Starts the test's relay (startTestRelay), to be stopped after the test. */
  startRelay: (options?: Partial<RelayOptions>) => Promise<Relay>
  /** Keeps a peer to be stopped after the test. */
  track: <P extends Peer>(peer: P) => P
  /** A raw peer (rawPeer), stopped after the test. */
  peer: () => Promise<Peer>
}

/** Registers, in the calling describe block, the afterEach that stops what its tests started. */
export function relayTestbed (): RelayTestbed {
  const peers: Peer[] = []
  let relay: Relay | undefined
  afterEach(async () => {
    await Promise.all(peers.splice(0).map(async p => { await p.stop() }))
    await relay?.stop()
    relay = undefined
  })
  return {
    startRelay: async options => {
      relay = await startTestRelay(options)
      return relay
    },
    track: peer => {
      peers.push(peer)
      return peer
    },
    peer: async () => {
      const peer = await rawPeer()
      peers.push(peer)
      return peer
    }
  }
}
export type GossipPeer = Libp2p<{ identify: ReturnType<ReturnType<typeof identify>>, pubsub: GossipSub, pulsePubsub: GossipSub }>

const base = {
  transports: [webSockets()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  // Node's default gater refuses loopback addresses; the relay under attack lives on 127.0.0.1.
  connectionGater: { denyDialMultiaddr: () => false }
}

/**
 * A peer that speaks the protocols by hand: raw GossipSub RPCs, DHT messages, HOP requests. It
 * claims GossipSub (and drains what the relay sends) so the relay keeps it as a GossipSub peer.
 */
export async function rawPeer (privateKey?: PrivateKey): Promise<Peer> {
  const peer = await createLibp2p({ ...base, ...(privateKey !== undefined ? { privateKey } : {}), services: { identify: identify() } })
  await peer.handle(['/meshsub/1.1.0', PULSE_GOSSIP_PROTOCOL], async stream => {
    for await (const chunk of stream) void chunk
  })
  return peer
}

/**
 * A browser's relay use: with `listen`, it holds a reservation on the relays it connects to (as a
 * browser does); without, it only dials others through them.
 */
export async function circuitPeer (listen: boolean): Promise<Peer> {
  return await createLibp2p({
    ...base,
    addresses: { listen: listen ? ['/p2p-circuit'] : [] },
    transports: [webSockets(), circuitRelayTransport()],
    services: { identify: identify() }
  })
}

/** A peer running stock GossipSub (StrictSign), as an attacker who publishes through the library. */
export async function gossipPeer (): Promise<GossipPeer> {
  return await createLibp2p({ ...base, services: { identify: identify(), pubsub: gossipsub({ allowPublishToZeroTopicPeers: true }), pulsePubsub: pulseGossip({ colocationPenalty: false }) } })
}

/** An honest node's gossip as browsers run it, announcing itself on `network`'s capabilities topic. */
export interface HonestNode {
  libp2p: Libp2p<HyperspaceServices>
  gossip: CapabilityGossip
  /** Announcements received from others, by peer id. */
  heard: Map<string, PeerAnnouncement>
}

export async function honestNode (relay: Relay, network = 'dev'): Promise<HonestNode> {
  const libp2p = await createLibp2p({ ...base, services: { identify: identify(), pubsub: hyperspaceGossip({ colocationPenalty: false }), pulsePubsub: pulseGossip({ colocationPenalty: false }) } }) as unknown as Libp2p<HyperspaceServices>
  const gossip = new CapabilityGossip(libp2p, systemScheduler, network, () => ({
    timestamp: Date.now(),
    profile: 'storage',
    capabilities: { storage: { working: true } },
    addrs: []
  }))
  const heard = new Map<string, PeerAnnouncement>()
  gossip.addEventListener('announcement', e => { heard.set(e.detail.peerId, e.detail) })
  await gossip.start()
  await libp2p.dial(relayAddr(relay))
  return { libp2p, gossip, heard }
}

/**
 * Until `listener` hears `speaker` through the relay: `speaker` announces again every 2 s, as a first
 * announcement can go out before the relay has the listener in its mesh (the next periodic one is 30 s away).
 */
export async function untilHeard (speaker: HonestNode, listener: HonestNode, what: string): Promise<void> {
  const id = speaker.libp2p.peerId.toString()
  for (let tries = 0; !listener.heard.has(id); tries++) {
    if (tries === 8) throw new Error(`timed out waiting for ${what}`)
    await speaker.gossip.announce()
    await until(() => listener.heard.has(id), what, 2_000).catch(() => {})
  }
}

export function relayAddr (relay: Relay): ReturnType<typeof multiaddr> {
  return multiaddr(relay.addrs[0] ?? '')
}

/**
 * Opens a GossipSub stream to the relay, on the general GossipSub or (`PULSE_GOSSIP_PROTOCOL`) the
 * pulse's, and writes each RPC as one length-prefixed frame.
 */
export async function sendGossipRpcs (peer: Peer, relay: Relay, rpcs: RPC[], protocol = '/meshsub/1.1.0'): Promise<Stream> {
  const stream = await peer.dialProtocol(relayAddr(relay), protocol)
  const lp = lpStream(stream)
  for (const rpc of rpcs) await lp.write(RPC.encode(rpc))
  return stream
}

/** A message signed as GossipSub signs it (StrictSign), on any topic, with any data. */
export async function signedMessage (key: PrivateKey, topic: string, data: Uint8Array, seqno: bigint): Promise<RPC.Message> {
  const seq = new Uint8Array(8)
  new DataView(seq.buffer).setBigUint64(0, seqno)
  const unsigned: RPC.Message = { from: peerIdFromPrivateKey(key).toMultihash().bytes, data, seqno: seq, topic }
  const signature = await key.sign(Uint8Array.from([...new TextEncoder().encode('libp2p-pubsub:'), ...RPC.Message.encode(unsigned)]))
  return { ...unsigned, signature }
}

export function subscribeRpc (topics: string[]): RPC {
  return { subscriptions: topics.map(topic => ({ subscribe: true, topic })), messages: [] }
}

/** The relay's GossipSub score of a peer (the method exists on the implementation, not the interface). */
export function relayScoreOf (relay: Relay, peer: PeerId): number {
  const pubsub = relay.libp2p.services.pubsub as unknown as { getScore: (id: string) => number }
  return pubsub.getScore(peer.toString())
}

/** Asks the relay for a circuit relay v2 reservation by hand; resolves with the status it answers (100 is OK). */
export async function reserve (peer: Peer, relay: Relay): Promise<number | undefined> {
  const stream = await peer.dialProtocol(relayAddr(relay), '/libp2p/circuit/relay/0.2.0/hop')
  const lp = lpStream(stream)
  await lp.write(Uint8Array.from(proto.uint(1, 0)))
  const answer = proto.read((await lp.read()).subarray())
  await stream.close().catch(() => {})
  return answer.get(5)?.[0] as number | undefined
}

export const RESERVATION_OK = 100

/** Minimal protobuf writing and reading, enough for DHT and circuit relay messages. */
export const proto = {
  varint,
  uint (field: number, value: number): number[] {
    return [...proto.varint(field << 3), ...proto.varint(value)]
  },
  bytes (field: number, value: Uint8Array | number[]): number[] {
    return [...proto.varint((field << 3) | 2), ...proto.varint(value.length), ...value]
  },
  /** Every field of a message: varints as numbers, length-delimited ones as bytes (repeated fields keep all). */
  read (bytes: Uint8Array): Map<number, Array<number | Uint8Array>> {
    const fields = new Map<number, Array<number | Uint8Array>>()
    let pos = 0
    const varint = (): number => {
      let value = 0
      let scale = 1
      for (;;) {
        const byte = bytes[pos++]
        if (byte === undefined) throw new RangeError('truncated protobuf')
        value += (byte & 0x7f) * scale
        if (byte < 0x80) return value
        scale *= 128
      }
    }
    while (pos < bytes.length) {
      const tag = varint()
      const field = Math.floor(tag / 8)
      const wire = tag & 7
      let value: number | Uint8Array
      if (wire === 0) value = varint()
      else if (wire === 2) {
        const length = varint()
        value = bytes.subarray(pos, pos + length)
        pos += length
      } else throw new RangeError(`wire type ${wire} not supported`)
      fields.set(field, [...(fields.get(field) ?? []), value])
    }
    return fields
  }
}

/** V8's collector, reachable without --expose-gc: a figure of what is retained needs garbage gone first. */
const collectGarbage = ((): () => void => {
  v8.setFlagsFromString('--expose_gc')
  return vm.runInNewContext('gc') as () => void
})()

export interface MemoryFigures {
  /** The highest sample (garbage included), in MiB. */
  peakMiB: number
  /** Peak above the baseline. */
  growthMiB: number
  /** What is still held after the attack once garbage is collected, above the baseline. */
  retainedMiB: number
}

/**
 * Samples this process's JS heap plus array buffers (where libp2p keeps its byte buffers) while an
 * attack runs. The relay shares the process with its attackers, so the figures bound both.
 */
export class MemoryMeter {
  readonly baseline: number
  private peakBytes: number
  private readonly timer = setInterval(() => { this.sample() }, 20)

  constructor () {
    collectGarbage()
    this.baseline = MemoryMeter.now()
    this.peakBytes = this.baseline
  }

  static now (): number {
    const usage = process.memoryUsage()
    return usage.heapUsed + usage.arrayBuffers
  }

  sample (): void {
    this.peakBytes = Math.max(this.peakBytes, MemoryMeter.now())
  }

  /**
   * Stops sampling; `retainedMiB` is measured after full collections with the event loop let run
   * between them, so that work still queued (callbacks holding the last messages) is done first.
   */
  async stop (): Promise<MemoryFigures> {
    this.sample()
    clearInterval(this.timer)
    for (let i = 0; i < 2; i++) {
      await new Promise(resolve => setImmediate(resolve))
      collectGarbage()
    }
    return {
      peakMiB: this.peakBytes / 2 ** 20,
      growthMiB: (this.peakBytes - this.baseline) / 2 ** 20,
      retainedMiB: (MemoryMeter.now() - this.baseline) / 2 ** 20
    }
  }
}

/** One line of the figures table the closing note reports (attack, peak memory, honest service kept, attacker cut off after). */
export function reportFigures (attack: string, memory: MemoryFigures, honestServed: boolean, cutOffAfter: string): void {
  const mib = (n: number): string => n.toFixed(1)
  console.log(`FIGURES | ${attack} | peak ${mib(memory.peakMiB)} MiB (+${mib(memory.growthMiB)}, +${mib(memory.retainedMiB)} retained) | honest served: ${honestServed ? 'yes' : 'no'} | cut off after: ${cutOffAfter}`)
}

/** The Kademlia messages a DHT attacker sends, written by hand (protobuf `Message` of libp2p's kad-dht). */
export const dht = {
  ADD_PROVIDER: 2,
  GET_PROVIDERS: 3,
  FIND_NODE: 4,
  /** A random CID (raw, sha2-256 of nothing in particular): a fresh key to provide. */
  randomCid (): CID {
    return CID.createV1(raw.code, createDigest(0x12, crypto.getRandomValues(new Uint8Array(32))))
  },
  /** ADD_PROVIDER naming the sender with `addrs` (the relay keeps them in its peer store). */
  addProvider (cid: CID, provider: PeerId, addrs = [multiaddr('/ip4/127.0.0.1/tcp/1')]): Uint8Array {
    const info = [...proto.bytes(1, provider.toMultihash().bytes), ...addrs.flatMap(addr => proto.bytes(2, addr.bytes))]
    return Uint8Array.from([...proto.uint(1, dht.ADD_PROVIDER), ...proto.bytes(2, cid.bytes), ...proto.bytes(9, info)])
  },
  /** PUT_VALUE (type 0, the default) of the sender's own public-key record, the one kind kad-dht validates. */
  putPublicKey (peer: PeerId): Uint8Array {
    const key = Uint8Array.from([...new TextEncoder().encode('/pk/'), ...peer.toMultihash().bytes])
    const record = [...proto.bytes(1, key), ...proto.bytes(2, publicKeyToProtobuf(peer.publicKey ?? raise('no public key')))]
    return Uint8Array.from([...proto.bytes(2, key), ...proto.bytes(3, record)])
  },
  getProviders (cid: CID): Uint8Array {
    return Uint8Array.from([...proto.uint(1, dht.GET_PROVIDERS), ...proto.bytes(2, cid.bytes)])
  }
}

function raise (message: string): never {
  throw new Error(message)
}

/** Whether an honest provider's record, announced now through the relay, is found there by a third peer. */
export async function honestProviderFound (testbed: RelayTestbed, relay: Relay): Promise<boolean> {
  const honest = await dhtSession(await testbed.peer(), relay)
  const key = dht.randomCid()
  await honest.provide([key])
  const asker = await dhtSession(await testbed.peer(), relay)
  return (await asker.providers(key)).length === 1
}

/** The relay's end of the first `protocol` stream `peer` opened to it: the error it closed with, once it has. */
export async function relayEndOf (relay: Relay, peer: Peer, protocol: string): Promise<{ closedWith: () => unknown }> {
  const connection = relay.libp2p.getConnections(peer.peerId)[0]
  await until(() => connection?.streams.some(s => s.protocol === protocol) === true, 'the relay to open its end of the stream')
  let error: unknown
  connection?.streams.find(s => s.protocol === protocol)?.addEventListener('close', event => { error = event.error })
  return { closedWith: () => error }
}

/** kad-dht nodes through a relay: `provider` announces `key` once its DHT knows the relay, and `seeker` finds it. */
export async function provideAndFind (provider: Libp2p<{ dht: KadDHT }>, seeker: Libp2p<{ dht: KadDHT }>, key: CID): Promise<void> {
  // Until identify has told the provider's DHT of the relay, a provide reaches nobody.
  await eventually(async () => {
    for await (const event of provider.services.dht.provide(key, { signal: AbortSignal.timeout(5_000) })) {
      if (event.name === 'PEER_RESPONSE' && event.messageName === 'ADD_PROVIDER') return true
    }
    return false
  }, 'the relay to take the provider record')
  await eventually(async () => {
    for await (const found of seeker.contentRouting.findProviders(key, { signal: AbortSignal.timeout(5_000) })) return found.id.equals(provider.peerId)
    return false
  }, 'the seeker to find the provider')
}

/** A DHT stream to the relay: provide records, then ask who provides a key (answers come in order). */
export async function dhtSession (peer: Peer, relay: Relay): Promise<{ provide: (cids: CID[], addrs?: Multiaddr[]) => Promise<void>, providers: (cid: CID) => Promise<string[]>, putOwnKey: () => Promise<Uint8Array>, close: () => Promise<void> }> {
  const stream = await peer.dialProtocol(relayAddr(relay), dhtProtocol('dev'))
  const lp = lpStream(stream)
  return {
    provide: async (cids, addrs) => { await lp.writeV(cids.map(cid => dht.addProvider(cid, peer.peerId, addrs))) },
    providers: async cid => {
      await lp.write(dht.getProviders(cid))
      const answer = proto.read((await lp.read()).subarray())
      return (answer.get(9) ?? []).map(info => {
        const id = proto.read(info as Uint8Array).get(1)?.[0] as Uint8Array
        return peerIdFromMultihash(decodeDigest(id)).toString()
      })
    },
    /** Resolves with the echo a server sends when it stores the record. */
    putOwnKey: async () => {
      await lp.write(dht.putPublicKey(peer.peerId))
      return (await lp.read()).subarray()
    },
    close: async () => { await stream.close() }
  }
}
