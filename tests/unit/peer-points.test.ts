import { describe, expect, it } from 'vitest'
import { PEER_CHECKS_AT_ONCE, PeerPoints } from '../../src/node/peer-points.ts'
import type { PointsCheck } from '../../src/core/points-proof/check.ts'
import type { Scheduler } from '../../src/core/scheduler.ts'

/** PeerPoints: checks run at most PEER_CHECKS_AT_ONCE at a time, one per peer, and are remembered for the table. */

const manual = (): Scheduler & { tick: () => void } => {
  const sweeps: Array<() => void> = []
  return {
    now: () => 0,
    after: () => () => {},
    every: (_ms, fn) => { sweeps.push(fn); return () => {} },
    tick: () => { for (const fn of sweeps) fn() }
  }
}

function checker (): { check: (peer: string) => Promise<PointsCheck>, running: () => number, most: () => number, finish: (peer: string) => void } {
  const pending = new Map<string, Array<(r: PointsCheck) => void>>()
  let running = 0
  let most = 0
  return {
    check: async peer => {
      running++
      most = Math.max(most, running)
      return await new Promise<PointsCheck>(resolve => { pending.set(peer, [...(pending.get(peer) ?? []), resolve]) })
    },
    running: () => running,
    most: () => most,
    finish: peer => {
      const next = pending.get(peer)?.shift()
      if (next === undefined) throw new Error(`no check of ${peer} is running`)
      running--
      next({ peer, checked: false, reason: 'unreachable', detail: 'test' })
    }
  }
}

const settle = async (): Promise<void> => { for (let i = 0; i < 5; i++) await Promise.resolve() }

describe('PeerPoints', () => {
  it('keeps the count of checks a peer withdrew from, whatever later checks say', async () => {
    const answers: PointsCheck[] = [
      { peer: 'p', checked: false, reason: 'withdrew', detail: 'gone after the pick' },
      { peer: 'p', checked: true, points: 5, presence: 5, work: 0, from: 1, to: 2, rounds: 2, receipts: 0, sampled: { rounds: 2, receipts: 0, unknownRounds: 0 } },
      { peer: 'p', checked: false, reason: 'withdrew', detail: 'gone after the pick' }
    ]
    const points = new PeerPoints(async () => answers.shift() as PointsCheck, manual(), () => [])
    await points.of('p')
    await points.of('p')
    expect(points.list()[0]).toMatchObject({ withdrawals: 1, result: { checked: true } })
    await points.of('p')
    expect(points.list()[0]).toMatchObject({ withdrawals: 2, result: { reason: 'withdrew' } })
  })

  it('runs at most two checks at once, joins a running check of the same peer, and lists the results', async () => {
    const c = checker()
    const points = new PeerPoints(async peer => await c.check(peer), manual(), () => [])
    const results = ['a', 'b', 'c', 'a'].map(async peer => await points.of(peer))
    await settle()
    expect(c.running()).toBe(PEER_CHECKS_AT_ONCE)
    expect(points.list().map(e => [e.peerId, e.checking])).toEqual([['a', true], ['b', true], ['c', true]])
    c.finish('a')
    await settle()
    expect(c.running()).toBe(2)
    c.finish('b')
    await settle()
    c.finish('c')
    const done = await Promise.all(results)
    expect(done.map(r => r.peer)).toEqual(['a', 'b', 'c', 'a'])
    expect(c.most()).toBe(PEER_CHECKS_AT_ONCE)
    expect(points.list().every(e => !e.checking && e.result?.checked === false)).toBe(true)
  })

  it('checks the connected peers it is given when a sweep finds them due', async () => {
    const c = checker()
    const scheduler = manual()
    const points = new PeerPoints(async peer => await c.check(peer), scheduler, () => ['x'])
    await points.start()
    scheduler.tick()
    await settle()
    expect(c.running()).toBe(1)
    scheduler.tick()
    await settle()
    expect(c.running()).toBe(1)
    c.finish('x')
    await settle()
    // Checked at time 0 and the clock has not moved: not due again.
    scheduler.tick()
    await settle()
    expect(c.running()).toBe(0)
  })
})
