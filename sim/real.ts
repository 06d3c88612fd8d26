import { mkdirSync, writeFileSync } from 'node:fs'
import { decodeMessage } from '../src/core/wire/cbor.ts'
import { MAX_COMMITTEE, PULSE_MAX_BYTES, PULSE_VERSION } from '../src/core/wire/pulse.ts'
import { unpackBody } from '../src/core/wire/pulse-compact.ts'
import { PULSE_K } from '../src/core/pulse/params.ts'
import { pulseTopic } from '../src/core/wire/topics.ts'
import { startCluster, stopCluster, type ClusterNode, type ClusterNodeSpec, type WireCounters } from './cluster.ts'
import { PULSE_GOSSIPSUB } from './gossip.ts'
import { IN_PROCESS_LINKS } from './links.ts'
import { proverFor, type NodeKind } from './provers.ts'
import { comparisonTable } from './report.ts'
import { Rng } from './rng.ts'
import { Simulation, type NodeRound, type RoundObservation, type SimConfig } from './simulation.ts'
import { summarize, type SimSummary } from './summary.ts'

/**
 * The model checked against the real stack: `nodes` real libp2p nodes in this process (memory
 * transport, GossipSub, the real PulseService on real timers) run a few short rounds, measured the way
 * the simulator measures its nodes; then the simulator runs the same network (same size, round
 * length, n, validators and cheaters; links as fast as memory, no loss, no churn) and both are shown
 * side by side. Wire bytes on the real side are GossipSub's own count of the RPCs it sends and receives.
 */

export interface RealOptions {
  nodes: number
  roundSeconds: number
  rounds: number
  seed: number
}

const N = 16
/** Each node dials 4 others (about 8 connections each): enough for a mesh of 6, and it keeps one process's CPU for the pulse. */
const DIALS = 4
const VALIDATOR_SHARE = 0.05
const CHEATER_SHARE = 0.05
const COMMIT_ENVELOPE_MAX = 1024 + 128
/** Look at a round this long before it ends, as the simulator does. */
const SNAPSHOT_BEFORE_END_MS = 500

interface RealNode {
  cluster: ClusterNode
  kind: NodeKind
  validator: boolean
}

async function sleepUntil (time: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, Math.max(0, time - Date.now())))
}

/** Who committed in which round, and when each node first heard each commit. */
class CommitLog {
  private readonly heard = new Map<number, Map<string, Map<number, number>>>()

  listen (node: number, cluster: ClusterNode, networkId: string): void {
    cluster.libp2p.services.pulsePubsub.addEventListener('message', evt => {
      // Commits are small (body at most 1 KiB): the larger messages need no decoding here.
      if (!evt.detail.topic.startsWith(`hyperspace/v2/${networkId}/pulse/`) || evt.detail.data.byteLength > COMMIT_ENVELOPE_MAX) return
      const envelope = decodeMessage(evt.detail.data, PULSE_MAX_BYTES, PULSE_VERSION)
      const { body } = unpackBody(envelope.m, MAX_COMMITTEE)
      if (body.t !== 'commit') return
      const byPeer = this.heard.get(body.r as number) ?? new Map<string, Map<number, number>>()
      this.heard.set(body.r as number, byPeer)
      const byNode = byPeer.get(body.peer as string) ?? new Map<number, number>()
      byPeer.set(body.peer as string, byNode)
      if (!byNode.has(node)) byNode.set(node, Date.now())
    })
  }

  /** Ms after the round start until every node up had every other node's commit (Infinity: never). */
  agreement (round: number, nodes: RealNode[], start: number): number {
    let latest = 0
    for (const [peer, byNode] of this.heard.get(round) ?? []) {
      for (const [i, node] of nodes.entries()) {
        if (node.cluster.pulse.self !== peer) latest = Math.max(latest, (byNode.get(i) ?? Infinity) - start)
      }
    }
    return latest
  }
}

async function measureReal (options: RealOptions, networkId: string, specs: Array<{ kind: NodeKind, validator: boolean, spec: ClusterNodeSpec }>): Promise<{ summary: SimSummary, startup: number, skipped: Map<string, number> }> {
  const roundMs = options.roundSeconds * 1000
  const started = performance.now()
  // As the model does, the network starts as after days of rounds: every member's history is aged.
  const clusters = await startCluster(specs.map(s => s.spec), { networkId, roundMs, n: N, k: PULSE_K, dials: DIALS, aged: true })
  const startup = (performance.now() - started) / 1000
  const nodes: RealNode[] = clusters.map((cluster, i) => ({ cluster, kind: specs[i]?.kind ?? 'honest', validator: specs[i]?.validator ?? false }))
  const log = new CommitLog()
  for (const [i, node] of nodes.entries()) log.listen(i, node.cluster, networkId)
  const observations: RoundObservation[] = []
  /** Why nodes did not commit, as their own round records say. */
  const skipped = new Map<string, number>()
  try {
    // The round under way is partial and the next is spent learning K and the beacon: measure from the one after.
    const first = Math.floor(Date.now() / roundMs) + 2
    const before = new Map<number, WireCounters>()
    for (let round = first; round < first + options.rounds; round++) {
      await sleepUntil(round * roundMs - SNAPSHOT_BEFORE_END_MS)
      for (const [i, node] of nodes.entries()) before.set(i, { ...node.cluster.wire })
      await sleepUntil((round + 1) * roundMs - SNAPSHOT_BEFORE_END_MS)
      const observed: NodeRound[] = nodes.map((node, i) => {
        const record = node.cluster.pulse.ledger.get(round)
        if (!record.committed) skipped.set(record.skipped ?? 'no reason recorded', (skipped.get(record.skipped ?? 'no reason recorded') ?? 0) + 1)
        const current = node.cluster.pulse.current()
        const wire = node.cluster.wire
        const was = before.get(i) as WireCounters
        const out: NodeRound = {
          node: i,
          kind: node.kind,
          validator: node.validator,
          topic: pulseTopic(networkId, current.committee),
          seedKnown: current.seedKnown,
          committed: record.committed,
          verified: record.verified,
          struck: record.strikes.length > 0,
          bytes: wire.bytesIn - was.bytesIn + wire.bytesOut - was.bytesOut,
          rpcs: wire.rpcsIn - was.rpcsIn + wire.rpcsOut - was.rpcsOut
        }
        if (current.leader !== null) out.leader = current.leader
        return out
      })
      observations.push({ round, nodes: observed, agreementMs: new Map([[pulseTopic(networkId, 0), log.agreement(round, nodes, round * roundMs)]]) })
    }
  } finally {
    await stopCluster(clusters)
  }
  const points = nodes.filter(n => n.kind === 'honest').flatMap(n => {
    const earned = n.cluster.pulse.ledger.points().filter(p => observations.some(o => o.round === p.round))
    return earned.length === 0 ? [] : [earned.reduce((sum, p) => sum + p.points, 0) / earned.length]
  })
  const config = modelFor(options, networkId)
  const summary = summarize({ config, committees: 1, nextCommittees: null, observations, pointsPerVerifiedRound: points, attackerPoints: 0, bonus: { honest: 0, attackers: 0 }, churn: { crashed: 0, left: 0, joined: 0 }, wallMs: performance.now() - started })
  return { summary, startup, skipped }
}

/** The simulator's version of the real run's network. */
function modelFor (options: RealOptions, networkId: string): SimConfig {
  return {
    seed: options.seed,
    nodes: options.nodes,
    rounds: options.rounds,
    roundMs: options.roundSeconds * 1000,
    networkId,
    n: N,
    wireN: N,
    k: PULSE_K,
    validatorShare: VALIDATOR_SHARE,
    cheaterShare: CHEATER_SHARE,
    churn: { crash: 0, leave: 0, join: 0 },
    links: IN_PROCESS_LINKS,
    gossip: PULSE_GOSSIPSUB,
    proveMedianMs: 5,
    clockSkewMs: 0,
    roundsBeforeEpoch: 48
  }
}

export async function runReal (options: RealOptions): Promise<void> {
  const networkId = `real-t${options.roundSeconds}`
  const rng = new Rng(options.seed)
  const specs = Array.from({ length: options.nodes }, (_, i) => {
    const kind: NodeKind = rng.next() >= CHEATER_SHARE ? 'honest' : rng.next() < 0.5 ? 'wrong-work' : 'forged-root'
    const validator = kind === 'honest' && rng.next() < VALIDATOR_SHARE
    return { kind, validator, spec: { name: `node-${i}`, prover: proverFor(kind, rng.fork(`node-${i}`)), validating: validator } }
  })
  // At least two validators, so that a validator has someone other than itself to pass it.
  for (const s of specs.filter(s => s.kind === 'honest').slice(0, Math.max(0, 2 - specs.filter(s => s.validator).length))) {
    s.validator = true
    s.spec.validating = true
  }
  console.log(`\nReal libp2p: ${options.nodes} nodes in one process (memory transport, GossipSub, PulseService), ${options.rounds} rounds of ${options.roundSeconds} s, n = ${N}`)
  const real = await measureReal(options, networkId, specs)
  console.log(`(${real.startup.toFixed(0)} s to start and connect the nodes; the model runs next)`)
  const model = summarize(await new Simulation(modelFor(options, networkId)).run())
  console.log(comparisonTable([{ label: 'real libp2p', summary: real.summary }, { label: 'model', summary: model }]))
  if (real.skipped.size > 0) console.log(`\nreal nodes that did not commit, by the reason in their round record: ${[...real.skipped].map(([why, count]) => `${count} × ${why}`).join('; ')}`)
  mkdirSync('bench/results', { recursive: true })
  writeFileSync('bench/results/sim-real.json', JSON.stringify({ options, real: real.summary, skipped: Object.fromEntries(real.skipped), model }, null, 2) + '\n')
  console.log('\nwrote bench/results/sim-real.json')
}
