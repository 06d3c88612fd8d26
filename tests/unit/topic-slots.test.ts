import { describe, expect, it } from 'vitest'
import { TopicSlots, WaitingTopics, type Opener, type Subscribers } from '../../src/relay/topic-slots.ts'

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
    expect(s.claim('committee', established('e'), subscribers())).toEqual({ opened: true, dropped: { topic: 't0', opener: stranger('s0') } })
    // The slot is the committee's now: every slot is still taken.
    expect(s.claim('another', stranger('late'), subscribers()).opened).toBe(false)
  })

  it('gives way the topic with the fewest subscribers, the earliest opened among equals', () => {
    const s = slots(4)
    filled(s, 4)
    expect(s.claim('x', established('e'), subscribers([], { t0: 5, t1: 3, t2: 2, t3: 2 }))).toEqual({ opened: true, dropped: { topic: 't2', opener: stranger('s2') } })
  })

  it('never drops a topic an established peer subscribes to, whoever opened it', () => {
    const s = slots(3)
    filled(s, 3)
    const held = ['t0', 't1']
    expect(s.claim('x', established('e'), subscribers(held, { t0: 0, t1: 0, t2: 9 }))).toEqual({ opened: true, dropped: { topic: 't2', opener: stranger('s2') } })
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

/** The waiting topics, in the order they are tried. */
const inTurn = (w: WaitingTopics): string[] => w.inTurn().map(([topic]) => topic)

/** Each opener in turn asks for a topic of its own, named as the opener. */
function askOwn (w: WaitingTopics, ...openers: Opener[]): void {
  for (const opener of openers) w.add(opener.peer, opener)
}

describe('WaitingTopics', () => {
  it('a flood of refused topics from one address keeps at most the capacity waiting, and does not push out those waiting before it', () => {
    const w = new WaitingTopics(64)
    w.add('honest', stranger('h'))
    for (let i = 0; i < 10_000; i++) w.add(`flood${i}`, stranger(`f${i % 100}`))
    expect(w.size).toBe(64)
    expect(w.has('honest')).toBe(true)
    expect(inTurn(w).slice(0, 2)).toEqual(['honest', 'flood0'])
  })

  it('a stranger of another address takes the place of the newest topic of the address waiting with the most', () => {
    const w = new WaitingTopics(4)
    for (let i = 0; i < 4; i++) askOwn(w, stranger(`f${i}`, 'flooder'))
    askOwn(w, stranger('a', 'honest'))
    expect(inTurn(w)).toEqual(['f0', 'a', 'f1', 'f2'])
    // The honest address waits with one, the flooder's with three: two more, so it gives way again.
    askOwn(w, stranger('b', 'honest'))
    expect(inTurn(w).sort()).toEqual(['a', 'b', 'f0', 'f1'])
    // Two each now: neither address pushes the other's out.
    askOwn(w, stranger('c', 'honest'), stranger('f9', 'flooder'))
    expect(inTurn(w).sort()).toEqual(['a', 'b', 'f0', 'f1'])
  })

  it('many addresses\' floods leave each a fair share, so one more address still gets a place', () => {
    const w = new WaitingTopics(64)
    for (let i = 0; i < 10_000; i++) w.add(`flood${i}`, stranger(`f${i}`, `host${i % 16}`))
    expect(w.size).toBe(64)
    w.add('honest', stranger('h', 'honest host'))
    expect(w.has('honest')).toBe(true)
  })

  it('an established asker takes the place of a stranger\'s topic; strangers never push out an established peer\'s', () => {
    const w = new WaitingTopics(3)
    askOwn(w, stranger('s0', 'x'), stranger('s1', 'y'), stranger('s2', 'y'), established('e0', 'y'))
    expect(w.has('e0')).toBe(true)
    expect(w.has('s2')).toBe(false)
    askOwn(w, established('e1', 'y'), established('e2', 'y'))
    expect(inTurn(w)).toEqual(['e0', 'e1', 'e2'])
    askOwn(w, stranger('s3', 'z'))
    expect(w.has('s3')).toBe(false)
    // Among established askers, the same rule as among strangers.
    askOwn(w, established('e3', 'z'))
    expect(inTurn(w)).toEqual(['e0', 'e1', 'e3'])
  })

  it('established askers\' topics are tried first, then strangers\' by address group in turns', () => {
    const w = new WaitingTopics(8)
    askOwn(w, stranger('x0', 'x'), stranger('x1', 'x'), stranger('x2', 'x'), stranger('y0', 'y'), established('e0', 'x'), stranger('u0', undefined))
    expect(inTurn(w)).toEqual(['e0', 'x0', 'y0', 'u0', 'x1', 'x2'])
  })

  it('a waiting topic an established peer asks for moves up; asked again by a stranger it keeps its place', () => {
    const w = new WaitingTopics(8)
    w.add('a', stranger('a'))
    w.add('b', stranger('b'))
    w.add('b', established('e'))
    w.add('b', stranger('c'))
    expect(w.inTurn()).toEqual([['b', established('e')], ['a', stranger('a')]])
    w.delete('b')
    expect(inTurn(w)).toEqual(['a'])
  })
})
