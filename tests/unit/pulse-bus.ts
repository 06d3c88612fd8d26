import { admitPulse } from '../../src/core/pulse/admission.ts'
import { sha256Of, utf8 } from '../../src/core/crypto/bytes.ts'
import { epochOf, firstRoundOf } from '../../src/core/pulse/committee.ts'
import { PulseEngine } from '../../src/core/pulse/engine.ts'
import { challengeDigest, encodeSigned, PULSE_MAX_BYTES, PULSE_VERSION, signPulse, type PulseMessage, type ReceivedMessage, type SignedPulseMessage, type VerdictMessage } from '../../src/core/wire/pulse.ts'
import { decodeMessage } from '../../src/core/wire/cbor.ts'
import { WIRE_TYPES } from '../../src/core/wire/pulse-compact.ts'
import type { PulseSigner } from '../../src/core/crypto/signing.ts'
import { ReferenceProver, type Prover } from '../../src/core/pulse/reference-prover.ts'
import { challengeProofs } from '../../src/core/pulse/seed.ts'
import { ValidatorHistory, type HistorySnapshot } from '../../src/core/pulse/validators.ts'
import { PulseLedger } from '../../src/core/pulse/ledger.ts'
import { proverFor } from '../../sim/provers.ts'
import { Rng } from '../../sim/rng.ts'
import { SimKeys } from '../../sim/sim-keys.ts'
import { VirtualTime } from '../../sim/virtual-time.ts'
import type { CapabilityName } from '../../src/core/capabilities.ts'
import type { Attestation, CapabilityProber } from '../../src/core/pulse/ports.ts'
import type { SpotCheckOptions } from '../../src/core/pulse/spot-checks.ts'

/** Whether a signed envelope carries a reveal (read without checking anything: only for counting). */
function isReveal (data: Uint8Array): boolean {
  try {
    const envelope = decodeMessage(data, PULSE_MAX_BYTES, PULSE_VERSION)
    return (envelope.m as unknown[])[0] === WIRE_TYPES.indexOf('reveal')
  } catch {
    return false
  }
}

export const NET = 'dev-t6'
export const ROUND_MS = 6_000
export const N = 16
const K = 4
/** Every message reaches every other member this long after it is sent. */
const DELIVERY_MS = 20

export interface BusNode {
  name: string
  signer: PulseSigner
  engine: PulseEngine
  book: PulseLedger
  attestations: Attestation[]
  identityConflicts: number[]
  /** Leaders its committers answered whose challenge it did not hold (validator-only nodes). */
  unknownLeaders: Set<string>
}

export interface NodeSpec {
  name: string
  /** 'anchor': a validator-only node that the others trust as a bootstrap relay. */
  kind: 'honest' | 'wrong-work' | 'anchor'
  validating?: boolean
  /** Its history is aged in every node's view, as after days of verified rounds. */
  aged?: boolean
  /** The capabilities it commits (none unless given). */
  caps?: CapabilityName[]
  /** How it spot-checks others' capabilities when drawn (it checks nobody without one). */
  prober?: CapabilityProber
  spotChecks?: Partial<SpotCheckOptions>
  /** Verified rounds it has already seen of named nodes (created in the same call): its own view of who is nearly aged. */
  seen?: Record<string, number>
  /** An anchor not told of the other anchors (a relay started without `--anchor`): it trusts only itself. */
  unconfigured?: boolean
}

/**
 * Pulse engines on virtual time, joined by a bus that delivers every message to every other node
 * after admitting it exactly as a GossipSub validator does (strict decoding, signature, network,
 * round window). Attackers publish whatever they like through the same admission.
 */
export class PulseBus {
  readonly time: VirtualTime
  readonly keys: SimKeys
  readonly nodes: BusNode[] = []
  private readonly aged = new Set<string>()
  private readonly anchors: string[] = []
  private readonly rng: Rng
  /** Nodes that hear nothing until the given virtual time. */
  private readonly deafUntil = new Map<string, number>()
  /** Reveals taken over a stream by one node so far, and reveals published on the topic. */
  directReveals = 0
  topicReveals = 0
  /** Nodes that refuse every reveal stream: a judge behind a broken link, or a hostile one. */
  readonly refusing = new Set<string>()
  /** Nodes whose messages reach nobody until the given virtual time. */
  private readonly muteUntil = new Map<string, number>()

  constructor (seed = 1) {
    this.rng = new Rng(seed)
    this.keys = new SimKeys(this.rng.fork('keys'))
    // Start mid-round, away from an epoch boundary, so the first whole round starts the chain.
    this.time = new VirtualTime((firstRoundOf(epochOf(4_000_000) + 1) + 10.5) * ROUND_MS)
  }

  get round (): number {
    return Math.floor(this.time.now() / ROUND_MS)
  }

  /** Creates nodes; anchors and aged histories are known to every node created in the same call. */
  add (specs: NodeSpec[]): BusNode[] {
    const signers = specs.map(() => this.keys.create())
    specs.forEach((spec, i) => {
      const peer = (signers[i] as PulseSigner).peerId
      if (spec.kind === 'anchor') this.anchors.push(peer)
      if (spec.aged === true) this.aged.add(peer)
    })
    const idOf = (name: string): string => (signers[specs.findIndex(spec => spec.name === name)] as PulseSigner).peerId
    return specs.map((spec, i) => this.start(spec, signers[i] as PulseSigner, Object.entries(spec.seen ?? {}).map(([name, verifiedRounds]) => ({ peer: idOf(name), verifiedRounds, lastRound: 0 }))))
  }

  node (name: string): BusNode {
    const found = this.nodes.find(n => n.name === name)
    if (found === undefined) throw new Error(`no node ${name}`)
    return found
  }

  /** A key with no history: what an attacker gets for free. */
  freshKey (): PulseSigner {
    return this.keys.create()
  }

  /**
   * Aged keys the test drives itself: each commits (work it never did) at the start of every round the
   * test runs with `roundsWithAgedKeys`.
   */
  agedKeys (count: number): PulseSigner[] {
    return Array.from({ length: count }, () => {
      const key = this.keys.create()
      this.aged.add(key.peerId)
      return key
    })
  }

  /** Runs `rounds` rounds in which `keys` commit at 0.05T; `act` runs later in each with the round and its seed. */
  async roundsWithCommits (keys: PulseSigner[], rounds: number, seedFrom: BusNode, act: (round: number, seed: Uint8Array) => Promise<void>): Promise<void> {
    for (let i = 0; i < rounds; i++) {
      await this.runTo(0.05)
      const r = this.round
      const seed = seedFrom.engine.round(r)?.seed as Uint8Array
      for (const key of keys) await this.inject(key, { t: 'commit', net: NET, r, peer: key.peerId, seed, root: sha256Of(utf8(key.peerId)), n: N, caps: [], sid: new Uint8Array(8) })
      await act(r, seed)
      await this.runRounds(1)
    }
  }

  /** A leader's two VRF proofs for its challenge of `round` under `seed` over `commits`, made with `signer`'s key. */
  async proofs (signer: PulseSigner, round: number, seed: Uint8Array, commits: Array<[string, Uint8Array]>): Promise<{ vrf: Uint8Array, rowsVrf: Uint8Array }> {
    return await challengeProofs(this.keys.beaconKey(signer.peerId), NET, round, seed, commits)
  }

  /** Publishes a message as `signer` on the committee topic, through the same admission as everyone's. */
  async inject (signer: PulseSigner, message: Exclude<PulseMessage, VerdictMessage> | Omit<VerdictMessage, 'judged'>): Promise<void> {
    if (message.t !== 'verdict') {
      this.deliver(signer.peerId, encodeSigned(await signPulse(message, signer)))
      return
    }
    // A v8 verdict speaks only of the entries of the challenge it judged (the honest nodes' canonical
    // one here): results about anyone else, or another root, cannot be sent at all, and counted nowhere before.
    const judged = this.nodes.map(node => node.engine.round(message.r)?.canonicalChallenge()).find(found => found !== undefined)
    if (judged === undefined) return
    const listed = new Map(judged.message.commits.map(([peer, root]) => [peer, root]))
    const results = message.results.filter(result => listed.get(result.peer)?.every((byte, i) => byte === result.root[i]) === true)
    const signed = await signPulse({ ...message, judged: challengeDigest(judged), results }, signer)
    this.deliver(signer.peerId, encodeSigned(signed, judged.message))
  }

  /** `node` hears nothing for `ms`: a laptop lid closed, a link down. */
  deafen (node: BusNode, ms: number): void {
    this.deafUntil.set(node.signer.peerId, this.time.now() + ms)
  }

  /** `node` is cut off both ways for `ms`: its uplink is down. */
  cut (node: BusNode, ms: number): void {
    this.deafen(node, ms)
    this.muteUntil.set(node.signer.peerId, this.time.now() + ms)
  }

  async runRounds (count: number): Promise<void> {
    await this.time.runUntil((this.round + count) * ROUND_MS)
  }

  /** Runs until `fraction` of the current round (or of the next, if that moment has passed). */
  async runTo (fraction: number): Promise<void> {
    let at = (this.round + fraction) * ROUND_MS
    if (at <= this.time.now()) at += ROUND_MS
    await this.time.runUntil(at)
  }

  private start (spec: NodeSpec, signer: PulseSigner, seen: HistorySnapshot[]): BusNode {
    const book = new PulseLedger(NET, signer.peerId, ROUND_MS)
    const prover: Prover | undefined = spec.kind === 'anchor' ? undefined : spec.kind === 'honest' ? new ReferenceProver() : proverFor(spec.kind, this.rng.fork(spec.name))
    const node: BusNode = { name: spec.name, signer, book, attestations: [], identityConflicts: [], unknownLeaders: new Set(), engine: undefined as unknown as PulseEngine }
    node.engine = new PulseEngine({
      networkId: NET,
      roundMs: ROUND_MS,
      signer,
      scheduler: this.time,
      book,
      ...(prover !== undefined ? { prover } : {}),
      beaconKey: this.keys.beaconKey(signer.peerId),
      verifyBeacon: this.keys.verifyBeacon,
      validating: () => spec.kind === 'anchor' || spec.validating === true,
      workingCaps: () => spec.caps ?? [],
      ...(spec.prober !== undefined ? { prober: spec.prober } : {}),
      ...(spec.spotChecks !== undefined ? { spotChecks: spec.spotChecks } : {}),
      n: N,
      k: K,
      history: new ValidatorHistory(spec.unconfigured === true ? [signer.peerId] : this.anchors, seen, peer => this.aged.has(peer)),
      transport: {
        publish: async (_topic, data) => { this.deliver(signer.peerId, data) },
        join: () => {},
        leave: () => {},
        sendReveal: async (peer, data) => { await this.sendReveal(signer.peerId, peer, data) }
      },
      keepAttestation: async a => { node.attestations.push(a) },
      onIdentityConflict: round => { node.identityConflicts.push(round) },
      onUnknownLeaders: (_round, leaders) => { for (const leader of leaders) node.unknownLeaders.add(leader) }
    })
    this.nodes.push(node)
    node.engine.start()
    return node
  }

  /** A reveal on a stream to one node, admitted as src/net admits it; rejects when that node did not keep it. */
  private async sendReveal (author: string, peer: string, data: Uint8Array): Promise<void> {
    const node = this.nodes.find(n => n.signer.peerId === peer)
    const now = this.time.now()
    if (node === undefined || this.refusing.has(peer) || (this.muteUntil.get(author) ?? -Infinity) > now || (this.deafUntil.get(peer) ?? -Infinity) > now) throw new Error(`${peer} cannot be reached`)
    await this.time.sleep(DELIVERY_MS)
    if (!await this.offerReveal(node, author, data)) throw new Error(`${peer} did not keep the reveal`)
    this.directReveals++
  }

  /** What a node's reveal inbox does with a reveal sent to it by `sender`: admit it as src/net does, then offer it to the engine. */
  async offerReveal (node: BusNode, sender: string, data: Uint8Array): Promise<boolean> {
    const admission = await admitPulse(data, sender, NET, ROUND_MS, this.time.now(), this.keys.verify)
    return admission.result === 'accept' && admission.signed.message.t === 'reveal' && node.engine.receiveReveal(admission.signed)
  }

  /**
   * Sends a message's bytes to every node, its author's included: the pulse's GossipSub signs nothing,
   * so anyone may forward a message again once GossipSub's seen cache has forgotten it.
   */
  replay (data: Uint8Array): void {
    this.deliver(undefined, data)
  }

  private deliver (author: string | undefined, data: Uint8Array): void {
    if (author !== undefined && (this.muteUntil.get(author) ?? -Infinity) > this.time.now()) return
    if (isReveal(data)) this.topicReveals++
    for (const node of this.nodes) {
      if (author !== undefined && node.signer.peerId === author) continue
      this.time.after(DELIVERY_MS, () => {
        if ((this.deafUntil.get(node.signer.peerId) ?? -Infinity) > this.time.now()) return
        void admitPulse(data, author, NET, ROUND_MS, this.time.now(), this.keys.verify).then(admission => {
          if (admission.result !== 'accept') return
          const topic = node.engine.committees.topic(admission.signed.message.r)
          node.engine.receive(topic, admission.signed as SignedPulseMessage<ReceivedMessage>)
        })
      })
    }
  }
}
