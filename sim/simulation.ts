import { HyperspaceError } from '../src/core/errors.ts'
import { admitPulse } from '../src/core/pulse/admission.ts'
import { timingOf } from '../src/core/pulse/clock.ts'
import { epochOf, firstRoundOf, nextCommitteeCount } from '../src/core/pulse/committee.ts'
import { PulseEngine } from '../src/core/pulse/engine.ts'
import { ValidatorHistory } from '../src/core/pulse/validators.ts'
import { PulseLedger } from '../src/core/pulse/ledger.ts'
import { Attacker, attackersAged, doesRealWork, type AttackKind } from './attacks.ts'
import { SimCapabilities } from './capabilities.ts'
import { earnings } from './earnings.ts'
import { GossipModel, type GossipMessage, type GossipParams } from './gossip.ts'
import { DirectReveals } from './direct-reveals.ts'
import { Links, type LinkParams } from './links.ts'
import type { Breakdown } from './traffic.ts'
import { proverFor, timedProver, type NodeKind } from './provers.ts'
import { Rng } from './rng.ts'
import { SimKeys } from './sim-keys.ts'
import { VirtualTime } from './virtual-time.ts'
import { median } from './stats.ts'
import { revealGrowth } from './wire-size.ts'
import { encodeSigned, type ReceivedMessage, type SignedPulseMessage } from '../src/core/wire/pulse.ts'
import type { PulseSigner } from '../src/core/crypto/signing.ts'

export interface SimConfig {
  seed: number
  nodes: number
  /** Rounds measured; before them, a starting network spends a round and a half agreeing on its first beacon. */
  rounds: number
  roundMs: number
  networkId: string
  /** Matrix size the simulated nodes compute. */
  n: number
  /** Matrix size of the real network: reveals are sized and timed as reveals of this n. */
  wireN: number
  k: number
  validatorShare: number
  cheaterShare: number
  /** Per round, as shares of the starting size: nodes that crash, leave cleanly, and join. */
  churn: { crash: number, leave: number, join: number }
  links: LinkParams
  gossip: GossipParams
  /** Median time a device takes to prove one round (log-normal). */
  proveMedianMs: number
  /** Standard deviation of node clocks around true time. */
  clockSkewMs: number
  /** The first measured round lies this many rounds before an epoch boundary, so a run crosses one. */
  roundsBeforeEpoch: number
  /** A share of the starting nodes that attack the pulse (attacks.ts). */
  attack?: { kind: AttackKind, share: number }
}

/** One node's round as it stood when the round ended. */
export interface NodeRound {
  node: number
  kind: NodeKind
  validator: boolean
  topic: string
  seedKnown: boolean
  committed: boolean
  verified: boolean
  struck: boolean
  leader?: string
  bytes: number
  rpcs: number
  /** The same bytes and RPCs by what they carried (the model's; absent for real nodes). */
  lines?: Breakdown
}

export interface RoundObservation {
  round: number
  /** Nodes that were up for the whole round. */
  nodes: NodeRound[]
  /** Per committee topic: ms after the round start until every member up for the round had every commit (Infinity: never). */
  agreementMs: Map<string, number>
}

export interface SimRun {
  config: SimConfig
  committees: number
  /** K the nodes decided for the epoch after the first measured round's (median), once decided. */
  nextCommittees: number | null
  observations: RoundObservation[]
  /** Presence points each honest node up for all measured rounds earned per verified measured round. */
  pointsPerVerifiedRound: number[]
  /** Presence points the attackers earned in the measured rounds, all of them together. */
  attackerPoints: number
  /** Mean capability bonus of verified measured rounds (sim/earnings.ts). */
  bonus: { honest: number, attackers: number }
  churn: { crashed: number, left: number, joined: number }
  wallMs: number
}

export class SimulationError extends HyperspaceError {
  override name = 'SimulationError'

  constructor (message: string) { super('ERR_SIMULATION', message) }
}

interface SimNode {
  index: number
  peerId: string
  kind: NodeKind
  validator: boolean
  engine: PulseEngine
  book: PulseLedger
  joinedAt: number
  leftAt: number
}

/**
 * A round is looked at this long before it ends: every verdict is in by then (they go out at 0.72 T),
 * and no node, whatever its clock skew, has closed the round and moved on yet.
 */
const SNAPSHOT_BEFORE_END_MS = 500

/** How long after the last round a run goes on, for every node (whatever its clock skew) to have closed it. */
const DECISION_GRACE_MS = 1000

/** An epoch far from zero, so round numbers look like today's. */
const EPOCH = 200_000

/**
 * A network of simulated nodes, each running the real pulse engine (src/core/pulse: seeds, work,
 * Merkle proofs, leader, challenge, reveal, verdicts, committees) and the real ledger and points, on
 * virtual time over the modelled links and GossipSub of gossip.ts. Deterministic for a seed.
 */
export class Simulation {
  private readonly rng: Rng
  private readonly time: VirtualTime
  private readonly keys: SimKeys
  private readonly links: Links
  private readonly gossip: GossipModel<SignedPulseMessage<ReceivedMessage>>
  private readonly reveals: DirectReveals
  private readonly nodes: SimNode[] = []
  /** Commits published, by round and topic: what commit-set agreement is measured on. */
  private readonly commits = new Map<number, Map<string, Array<GossipMessage<SignedPulseMessage<ReceivedMessage>>>>>()
  private readonly firstRound: number
  private readonly committees: number
  private growth = 0
  /** Nodes of the starting network: it starts as after days of rounds, so their histories are aged. */
  private readonly founders = new Set<string>()
  private readonly attackers = new Set<string>()
  private readonly churned = { crashed: 0, left: 0, joined: 0 }
  private readonly capabilities: SimCapabilities

  constructor (readonly config: SimConfig) {
    this.rng = new Rng(config.seed)
    this.firstRound = firstRoundOf(EPOCH) - config.roundsBeforeEpoch
    // Nodes start in the middle of a round, whatever their clock skew: they all watch the next round whole
    // to learn the beacon (nobody commits in it) and commit from the first measured round on.
    this.time = new VirtualTime((this.firstRound - 1.5) * config.roundMs)
    this.keys = new SimKeys(this.rng.fork('keys'))
    const capacity = config.nodes + Math.round(config.churn.join * config.nodes) * config.rounds + 1
    this.links = new Links(config.links, this.rng.fork('links'), capacity)
    this.gossip = new GossipModel(this.time, this.links, this.rng.fork('gossip'), config.gossip, capacity, (node, topic, signed) => {
      this.nodes[node]?.engine.receive(topic, signed)
    })
    this.reveals = new DirectReveals(this.gossip, this.time, { networkId: config.networkId, roundMs: config.roundMs, verify: this.keys.verify })
    // The network starts as it would be after a whole epoch at this size: K as every node would have estimated it.
    this.committees = nextCommitteeCount(1, [config.nodes])
    this.capabilities = new SimCapabilities(config.attack?.kind === 'capability-liar', this.rng.fork('capabilities'), async ms => { await this.time.sleep(ms) })
  }

  async run (): Promise<SimRun> {
    const started = performance.now()
    const { roundMs, rounds } = this.config
    for (let i = 0; i < this.config.nodes; i++) {
      const node = this.addNode(this.committees, true)
      if (node.kind !== 'attacker' || attackersAged(this.config.attack?.kind ?? 'seed-grind')) this.founders.add(node.peerId)
    }
    const observations: RoundObservation[] = []
    for (let round = this.firstRound - 2; round < this.firstRound + rounds; round++) {
      const measured = round >= this.firstRound
      if (measured) this.scheduleChurn(round)
      await this.time.runUntil((round + 1) * roundMs - SNAPSHOT_BEFORE_END_MS)
      this.gossip.settleGossip()
      if (measured) observations.push(this.observe(round))
      this.gossip.traffic.reset()
      this.commits.delete(round)
    }
    // Past the end of the last round, so that a decision taken there (K for the next epoch) is in.
    await this.time.runUntil((this.firstRound + rounds) * roundMs + DECISION_GRACE_MS)
    const decided = this.nodes.flatMap(n => n.leftAt === Infinity ? n.engine.committees.committees(epochOf(this.firstRound) + 1) ?? [] : [])
    for (const node of this.nodes) node.engine.stop()
    const first = this.firstRound * roundMs
    const earned = earnings(this.nodes.map(n => ({ kind: n.kind, book: n.book, throughout: n.leftAt === Infinity && n.joinedAt <= first })), this.firstRound, this.firstRound + rounds)
    return {
      config: this.config,
      committees: this.committees,
      nextCommittees: decided.length === 0 ? null : median(decided),
      observations,
      ...earned,
      churn: { ...this.churned },
      wallMs: performance.now() - started
    }
  }

  private addNode (committees?: number, founder = false): SimNode {
    const { config, rng } = this
    const index = this.nodes.length
    const attack = config.attack
    const kind: NodeKind = founder && attack !== undefined && rng.fork(`attacker-${index}`).next() < attack.share
      ? 'attacker'
      : rng.next() >= config.cheaterShare ? 'honest' : rng.next() < 0.5 ? 'wrong-work' : 'forged-root'
    const validator = kind === 'honest' && rng.next() < config.validatorShare
    const signer = this.keys.create()
    const caps = this.capabilities.claims(signer.peerId, validator, kind === 'honest')
    this.links.add(index)
    this.gossip.addNode(index)
    const book = new PulseLedger(config.networkId, signer.peerId, config.roundMs)
    const prover = timedProver(proverFor(kind === 'attacker' && attack !== undefined && doesRealWork(attack.kind) ? 'honest' : kind, rng.fork(signer.peerId)), rng.lognormal(config.proveMedianMs, 0.5), async ms => { await this.time.sleep(ms) })
    if (this.growth === 0) this.growth = revealGrowth({ networkId: config.networkId, round: this.firstRound, peer: signer.peerId }, config.n, config.wireN, config.k)
    const node: SimNode = {
      index,
      peerId: signer.peerId,
      kind,
      validator,
      book,
      joinedAt: this.time.now(),
      leftAt: Infinity,
      engine: new PulseEngine({
        networkId: config.networkId,
        roundMs: config.roundMs,
        signer,
        scheduler: this.time.skewed(rng.normal() * config.clockSkewMs),
        book,
        prover,
        beaconKey: this.keys.beaconKey(signer.peerId),
        verifyBeacon: this.keys.verifyBeacon,
        validating: () => validator,
        workingCaps: () => caps,
        prober: this.capabilities.prober(),
        spotChecks: this.capabilities.spotChecks(peer => this.founders.has(peer)),
        n: config.n,
        k: config.k,
        committees,
        history: new ValidatorHistory([], [], peer => this.founders.has(peer)),
        sid: rng.bytes(8),
        transport: {
          publish: async (topic, data) => { await this.publish(node, topic, attacker === undefined ? data : await attacker.tamper(data)) },
          join: topic => { this.gossip.join(index, topic) },
          leave: topic => { this.gossip.leave(index, topic) },
          sendReveal: async (peer, data) => { await this.reveals.send(index, signer.peerId, peer, data, data.byteLength + this.growth) }
        }
      })
    }
    const attacker = kind === 'attacker' && attack !== undefined ? this.attackerFor(node, signer, attack.kind) : undefined
    if (attacker !== undefined) this.attackers.add(signer.peerId)
    this.nodes.push(node)
    this.reveals.add(signer.peerId, index, node.engine)
    node.engine.start()
    attacker?.start()
    return node
  }

  private attackerFor (node: SimNode, signer: PulseSigner, kind: AttackKind): Attacker {
    const { roundMs, networkId } = this.config
    return new Attacker(kind, {
      networkId,
      roundMs,
      signer,
      engine: node.engine,
      keys: this.keys,
      verify: this.keys.verify,
      rng: this.rng.fork(`attack-${signer.peerId}`),
      accomplices: this.attackers,
      inject: async (signed, judged) => {
        if (node.leftAt !== Infinity) return
        const data = encodeSigned(signed, judged)
        const admission = await admitPulse(data, signed.message.peer, networkId, roundMs, this.time.now(), this.keys.verify)
        if (admission.result !== 'accept') return
        this.gossip.publish(node.index, node.engine.committees.topic(signed.message.r), data.byteLength, admission.signed, signed.message.t)
      },
      everyRoundAt: (fraction, fn) => {
        const next = (): void => {
          const now = this.time.now()
          let at = (Math.floor(now / roundMs) + fraction) * roundMs
          if (at <= now) at += roundMs
          this.time.after(at - now, () => {
            if (node.leftAt !== Infinity) return
            next()
            void fn(Math.floor(this.time.now() / roundMs)).catch(err => { console.warn('sim: attacker step failed', err) })
          })
        }
        next()
      }
    })
  }

  /** What a node publishes is admitted once (every receiver would decide the same), then gossiped. */
  private async publish (node: SimNode, topic: string, data: Uint8Array): Promise<void> {
    const admission = await admitPulse(data, node.peerId, this.config.networkId, this.config.roundMs, this.time.now(), this.keys.verify)
    if (admission.result !== 'accept') throw new SimulationError(`${node.peerId} published a pulse message its peers would not accept`)
    const signed = admission.signed
    const bytes = data.byteLength + (signed.message.t === 'reveal' ? this.growth : 0)
    const message = this.gossip.publish(node.index, topic, bytes, signed, signed.message.t === 'verdict-digest' ? 'verdict' : signed.message.t)
    if (signed.message.t !== 'commit') return
    const byTopic = this.commits.get(signed.message.r) ?? new Map<string, Array<GossipMessage<SignedPulseMessage<ReceivedMessage>>>>()
    this.commits.set(signed.message.r, byTopic)
    const list = byTopic.get(topic) ?? []
    byTopic.set(topic, list)
    list.push(message)
  }

  /** Crashes, clean leaves and joins at random moments of the round. */
  private scheduleChurn (round: number): void {
    const { churn, nodes, roundMs } = this.config
    const start = round * roundMs
    const up = this.nodes.filter(n => n.leftAt === Infinity)
    const pickUp = (): SimNode | undefined => up.splice(this.rng.int(up.length), 1)[0]
    for (let i = 0; i < Math.round(churn.crash * nodes); i++) {
      const node = pickUp()
      if (node !== undefined) this.time.at(start + this.rng.uniform(0, roundMs), () => { this.crash(node) })
    }
    for (let i = 0; i < Math.round(churn.leave * nodes); i++) {
      const node = pickUp()
      if (node !== undefined) this.time.at(start + this.rng.uniform(0, roundMs), () => { this.leave(node) })
    }
    for (let i = 0; i < Math.round(churn.join * nodes); i++) {
      this.time.at(start + this.rng.uniform(0, roundMs), () => {
        this.addNode()
        this.churned.joined++
      })
    }
  }

  private crash (node: SimNode): void {
    this.gossip.crash(node.index)
    node.engine.stop()
    node.leftAt = this.time.now()
    this.churned.crashed++
  }

  private leave (node: SimNode): void {
    node.engine.stop()
    this.gossip.crash(node.index)
    node.leftAt = this.time.now()
    this.churned.left++
  }

  private observe (round: number): RoundObservation {
    const timing = timingOf(round, this.config.roundMs)
    const nodes: NodeRound[] = []
    for (const node of this.nodes) {
      if (node.joinedAt > timing.start || node.leftAt < timing.end) continue
      const record = node.book.get(round)
      const state = node.engine.round(round)
      const observed: NodeRound = {
        node: node.index,
        kind: node.kind,
        validator: node.validator,
        topic: node.engine.committees.topic(round),
        seedKnown: state !== undefined,
        committed: record.committed,
        verified: record.verified,
        struck: record.strikes.length > 0,
        bytes: this.gossip.traffic.bytes(node.index),
        rpcs: this.gossip.traffic.rpcs(node.index),
        lines: this.gossip.traffic.breakdown(node.index)
      }
      const leader = state?.canonicalChallenge()?.message.peer
      if (leader !== undefined) observed.leader = leader
      nodes.push(observed)
    }
    return { round, nodes, agreementMs: this.agreement(round, nodes, timing.start) }
  }

  /** Per committee: when every member that was up and following it had every commit published on it. */
  private agreement (round: number, nodes: NodeRound[], start: number): Map<string, number> {
    const members = new Map<string, number[]>()
    for (const n of nodes) {
      if (!n.seedKnown) continue
      const list = members.get(n.topic) ?? []
      members.set(n.topic, list)
      list.push(n.node)
    }
    const out = new Map<string, number>()
    for (const [topic, commits] of this.commits.get(round) ?? []) {
      let latest = 0
      for (const commit of commits) {
        for (const member of members.get(topic) ?? []) latest = Math.max(latest, this.gossip.firstHad(member, commit) ?? Infinity)
      }
      out.set(topic, latest - start)
    }
    return out
  }
}
