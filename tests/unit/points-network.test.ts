import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ReferenceProver } from '../../src/core/pulse/reference-prover.ts'
import { readAttestation } from '../../src/core/pulse/attestation.ts'
import { systemScheduler } from '../../src/core/scheduler.ts'
import { verifyPulseSignature } from '../../src/net/pulse-keys.ts'
import { PointsService } from '../../src/net/points-service.ts'
import { PulseStore } from '../../src/storage/pulse-store.ts'
import { startCluster, stopCluster, type ClusterNode } from '../../sim/cluster.ts'
import { closeAll, openDb } from './helpers.ts'
import { sleep } from './waiting.ts'
import type { CheckRules } from '../../src/core/points-proof/check.ts'
import type { ProofHistory } from '../../src/core/points-proof/prove.ts'
import type { Libp2p } from '@libp2p/interface'
import { memoryLibp2p } from './memory-libp2p.ts'

/**
 * Points proofs between real libp2p nodes (memory transport, real GossipSub and pulse): a node asks
 * another for its proof over `/hyperspace/points/1.0.0` and checks its points; a node that answers
 * with another node's history is caught, and one that does not speak the protocol is unreachable.
 */

const ROUND_MS = 5_000
const NET = 'dev-t5'
const NAMES = ['honest-a', 'honest-b', 'honest-c', 'honest-d', 'liar']

let nodes: ClusterNode[] = []
const stores = new Map<string, PulseStore>()
const services = new Map<string, PointsService>()
let mute: Libp2p | undefined

const node = (name: string): ClusterNode => nodes.find(n => n.name === name) as ClusterNode
const idOf = (name: string): string => node(name).libp2p.peerId.toString()

function pointsService (of: ClusterNode, history: ProofHistory, counts: CheckRules['counts'] = of.pulse.countsInRound): PointsService {
  return new PointsService(of.libp2p, { networkId: NET, roundMs: ROUND_MS, scheduler: systemScheduler, verify: verifyPulseSignature, history, counts })
}

/** Finished rounds of `name` verified, with its commit and at least two attestations from voters stored (a check's default period ends with the last finished round). */
async function provableRounds (name: string): Promise<number> {
  const current = Math.floor(Date.now() / ROUND_MS)
  let count = 0
  for (const record of node(name).pulse.ledger.between(0, current - 1)) {
    if (!record.verified || record.commit === undefined) continue
    const kept = await (stores.get(name) as PulseStore).attestations(NET, idOf(name), record.round)
    const voters = new Set(kept.flatMap(a => a.attestation === undefined ? [] : [readAttestation(a.attestation).header.peer]))
    if (voters.size >= 2) count++
  }
  return count
}

describe('points proofs between real libp2p nodes', () => {
  beforeAll(async () => {
    for (const name of [...NAMES, 'relay']) stores.set(name, new PulseStore(await openDb()))
    // A network after days of rounds (every member aged in every view): drawn validators vote, so
    // each round of an honest node carries passes from several voters.
    nodes = await startCluster([
      ...NAMES.map(name => ({ name, prover: new ReferenceProver(), validating: true })),
      { name: 'relay', validating: true }
    ], { networkId: NET, roundMs: ROUND_MS, n: 16, k: 4, aged: true, store: name => stores.get(name) })
    for (const n of nodes) {
      // The liar answers with honest-b's history as its own: rounds, commits and attestations it did not earn.
      const history = n.name === 'liar' ? node('honest-b').pulse.proofHistory(() => []) : n.pulse.proofHistory(() => [])
      const service = pointsService(n, history)
      await service.start()
      services.set(n.name, service)
    }
    mute = await memoryLibp2p('mute')
    await node('honest-a').libp2p.dial(mute.getMultiaddrs()[0] as Parameters<Libp2p['dial']>[0])
    // Checked a few times a round, not more: the machine runs the whole pulse of six nodes meanwhile.
    const deadline = Date.now() + 24 * ROUND_MS
    while (await provableRounds('honest-b') < 2) {
      if (Date.now() > deadline) throw new Error('honest-b never had two provable rounds')
      await sleep(ROUND_MS / 4)
    }
  }, 150_000)

  afterAll(async () => {
    for (const service of services.values()) await service.stop()
    await mute?.stop()
    await stopCluster(nodes)
    closeAll()
  })

  it('a node checks another\'s points: every sampled round backed by a quorum it counts', async () => {
    const result = await (services.get('honest-a') as PointsService).check(idOf('honest-b'))
    if (!result.checked) throw new Error(`${result.reason}: ${result.detail}`)
    expect(result.rounds).toBeGreaterThanOrEqual(2)
    expect(result.sampled.rounds).toBe(Math.min(48, result.rounds))
    expect(result.presence).toBeGreaterThan(0)
    expect(result.points).toBe(result.presence + result.work)
  })

  it('a default check starts at the first round the checker drew validators in (before it, only anchors count)', async () => {
    const a = node('honest-a')
    const service = new PointsService(a.libp2p, {
      networkId: NET, roundMs: ROUND_MS, scheduler: systemScheduler, verify: verifyPulseSignature, history: a.pulse.proofHistory(() => []),
      counts: a.pulse.countsInRound, firstDrawnRound: (from, to) => a.pulse.firstDrawnRound(from, to)
    })
    const day = pointsService(a, a.pulse.proofHistory(() => [])).defaultPeriod()
    const first = a.pulse.firstDrawnRound(day.from, day.to)
    expect(first).toBeGreaterThan(day.from)
    expect(service.defaultPeriod()).toEqual({ from: first, to: day.to })
    const result = await service.check(idOf('honest-b'))
    if (!result.checked) throw new Error(`${result.reason}: ${result.detail}`)
    expect(result.from).toBe(first)
  })

  it('a node answering with another node\'s history is caught', async () => {
    const result = await (services.get('honest-a') as PointsService).check(idOf('liar'))
    expect(result).toMatchObject({ checked: false, reason: 'mismatch' })
  })

  it('a checker that counts none of the voters says so rather than passing', async () => {
    const stranger = pointsService(node('honest-c'), node('honest-c').pulse.proofHistory(() => []), () => false)
    const result = await stranger.check(idOf('honest-b'))
    expect(result).toMatchObject({ checked: false, reason: 'unknown-validators' })
  })

  it('a peer that does not speak the protocol is unreachable', async () => {
    const result = await (services.get('honest-a') as PointsService).check((mute as Libp2p).peerId.toString())
    expect(result).toMatchObject({ checked: false, reason: 'unreachable' })
  })
})
