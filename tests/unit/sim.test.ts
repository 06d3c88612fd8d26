import { describe, expect, it } from 'vitest'
import { modelConfig } from '../../sim/scenarios.ts'
import { Simulation, type SimConfig } from '../../sim/simulation.ts'
import { summarize, type SimSummary } from '../../sim/summary.ts'
import { TRAFFIC_LINES } from '../../sim/traffic.ts'

/**
 * The simulator runs the real pulse engine on every node. Small networks here, so the whole file
 * stays fast: the full figures come from `npm run sim`.
 */

function config (nodes: number, rounds: number, change: Partial<SimConfig> = {}): SimConfig {
  return { ...modelConfig(nodes, 7, rounds), ...change }
}

async function simulate (c: SimConfig): Promise<SimSummary> {
  return summarize(await new Simulation(c).run())
}

/** Everything but the wall-clock time, which is the one thing a seed does not fix. */
function figures (s: SimSummary): SimSummary {
  return { ...s, wallSeconds: 0 }
}

describe('simulator', () => {
  it('is deterministic for a seed, and another seed gives another run', async () => {
    const small = config(40, 2, { churn: { crash: 0.05, leave: 0.05, join: 0.05 } })
    const a = await simulate(small)
    const b = await simulate(small)
    const c = await simulate({ ...small, seed: 8 })
    expect(figures(b)).toEqual(figures(a))
    expect(c.bytesPerNodeRound).not.toEqual(a.bytesPerNodeRound)
    // The breakdown by what the bytes carried adds up to the total, and every pulse message type is in it.
    const sum = (field: 'mean' | 'rpcs'): number => TRAFFIC_LINES.reduce((total, line) => total + (a.traffic?.[line][field] ?? 0), 0)
    expect(sum('mean')).toBeCloseTo(a.bytesPerNodeRound.mean, 3)
    expect(sum('rpcs')).toBeCloseTo(a.messagesPerNodeRound.mean, 3)
    for (const line of ['commit', 'challenge', 'reveal', 'verdict', 'IHAVE'] as const) expect(a.traffic?.[line].mean).toBeGreaterThan(0)
    // The pulse's GossipSub, on a protocol id of its own, sends no IDONTWANT (src/net/gossip.ts pulseGossip).
    expect(a.traffic?.IDONTWANT.mean).toBe(0)
  }, 90_000)

  it('200 nodes, 5 rounds across an epoch boundary, with churn: honest nodes verified, every cheater struck', async () => {
    const s = await simulate(config(200, 5))
    expect(s.committees).toBe(2)
    expect(s.rounds).toBe(5)
    expect(s.honestCommitted).toBeGreaterThan(0.95)
    // A node on a very slow uplink can fall behind its forwarding and lose rounds; everyone else passes.
    expect(s.honestVerified).toBeGreaterThan(0.98)
    expect(s.cheaterRounds).toBeGreaterThan(0)
    expect(s.cheatersCaught).toBe(1)
    expect(s.cheatersVerified).toBe(0)
    expect(s.leaderDisagreement).toBeLessThan(0.05)
    expect(s.churn.joined).toBeGreaterThan(0)
    expect(s.pointsPerVerifiedRound).toBeGreaterThan(0)
  }, 90_000)

  it('with no volunteer validators at all, the fallback validators still verify honest nodes and strike every cheater', async () => {
    const s = await simulate(config(120, 3, { validatorShare: 0, churn: { crash: 0, leave: 0, join: 0 } }))
    expect(s.honestCommitted).toBeGreaterThan(0.95)
    expect(s.honestVerified).toBeGreaterThan(0.98)
    expect(s.cheaterRounds).toBeGreaterThan(0)
    expect(s.cheatersCaught).toBe(1)
    expect(s.cheatersVerified).toBe(0)
  }, 90_000)
})
