import { peerIdFromString } from '@libp2p/peer-id'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { MISBEHAVIOUR_LIMITS, MisbehaviourTracker } from '../../src/net/misbehaviour.ts'
import { fakePeerId } from './helpers.ts'
import type { Scheduler } from '../../src/core/scheduler.ts'

const MINUTE = 60_000

describe('MisbehaviourTracker', () => {
  let now: number
  let cut: string[]
  const scheduler: Scheduler = { now: () => now, after: () => () => {}, every: () => () => {} }
  const peer = (i: number): ReturnType<typeof peerIdFromString> => peerIdFromString(fakePeerId(i))
  const tracker = (relays: string[] = [], limits = MISBEHAVIOUR_LIMITS): MisbehaviourTracker =>
    new MisbehaviourTracker(scheduler, id => relays.includes(id), id => { cut.push(id.toString()) }, limits)

  beforeEach(() => {
    now = 1_000_000
    cut = []
    vi.spyOn(console, 'warn').mockImplementation(() => {})
  })
  afterEach(() => { vi.restoreAllMocks() })

  it('cuts off and bans a peer at its third invalid message within ten minutes', () => {
    const t = tracker()
    t.record(peer(1), 'a')
    t.record(peer(1), 'b')
    expect(cut).toEqual([])
    expect(t.isBanned(peer(1))).toBe(false)
    t.record(peer(1), 'c')
    expect(cut).toEqual([fakePeerId(1)])
    expect(t.isBanned(peer(1))).toBe(true)
    expect(t.isBanned(fakePeerId(1))).toBe(true)
  })

  it('lifts a ban when it expires', () => {
    const t = tracker()
    t.ban(peer(2), 'test')
    now += MISBEHAVIOUR_LIMITS.banMs - 1
    expect(t.isBanned(peer(2))).toBe(true)
    now += 1
    expect(t.isBanned(peer(2))).toBe(false)
    expect(t.size.banned).toBe(0)
  })

  it('forgets strikes older than the window', () => {
    const t = tracker()
    t.record(peer(3), 'a')
    t.record(peer(3), 'b')
    now += 10 * MINUTE
    t.record(peer(3), 'c')
    expect(cut).toEqual([])
  })

  it('never cuts off or bans a relay', () => {
    const t = tracker([fakePeerId(4)])
    for (let i = 0; i < 10; i++) t.record(peer(4), 'forwarded')
    t.ban(peer(4), 'scored down')
    expect(cut).toEqual([])
    expect(t.isBanned(peer(4))).toBe(false)
  })

  it('keeps at most maxPeers struck and banned peers, forgetting the stalest first', () => {
    const t = tracker([], { ...MISBEHAVIOUR_LIMITS, maxPeers: 100 })
    for (let i = 0; i < 1000; i++) {
      now += 1
      t.record(peer(i), 'one strike each')
      t.ban(peer(1000 + i), 'banned')
    }
    expect(t.size).toEqual({ struck: 100, banned: 100 })
    expect(t.isBanned(peer(1999))).toBe(true)
    expect(t.isBanned(peer(1000))).toBe(false)
  })

  it('a peer that strikes again moves to the back of the eviction order', () => {
    const t = tracker([], { ...MISBEHAVIOUR_LIMITS, maxPeers: 2 })
    t.record(peer(1), 'a')
    t.record(peer(2), 'a')
    t.record(peer(1), 'b')
    t.record(peer(3), 'a')
    t.record(peer(1), 'c')
    expect(cut).toEqual([fakePeerId(1)])
  })

  it('logs one line per peer and window however many messages it sends', () => {
    const warn = vi.mocked(console.warn)
    const t = tracker([fakePeerId(5)])
    for (let i = 0; i < 50; i++) t.record(peer(5), 'garbage')
    expect(warn).toHaveBeenCalledTimes(1)
  })
})
