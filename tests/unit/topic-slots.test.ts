import { describe, expect, it } from 'vitest'
import { TopicSlots, type Opener, type Subscribers } from '../../src/relay/topic-slots.ts'

const stranger = (peer: string, host = 'h'): Opener => ({ peer, host, established: false })
const established = (peer: string, host = 'h'): Opener => ({ peer, host, established: true })

/** Subscribers as the relay's GossipSub would report them: by default each topic has its opener only, a stranger. */
function subscribers (held: string[] = [], counts: Record<string, number> = {}): (topic: string) => Subscribers {
  return topic => ({ count: counts[topic] ?? 1, established: held.includes(topic) })
}

function slots (maxTopics: number, maxTopicsPerPeer = maxTopics, maxTopicsPerHost = maxTopics): TopicSlots {
  return new TopicSlots({ maxTopics, maxTopicsPerPeer, maxTopicsPerHost })
}

/** Fills every slot with a stranger's topic t0, t1, …, one stranger per topic. */
function filled (s: TopicSlots, count: number): void {
  for (let i = 0; i < count; i++) expect(s.claim(`t${i}`, stranger(`s${i}`), subscribers()).opened).toBe(true)
}

describe('TopicSlots', () => {
  it('a stranger takes a free slot within its shares, and is refused past them', () => {
    const s = slots(8, 2, 3)
    expect(s.claim('a', stranger('p'), subscribers())).toEqual({ opened: true, dropped: undefined })
    expect(s.claim('b', stranger('p'), subscribers()).opened).toBe(true)
    expect(s.claim('c', stranger('p'), subscribers()).opened).toBe(false)
    expect(s.claim('c', stranger('q'), subscribers()).opened).toBe(true)
    expect(s.claim('d', stranger('r'), subscribers()).opened).toBe(false)
    expect(s.claim('d', stranger('r', 'other host'), subscribers()).opened).toBe(true)
  })

  it('a stranger never makes room: with every slot taken it is refused', () => {
    const s = slots(4)
    filled(s, 4)
    expect(s.claim('new', stranger('late'), subscribers())).toEqual({ opened: false })
  })

  it('an established opener takes the place of a topic no established peer subscribes to', () => {
    const s = slots(4)
    filled(s, 4)
    expect(s.claim('committee', established('e'), subscribers())).toEqual({ opened: true, dropped: 't0' })
    // The slot is the committee's now: every slot is still taken.
    expect(s.claim('another', stranger('late'), subscribers()).opened).toBe(false)
  })

  it('gives way the topic with the fewest subscribers, the earliest opened among equals', () => {
    const s = slots(4)
    filled(s, 4)
    expect(s.claim('x', established('e'), subscribers([], { t0: 5, t1: 3, t2: 2, t3: 2 }))).toEqual({ opened: true, dropped: 't2' })
  })

  it('never drops a topic an established peer subscribes to, whoever opened it', () => {
    const s = slots(3)
    filled(s, 3)
    const held = ['t0', 't1']
    expect(s.claim('x', established('e'), subscribers(held, { t0: 0, t1: 0, t2: 9 }))).toEqual({ opened: true, dropped: 't2' })
    expect(s.claim('y', established('f'), subscribers([...held, 'x']))).toEqual({ opened: false })
  })

  it('strangers on its address cannot use up an established opener\'s group share', () => {
    const s = slots(8, 8, 2)
    expect(s.claim('a', stranger('s1'), subscribers()).opened).toBe(true)
    expect(s.claim('b', stranger('s2'), subscribers()).opened).toBe(true)
    expect(s.claim('c', stranger('s3'), subscribers()).opened).toBe(false)
    expect(s.claim('c', established('e1'), subscribers()).opened).toBe(true)
    expect(s.claim('d', established('e2'), subscribers()).opened).toBe(true)
    // Established openers of one group have their share among themselves, and still count against strangers'.
    expect(s.claim('e', established('e3'), subscribers()).opened).toBe(false)
  })

  it('an established key opens at most its own share, so one aged key cannot hold every slot', () => {
    const s = slots(4, 2)
    filled(s, 4)
    expect(s.claim('x', established('e'), subscribers()).opened).toBe(true)
    expect(s.claim('y', established('e'), subscribers()).opened).toBe(true)
    expect(s.claim('z', established('e'), subscribers())).toEqual({ opened: false })
  })

  it('a released topic frees its slot and its opener\'s shares', () => {
    const s = slots(1, 1, 1)
    expect(s.claim('a', stranger('p'), subscribers()).opened).toBe(true)
    expect(s.claim('b', stranger('p'), subscribers()).opened).toBe(false)
    s.release('a')
    expect(s.claim('b', stranger('p'), subscribers()).opened).toBe(true)
  })
})
