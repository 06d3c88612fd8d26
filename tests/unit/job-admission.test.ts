import { describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { JobQueue, PeerRateLimit } from '../../src/core/jobs/admission.ts'
import { PeerBusyError } from '../../src/core/errors.ts'
import { systemScheduler } from '../../src/core/scheduler.ts'
import { pulseSigner, verifyPulseSignature } from '../../src/net/pulse-keys.ts'
import { admitJob } from '../../src/net/stream-helpers.ts'
import { jobServiceBase, type ReceiptedJobContext } from '../../src/node/job-context.ts'
import { rejectionOf, tick } from './waiting.ts'

/** Records when a waiting job is given its slot, under `name`. */
function track (order: string[], name: string, job: Promise<() => void>): Promise<() => void> {
  return job.then(release => { order.push(name); return release })
}

/**
 * Frees the running jobs one at a time and returns which waiters (by name) hold a slot after each;
 * then every job ends and the queue must be empty.
 */
async function handOnOrder (queue: JobQueue, running: Array<() => void>, waiting: Record<string, Promise<() => void>>): Promise<string[][]> {
  const order: string[] = []
  const jobs = Object.entries(waiting).map(([name, job]) => track(order, name, job))
  const after: string[][] = []
  for (const free of running) {
    free()
    await tick()
    after.push([...order])
  }
  for (const job of jobs) (await job)()
  expect(queue.length).toBe(0)
  return after
}

/** Frees a running slot: the waiter takes it, the queue then holds `length`, and one fewer once the waiter is done. */
async function expectSlotHandedOn (queue: JobQueue, free: () => void, waiter: Promise<() => void>, length: number): Promise<void> {
  free()
  const release = await waiter
  expect(queue.length).toBe(length)
  release()
  expect(queue.length).toBe(length - 1)
}

describe('JobQueue', () => {
  it('runs up to `slots` at once, lets `maxWaiting` wait, and refuses the rest as busy', async () => {
    const queue = new JobQueue(2, 1, 'node-x')
    const r1 = await queue.acquire()
    await queue.acquire()
    expect(queue.length).toBe(2)
    let third = false
    const waiting = queue.acquire().then(release => { third = true; return release })
    expect(queue.length).toBe(3)
    const err = await rejectionOf(queue.acquire())
    expect(err).toBeInstanceOf(PeerBusyError)
    expect((err as PeerBusyError).code).toBe('ERR_PEER_BUSY')
    expect((err as Error).message).toContain('node-x')
    expect(queue.length).toBe(3)
    await tick()
    expect(third).toBe(false)
    await expectSlotHandedOn(queue, r1, waiting, 2)
  })

  it('hands freed slots to waiters in arrival order', async () => {
    const queue = new JobQueue(1, 3)
    const order: string[] = []
    const first = await queue.acquire()
    const releases = new Map<string, () => void>()
    const waiters = ['a', 'b', 'c'].map(async name => {
      const release = await queue.acquire()
      order.push(name)
      releases.set(name, release)
    })
    await tick()
    expect(order).toEqual([])
    first()
    await tick()
    expect(order).toEqual(['a'])
    releases.get('a')?.()
    await tick()
    expect(order).toEqual(['a', 'b'])
    releases.get('b')?.()
    await Promise.all(waiters)
    expect(order).toEqual(['a', 'b', 'c'])
    releases.get('c')?.()
    expect(queue.length).toBe(0)
    // Everything released: a new job gets a slot at once.
    const again = await queue.acquire()
    expect(queue.length).toBe(1)
    again()
  })

  it('a waiter that aborts leaves the line with the abort reason and frees its place', async () => {
    const queue = new JobQueue(1, 1)
    const running = await queue.acquire()
    const controller = new AbortController()
    const waiting = queue.acquire({ signal: controller.signal })
    expect(queue.length).toBe(2)
    // The line is full.
    expect(await rejectionOf(queue.acquire())).toBeInstanceOf(PeerBusyError)
    const reason = new Error('client went away')
    controller.abort(reason)
    expect(await rejectionOf(waiting)).toBe(reason)
    expect(queue.length).toBe(1)
    // Its place can be taken, and the freed slot goes to the new waiter, not the aborted one.
    await expectSlotHandedOn(queue, running, queue.acquire(), 1)
  })

  it('a waiter whose signal is already aborted is refused at once and takes no place in line', async () => {
    const queue = new JobQueue(1, 1)
    const running = await queue.acquire()
    const reason = new Error('already gone')
    let settled: 'pending' | 'resolved' | 'rejected' = 'pending'
    queue.acquire({ signal: AbortSignal.abort(reason) }).then(() => { settled = 'resolved' }, () => { settled = 'rejected' })
    await tick()
    expect(settled).toBe('rejected')
    expect(queue.length).toBe(1)
    running()
  })

  it('releasing twice frees one slot only', async () => {
    const queue = new JobQueue(1, 2)
    const release = await queue.acquire()
    const got: string[] = []
    void queue.acquire().then(() => { got.push('a') })
    void queue.acquire().then(() => { got.push('b') })
    release()
    release()
    await tick()
    expect(got).toEqual(['a'])
    expect(queue.length).toBe(2)

    const solo = new JobQueue(1, 0)
    const r = await solo.acquire()
    r()
    r()
    expect(solo.length).toBe(0)
    await solo.acquire()
    expect(solo.length).toBe(1)
    // A released slot counted twice would let a second job in beside the first.
    expect(await rejectionOf(solo.acquire())).toBeInstanceOf(PeerBusyError)
  })
})

describe('JobQueue shared between peers', () => {
  it('one peer runs at most its share: its next job waits beside a free slot, another peer\'s runs at once', async () => {
    const queue = new JobQueue(4, 16, 'node-x', 2)
    const slow = [await queue.acquire({ peer: 'slow' }), await queue.acquire({ peer: 'slow' })]
    let third = false
    const waiting = queue.acquire({ peer: 'slow' }).then(release => { third = true; return release })
    await tick()
    expect(third).toBe(false)
    // Two slots are free, and another peer takes one at once.
    const other = await queue.acquire({ peer: 'other' })
    expect(queue.length).toBe(4)
    // Another peer's job ending frees a slot the capped peer still may not take.
    other()
    await tick()
    expect(third).toBe(false)
    // One of its own ending lets its waiting job start.
    slow[0]?.()
    const release = await waiting
    expect(queue.length).toBe(2)
    release()
    slow[1]?.()
    expect(queue.length).toBe(0)
  })

  it('one peer that fills every place cannot keep another out: its newest waiting job gives way', async () => {
    const queue = new JobQueue(1, 3, 'node-x')
    const attacker = await queue.acquire({ peer: 'mallory' })
    const flood = [1, 2, 3].map(async () => await queue.acquire({ peer: 'mallory' }))
    const outcomes = flood.map(async job => await job.then(() => 'ran', (err: Error) => err.name))
    // The line is full of mallory's jobs; mallory's next one is refused.
    expect(await rejectionOf(queue.acquire({ peer: 'mallory' }))).toBeInstanceOf(PeerBusyError)
    const honest = queue.acquire({ peer: 'alice' })
    expect(await outcomes[2]).toBe('PeerBusyError')
    expect(queue.length).toBe(4)
    // The freed slot goes to alice, who runs nothing, before mallory's older waiting jobs.
    attacker()
    const release = await honest
    expect(queue.length).toBe(3)
    release()
  })

  it('a peer holding no more than the others is refused when the line is full', async () => {
    const queue = new JobQueue(1, 2)
    const a = await queue.acquire({ peer: 'a' })
    const waitingB = queue.acquire({ peer: 'b' })
    const waitingC = queue.acquire({ peer: 'c' })
    // a, b and c hold one place each: taking one from any of them would leave d holding more.
    expect(await rejectionOf(queue.acquire({ peer: 'd' }))).toBeInstanceOf(PeerBusyError)
    a()
    ;(await waitingB)()
    ;(await waitingC)()
    expect(queue.length).toBe(0)
  })

  it('hands a freed slot to the waiting peer that holds the fewest places', async () => {
    const queue = new JobQueue(2, 3)
    const a1 = await queue.acquire({ peer: 'a' })
    const b1 = await queue.acquire({ peer: 'b' })
    const waiting = { a: queue.acquire({ peer: 'a' }), c: queue.acquire({ peer: 'c' }) }
    // b's slot frees: c (holding one place) goes before a (holding two), though a came first.
    expect(await handOnOrder(queue, [b1, a1], waiting)).toEqual([['c'], ['c', 'a']])
  })
})

describe('JobQueue with slots reserved for established peers', () => {
  it('strangers together run at most the unreserved slots; an established peer takes a reserved one at once', async () => {
    const queue = new JobQueue(3, 4, 'node-x', 3, 1)
    const s1 = await queue.acquire({ peer: 's1' })
    const s2 = await queue.acquire({ peer: 's2' })
    const order: string[] = []
    const s3 = track(order, 's3', queue.acquire({ peer: 's3' }))
    await tick()
    // A slot is free, but it is the reserved one.
    expect(order).toEqual([])
    expect(queue.length).toBe(3)
    const known = await queue.acquire({ peer: 'known', established: true })
    expect(queue.length).toBe(4)
    // The established job ending frees the reserved slot: still not the stranger's.
    known()
    await tick()
    expect(order).toEqual([])
    // A stranger's ending lets the waiting stranger start.
    s1()
    await tick()
    expect(order).toEqual(['s3'])
    ;(await s3)()
    s2()
    expect(queue.length).toBe(0)
  })

  it('an established peer finding the line full of strangers takes the newest one\'s place, and is served first', async () => {
    const queue = new JobQueue(1, 3, 'node-x')
    const running = await queue.acquire({ peer: 's0' })
    const order: string[] = []
    const refused: string[] = []
    const stranger = (name: string): Promise<() => void> => {
      const job = track(order, name, queue.acquire({ peer: name }))
      job.catch((err: Error) => { refused.push(`${name}: ${err.name}`) })
      return job
    }
    const s1 = stranger('s1')
    const s2 = stranger('s2')
    void stranger('s3')
    // Each stranger holds one place: another stranger finds no one to take a place from.
    expect(await rejectionOf(queue.acquire({ peer: 's4' }))).toBeInstanceOf(PeerBusyError)
    const known = track(order, 'known', queue.acquire({ peer: 'known', established: true }))
    await tick()
    expect(refused).toEqual(['s3: PeerBusyError'])
    expect(queue.length).toBe(4)
    // The freed slot goes to the established waiter before the older strangers.
    running()
    await tick()
    expect(order).toEqual(['known'])
    ;(await known)()
    await tick()
    expect(order).toEqual(['known', 's1'])
    ;(await s1)()
    ;(await s2)()
    expect(queue.length).toBe(0)
  })

  it('with nothing reserved and no peer established, admits as before: every slot is anyone\'s, in arrival order', async () => {
    const queue = new JobQueue(2, 2, 'node-x')
    expect(queue.reserved).toBe(0)
    const a = await queue.acquire({ peer: 'a' })
    const b = await queue.acquire({ peer: 'b' })
    const waiting = { c: queue.acquire({ peer: 'c' }), d: queue.acquire({ peer: 'd' }) }
    expect(await rejectionOf(queue.acquire({ peer: 'e' }))).toBeInstanceOf(PeerBusyError)
    expect(await handOnOrder(queue, [a, b], waiting)).toEqual([['c'], ['c', 'd']])
  })
})

/** What each take gets, in order: a take is [peer, at ms]. */
function takes (limit: PeerRateLimit, tries: Array<[string, number]>): boolean[] {
  return tries.map(([peer, at]) => limit.take(peer, at))
}

describe('PeerRateLimit', () => {
  it('allows a burst, then refuses until tokens refill', () => {
    const limit = new PeerRateLimit(60, 3)
    const t0 = 1_000_000
    expect([1, 2, 3, 4].map(() => limit.take('p', t0))).toEqual([true, true, true, false])
    // 60 per minute: one token a second.
    expect(limit.take('p', t0 + 999)).toBe(false)
    // 0.999 + 1.0 tokens by now: one job, not two.
    expect(limit.take('p', t0 + 1999)).toBe(true)
    expect(limit.take('p', t0 + 1999)).toBe(false)
  })

  it('keeps a bucket per peer', () => {
    const limit = new PeerRateLimit(60, 2)
    expect(takes(limit, [['a', 0], ['a', 0], ['a', 0], ['b', 0]])).toEqual([true, true, false, true])
  })

  it('refills at most to the burst after a long idle time', () => {
    const limit = new PeerRateLimit(60, 3)
    for (let i = 0; i < 3; i++) limit.take('p', 0)
    const later = 3_600_000
    expect([1, 2, 3, 4].map(() => limit.take('p', later))).toEqual([true, true, true, false])
  })

  it('refills fractionally: 30 per minute is one token every 2 s', () => {
    const limit = new PeerRateLimit(30, 1)
    expect(takes(limit, [['p', 0], ['p', 1000], ['p', 1999], ['p', 2000]])).toEqual([true, false, false, true])
  })

  it('forgets the least recently seen peer beyond maxPeers', () => {
    const limit = new PeerRateLimit(1, 1, 2)
    // After a's second try a is the most recent, so c's bucket pushes b's out: b starts afresh.
    expect(takes(limit, [['a', 0], ['b', 0], ['a', 0], ['c', 0], ['a', 0], ['b', 0]])).toEqual([true, true, false, true, false, true])
  })
})

describe('admitJob', () => {
  it('asks the node whether the client is established: only such a client takes a reserved slot', async () => {
    const signer = pulseSigner(await generateKeyPair('Ed25519'))
    const context: ReceiptedJobContext = {
      scheduler: systemScheduler,
      signer,
      verify: verifyPulseSignature,
      currentRound: () => 1,
      established: peer => peer === 'known',
      receipts: { keep: async () => {} }
    }
    // One slot, reserved, and no line: a stranger is refused, an established peer runs.
    const admission = jobServiceBase(context, { slots: 1, waiting: 0, reserved: 1, perMinute: 60, burst: 10 })
    const refused: string[] = []
    const signal = new AbortController().signal
    expect(await admitJob(admission, 'stranger', signal, async () => { refused.push('stranger') })).toBeUndefined()
    const release = await admitJob(admission, 'known', signal, async () => { refused.push('known') })
    expect(refused).toEqual(['stranger'])
    expect(release).toBeTypeOf('function')
    release?.()
    expect(admission.queue.length).toBe(0)
  })
})
