import { describe, expect, it } from 'vitest'
import { epochOf } from '../../src/core/pulse/committee.ts'
import { modelConfig } from '../../sim/scenarios.ts'
import { Simulation } from '../../sim/simulation.ts'
import { summarize } from '../../sim/summary.ts'

describe('simulator with committees', () => {
  it('200 nodes split into 2 committees, reshuffle at the epoch boundary, and keep verifying honest nodes', async () => {
    // Rounds: the epoch's decision round, its last round, and the first round of the next epoch.
    const run = await new Simulation({ ...modelConfig(200, 3, 3), churn: { crash: 0, leave: 0, join: 0 } }).run()
    const s = summarize(run)
    expect(s.committees).toBe(2)
    expect(s.nextCommittees).toBe(2)
    const [before, , after] = run.observations
    if (before === undefined || after === undefined) throw new Error('three rounds were measured')
    expect(epochOf(after.round)).toBe(epochOf(before.round) + 1)
    const topic = (o: typeof before, node: number): string | undefined => o.nodes.find(n => n.node === node)?.topic
    // Every node is in one of the two committees; about half of them change committee at the boundary.
    expect(new Set(before.nodes.map(n => n.topic)).size).toBe(2)
    const moved = before.nodes.filter(n => topic(after, n.node) !== n.topic).length
    expect(moved / before.nodes.length).toBeGreaterThan(0.35)
    expect(moved / before.nodes.length).toBeLessThan(0.65)
    // The new committees start their beacon chains afresh and work at once.
    const committed = after.nodes.filter(n => n.kind === 'honest' && n.committed)
    expect(committed.length / after.nodes.filter(n => n.kind === 'honest').length).toBeGreaterThan(0.97)
    expect(committed.filter(n => n.verified).length / committed.length).toBeGreaterThan(0.97)
    expect(s.cheatersCaught).toBe(1)
    expect(s.cheatersVerified).toBe(0)
  }, 90_000)
})
