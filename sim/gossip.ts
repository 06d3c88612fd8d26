import { PULSE_MESH } from '../src/core/wire/pulse-gossip.ts'
import { dataRpcBytes, idontwantRpcBytes, ihaveRpcBytes, type SignaturePolicy } from './rpc-size.ts'
import { dataLine, Traffic, type DataKind } from './traffic.ts'
import type { Links } from './links.ts'
import type { Rng } from './rng.ts'
import type { Task, VirtualTime } from './virtual-time.ts'

/**
 * GossipSub v1.2 as the simulator models it, per topic:
 * - a mesh of degree about D = 6 (kept within [Dlo, Dhi] = [4, 12]), plus up to Dlazy = 6 further
 *   topic peers a node is connected to but does not mesh with;
 * - a publisher floods to all its topic peers (floodPublish); a node forwards a message it sees for the
 *   first time to its mesh peers, except the one it came from and those whose IDONTWANT (sent on
 *   first receipt of messages of 512 bytes or more) reached it before it forwarded;
 * - each node's uplink sends one copy after another; each copy may be lost;
 * - every heartbeat (1 s) a node advertises the ids it saw in the last 3 heartbeats (IHAVE) to its
 *   non-mesh topic peers;
 * - a node whose mesh fell below Dlo grafts new peers at its next heartbeat, and a node that grafts
 *   (joining a topic, or repairing its mesh) swaps IHAVE/IWANT with its topic peers, over the next 3
 *   heartbeats, for the recent messages one side lacks: how a node left alone when its peers moved on
 *   at an epoch boundary catches up. Other IWANT recovery (of messages lost on a link) is not
 *   modelled: with D paths a node rarely misses one, and the agreement figures show when it does.
 */
export interface GossipParams {
  D: number
  Dlo: number
  Dhi: number
  Dlazy: number
  heartbeatMs: number
  historyGossip: number
  /** Messages of this size or more are announced with IDONTWANT to the mesh; 0 sends none (a protocol id off the /meshsub/ ladder). */
  idontwantMinBytes: number
  /** Time to validate a message before forwarding it (decode, signature check). */
  validationMs: number
  /** Whether GossipSub signs each message (StrictSign) or leaves authorship to the payload (StrictNoSign). */
  signaturePolicy: SignaturePolicy
}

/** GossipSub's defaults, as the general topics run it (src/net/gossip.ts hyperspaceGossip). */
export const GOSSIPSUB: GossipParams = { D: 6, Dlo: 4, Dhi: 12, Dlazy: 6, heartbeatMs: 1000, historyGossip: 3, idontwantMinBytes: 512, validationMs: 2, signaturePolicy: 'StrictSign' }

/** The pulse's own GossipSub (src/net/gossip.ts pulseGossip): unsigned, a mesh of PULSE_MESH, no IDONTWANT. */
export const PULSE_GOSSIPSUB: GossipParams = { ...GOSSIPSUB, ...PULSE_MESH, idontwantMinBytes: 0, signaturePolicy: 'StrictNoSign' }

/**
 * GossipSub's knobs changed from `base` by `key=value,…` (the `--gossip` option of `npm run sim`),
 * e.g. `D=4,Dlo=3,Dhi=8,Dlazy=3,signaturePolicy=StrictNoSign`. Throws on an unknown key or a bad value.
 */
export function parseGossipParams (text: string, base: GossipParams): GossipParams {
  const params: GossipParams = { ...base }
  for (const pair of text.split(',').filter(part => part !== '')) {
    const [key, value] = pair.split('=')
    if (key === undefined || value === undefined || !(key in base)) throw new Error(`--gossip: ${pair} is not one of ${Object.keys(base).join(', ')} = value`)
    if (key === 'signaturePolicy') {
      if (value !== 'StrictSign' && value !== 'StrictNoSign') throw new Error('--gossip: signaturePolicy is StrictSign or StrictNoSign')
      params.signaturePolicy = value
    } else {
      const number = Number(value)
      if (!Number.isFinite(number) || number < 0) throw new Error(`--gossip: ${key} must be a number ≥ 0`)
      Object.assign(params, { [key]: number })
    }
  }
  if (!(params.Dlo <= params.D && params.D <= params.Dhi)) throw new Error('--gossip: needs Dlo ≤ D ≤ Dhi')
  return params
}

interface Topic {
  name: string
  members: number[]
  /** Index of each member in `members`, -1 for nodes that are not members. */
  position: Int32Array
  /**
   * A slot per node that ever joined, never reused: per-message state lives in arrays indexed by slot,
   * which keeps the hot path of millions of transmissions off hash maps.
   */
  slotOf: Int32Array
  slots: number
  /** Per node: its mesh peers, and its other topic peers (a handful each: arrays beat sets here). */
  mesh: number[][]
  lazy: number[][]
  /** Messages recently published, for IHAVE/IWANT when a node grafts. */
  recent: Array<GossipMessage<unknown>>
}

/** Room for nodes that join a topic while a message is still spreading on it. */
const SLOT_MARGIN = 32
/** Stale entries of a topic's recent messages are dropped in batches of this many. */
const RECENT_BATCH = 256
export interface GossipMessage<P> {
  topic: string
  payload: P
  publishedAt: number
  /** Bytes of one transmission (the whole RPC). */
  rpcBytes: number
  large: boolean
  /** What it carries, for the traffic breakdown. */
  kind: DataKind
  /**
   * Per topic slot, side by side so one cache line serves both: when the node first had it (NaN while
   * it has not; the publisher when it published), and when the earliest copy on its way to it arrives
   * (Infinity: none).
   */
  state: Float64Array
}

function remove (list: number[] | undefined, item: number): void {
  const i = list?.indexOf(item) ?? -1
  if (i >= 0) list?.splice(i, 1)
}

function firstAt (message: GossipMessage<unknown>, slot: number): number {
  return message.state[2 * slot] ?? Number.NaN
}

function comingAt (message: GossipMessage<unknown>, slot: number): number {
  return message.state[2 * slot + 1] ?? Number.NaN
}

/** A transmission reaching its node. Reused once run: a large run makes tens of millions of them. */
class Arrival<P> implements Task {
  readonly settles = false
  time = 0
  seq = 0
  topic!: Topic
  node = 0
  from = 0
  message!: GossipMessage<P>
  at = 0

  constructor (private readonly gossip: GossipModel<P>) {}

  run (): void {
    this.gossip.arrive(this.topic, this.node, this.from, this.message, this.at)
    this.gossip.recycle(this)
  }
}

export class GossipModel<P> {
  readonly traffic: Traffic
  private readonly topics = new Map<string, Topic>()
  private readonly alive: Uint8Array
  private readonly uplinkFree: Float64Array
  private readonly heartbeatPhase: Float64Array
  /** New message ids per node, per topic, per heartbeat since `windowStart`: what IHAVE advertises. */
  private readonly seen: Array<Map<Topic, number[]>> = []
  private windowStart: number
  private readonly spare: Array<Arrival<P>> = []

  /** `capacity`: how many nodes a run may have in all, joiners included. */
  constructor (
    private readonly time: VirtualTime,
    private readonly links: Links,
    private readonly rng: Rng,
    private readonly params: GossipParams,
    private readonly capacity: number,
    private readonly deliver: (node: number, topic: string, payload: P) => void
  ) {
    this.traffic = new Traffic(capacity)
    this.alive = new Uint8Array(capacity)
    this.uplinkFree = new Float64Array(capacity)
    this.heartbeatPhase = new Float64Array(capacity)
    this.windowStart = time.now()
  }

  addNode (node: number): void {
    this.alive[node] = 1
    this.heartbeatPhase[node] = this.rng.uniform(0, this.params.heartbeatMs)
    this.seen[node] = new Map()
  }

  isAlive (node: number): boolean {
    return this.alive[node] === 1
  }

  join (node: number, name: string): void {
    if (!this.isAlive(node)) return
    let topic = this.topics.get(name)
    if (topic === undefined) {
      topic = { name, members: [], position: new Int32Array(this.capacity).fill(-1), slotOf: new Int32Array(this.capacity).fill(-1), slots: 0, mesh: [], lazy: [], recent: [] }
      this.topics.set(name, topic)
    }
    if ((topic.position[node] as number) >= 0) return
    if (topic.slotOf[node] === -1) topic.slotOf[node] = topic.slots++
    topic.position[node] = topic.members.length
    topic.members.push(node)
    topic.mesh[node] = []
    topic.lazy[node] = []
    this.graft(topic, node)
  }

  /** Unsubscribes (PRUNE to its mesh): its peers repair their meshes at their next heartbeat. */
  leave (node: number, name: string): void {
    const topic = this.topics.get(name)
    if (topic === undefined || (topic.position[node] as number) < 0) return
    const peers = topic.mesh[node] ?? []
    for (const peer of peers) remove(topic.mesh[peer], node)
    for (const peer of topic.lazy[node] ?? []) remove(topic.lazy[peer], node)
    topic.mesh[node] = []
    topic.lazy[node] = []
    const i = topic.position[node] as number
    const last = topic.members.pop() as number
    if (last !== node) {
      topic.members[i] = last
      topic.position[last] = i
    }
    topic.position[node] = -1
    for (const peer of peers) {
      if ((topic.mesh[peer]?.length ?? this.params.D) < this.params.Dlo) this.time.at(this.time.now() + this.params.heartbeatMs, () => { this.graft(topic, peer) })
    }
  }

  /** A crash: the node vanishes from every topic at once and whatever is on its way to it is lost. */
  crash (node: number): void {
    for (const name of this.topics.keys()) this.leave(node, name)
    this.alive[node] = 0
  }

  publish (node: number, name: string, payloadBytes: number, payload: P, kind: DataKind): GossipMessage<P> {
    const now = this.time.now()
    const topic = this.topics.get(name)
    const slots = (topic?.slots ?? 0) + SLOT_MARGIN
    const state = new Float64Array(2 * slots)
    for (let slot = 0; slot < slots; slot++) {
      state[2 * slot] = Number.NaN
      state[2 * slot + 1] = Infinity
    }
    const message: GossipMessage<P> = {
      topic: name,
      payload,
      publishedAt: now,
      rpcBytes: dataRpcBytes(name, payloadBytes, this.params.signaturePolicy),
      large: this.params.idontwantMinBytes > 0 && payloadBytes >= this.params.idontwantMinBytes,
      kind,
      state
    }
    if (topic === undefined || (topic.position[node] as number) < 0) return message
    state[2 * (topic.slotOf[node] as number)] = now
    this.noteSeen(topic, node, now)
    this.remember(topic, message)
    for (const peer of [...topic.mesh[node] ?? [], ...topic.lazy[node] ?? []]) this.send(topic, node, peer, message, now)
    return message
  }

  /** A message on a stream to one node (a v7 reveal): the uplink's queue and latency, no duplicates or loss. */
  direct (from: number, to: number, bytes: number, kind: DataKind, arrived: () => void): void {
    this.uplinkFree[from] = Math.max(this.time.now(), this.uplinkFree[from] as number) + bytes / (this.links.uplink[from] as number)
    this.traffic.rpc(from, to, bytes, kind)
    this.time.at((this.uplinkFree[from] as number) + this.links.latencyMs(from, to), arrived)
  }

  /** When `node` first had `message`, if it has. */
  firstHad (node: number, message: GossipMessage<P>): number | undefined {
    const slot = this.topics.get(message.topic)?.slotOf[node] ?? -1
    const at = firstAt(message, slot)
    return Number.isNaN(at) ? undefined : at
  }

  /**
   * Adds the IHAVE traffic of the first receipts since the last call: at each of a node's heartbeats,
   * one IHAVE per non-mesh topic peer with the ids seen in the last `historyGossip` heartbeats.
   */
  settleGossip (): void {
    for (const [node, byTopic] of this.seen.entries()) {
      for (const [topic, beats] of byTopic) {
        const peers = (topic.lazy[node] ?? []).slice(0, this.params.Dlazy)
        const advertised: number[] = []
        for (const [beat, count] of beats.entries()) {
          for (let j = beat; j < beat + this.params.historyGossip; j++) advertised[j] = (advertised[j] ?? 0) + (count ?? 0)
        }
        for (const ids of advertised) {
          if (ids === undefined || ids === 0) continue
          const bytes = ihaveRpcBytes(topic.name, ids, this.params.signaturePolicy)
          for (const peer of peers) this.traffic.rpc(node, peer, bytes, 'IHAVE')
        }
      }
      byTopic.clear()
    }
    this.windowStart = this.time.now()
  }

  recycle (arrival: Arrival<P>): void {
    this.spare.push(arrival)
  }

  /** A copy reaching `node` at `at`; it counts only if it is still the earliest copy on its way there. */
  arrive (topic: Topic, node: number, from: number, message: GossipMessage<P>, at: number): void {
    const slot = topic.slotOf[node] as number
    const state = message.state
    if (state[2 * slot + 1] !== at) {
      // An earlier copy overtook this one: it was a duplicate after all.
      this.traffic.move(from, node, message.rpcBytes, message.kind, dataLine(message.kind, true))
      return
    }
    state[2 * slot + 1] = Infinity
    if (!this.isAlive(node) || (topic.position[node] as number) < 0) return
    const now = this.time.now()
    state[2 * slot] = now
    this.noteSeen(topic, node, now)
    const mesh = topic.mesh[node] as number[]
    if (message.large) {
      const bytes = idontwantRpcBytes(this.params.signaturePolicy)
      for (const peer of mesh) if (peer !== from) this.traffic.rpc(node, peer, bytes, 'IDONTWANT')
    }
    const ready = now + this.params.validationMs
    for (const peer of mesh) {
      if (peer === from) continue
      // A peer that already had it told us so (IDONTWANT) if its notice arrived before we forward.
      if (message.large && firstAt(message, topic.slotOf[peer] as number) + this.links.latencyMs(peer, node) <= ready) continue
      this.send(topic, node, peer, message, ready)
    }
    this.deliver(node, message.topic, message.payload)
  }

  private noteSeen (topic: Topic, node: number, at: number): void {
    const byTopic = this.seen[node] as Map<Topic, number[]>
    let beats = byTopic.get(topic)
    if (beats === undefined) {
      beats = []
      byTopic.set(topic, beats)
    }
    const beat = Math.floor((at - this.windowStart - (this.heartbeatPhase[node] as number)) / this.params.heartbeatMs) + 1
    beats[beat] = (beats[beat] ?? 0) + 1
  }

  private remember (topic: Topic, message: GossipMessage<P>): void {
    topic.recent.push(message)
    if (topic.recent.length < 2 * RECENT_BATCH) return
    const since = message.publishedAt - this.params.historyGossip * this.params.heartbeatMs
    const fresh = topic.recent.findIndex(m => m.publishedAt >= since)
    topic.recent.splice(0, Math.min(fresh, RECENT_BATCH))
  }

  private graft (topic: Topic, node: number): void {
    const mesh = topic.mesh[node]
    const lazy = topic.lazy[node]
    if (mesh === undefined || lazy === undefined || (topic.position[node] as number) < 0) return
    const others = topic.members.length - 1
    let grafted = false
    // Grafting peers that are below D keeps the mean degree near D; a node still below Dlo after that
    // also grafts fuller peers (GossipSub prunes only above Dhi).
    for (const [want, limit] of [[this.params.D, this.params.D], [this.params.Dlo, this.params.Dhi]] as const) {
      for (let tries = 0; mesh.length < want && mesh.length < others && tries < 4 * this.params.D; tries++) {
        const peer = this.rng.pick(topic.members)
        const theirs = topic.mesh[peer] as number[]
        if (peer === node || mesh.includes(peer) || theirs.length >= limit) continue
        mesh.push(peer)
        theirs.push(node)
        remove(lazy, peer)
        remove(topic.lazy[peer], node)
        grafted = true
      }
    }
    for (let tries = 0; lazy.length < this.params.Dlazy && mesh.length + lazy.length < others && tries < 4 * this.params.Dlazy; tries++) {
      const peer = this.rng.pick(topic.members)
      const theirs = topic.lazy[peer] as number[]
      if (peer === node || mesh.includes(peer) || lazy.includes(peer)) continue
      lazy.push(peer)
      if (!theirs.includes(node)) theirs.push(node)
    }
    if (!grafted) return
    for (let beat = 0; beat < this.params.historyGossip; beat++) {
      this.time.at(this.time.now() + beat * this.params.heartbeatMs, () => { this.catchUp(topic, node) })
    }
  }

  /**
   * IHAVE/IWANT between a node that has just grafted and its topic peers: the node fetches each recent
   * message it lacks from the peer that can deliver it first, and each peer that lacks one of the
   * node's fetches it from the node.
   */
  private catchUp (topic: Topic, node: number): void {
    if ((topic.position[node] as number) < 0) return
    const now = this.time.now()
    const peers = [...topic.mesh[node] ?? [], ...topic.lazy[node] ?? []]
    const lacks = (message: GossipMessage<P>, who: number): boolean => {
      const slot = topic.slotOf[who] as number
      return 2 * slot < message.state.length && Number.isNaN(firstAt(message, slot)) && comingAt(message, slot) === Infinity
    }
    const has = (message: GossipMessage<P>, who: number): boolean => !Number.isNaN(firstAt(message, topic.slotOf[who] as number))
    // The holder's IHAVE reaches the other side, whose IWANT comes back; then the holder sends.
    const fetch = (message: GossipMessage<P>, from: number, to: number): void => {
      this.traffic.rpc(from, to, ihaveRpcBytes(topic.name, 1, this.params.signaturePolicy), 'IHAVE')
      // An IWANT for one id has the shape of an IDONTWANT for one.
      this.traffic.rpc(to, from, idontwantRpcBytes(this.params.signaturePolicy), 'IWANT')
      this.send(topic, from, to, message, now + this.links.latencyMs(from, to) + this.links.latencyMs(to, from))
    }
    const since = now - this.params.historyGossip * this.params.heartbeatMs
    for (const message of topic.recent as Array<GossipMessage<P>>) {
      if (message.publishedAt < since) continue
      if (lacks(message, node)) {
        const ready = (peer: number): number => Math.max(now, this.uplinkFree[peer] as number) + this.links.latencyMs(peer, node)
        const best = peers.filter(peer => has(message, peer)).sort((a, b) => ready(a) - ready(b))[0]
        if (best !== undefined) fetch(message, best, node)
      } else if (has(message, node)) {
        for (const peer of peers) if (lacks(message, peer)) fetch(message, node, peer)
      }
    }
  }

  private send (topic: Topic, from: number, to: number, message: GossipMessage<P>, ready: number): void {
    const start = Math.max(ready, this.uplinkFree[from] as number)
    const done = start + message.rpcBytes / (this.links.uplink[from] as number)
    this.uplinkFree[from] = done
    const slot = topic.slotOf[to] as number
    // A copy to a node that has the message already only costs bytes (and, lost or not, nothing else).
    if (2 * slot >= message.state.length || !Number.isNaN(firstAt(message, slot))) {
      this.traffic.rpc(from, to, message.rpcBytes, dataLine(message.kind, true))
      return
    }
    if (this.rng.next() < this.links.loss) {
      this.traffic.rpc(from, to, message.rpcBytes, message.kind, false)
      return
    }
    const arrival = done + this.links.latencyMs(from, to)
    // A copy that cannot be the first to arrive needs no event either.
    if (comingAt(message, slot) <= arrival) {
      this.traffic.rpc(from, to, message.rpcBytes, dataLine(message.kind, true))
      return
    }
    this.traffic.rpc(from, to, message.rpcBytes, message.kind)
    message.state[2 * slot + 1] = arrival
    const task = this.spare.pop() ?? new Arrival(this)
    task.topic = topic
    task.node = to
    task.from = from
    task.message = message
    task.at = arrival
    this.time.schedule(arrival, task)
  }
}
