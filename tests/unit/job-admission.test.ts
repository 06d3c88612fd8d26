import { describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { JobQueue } from '../../src/core/jobs/admission.ts'
import { PeerBusyError } from '../../src/core/errors.ts'
import { systemScheduler } from '../../src/core/scheduler.ts'
import { pulseSigner, verifyPulseSignature } from '../../src/net/pulse-keys.ts'
import { admitJob } from '../../src/net/stream-helpers.ts'
import { jobServiceBase, type ReceiptedJobContext } from '../../src/node/job-context.ts'
import { rejectionOf } from './waiting.ts'

/** A tick of the event loop: lets settled promises run their continuations. */
async function tick (): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, 0))
}

/** Records when a waiting job is given its slot, under `name`. */
function track (order: string[], name: string, job: Promise<() => void>): Promise<() => void> {
  return job.then(release => { order.push(name); return release })
}

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
    const order: string[] = []
    const c = track(order, 'c', queue.acquire({ peer: 'c' }))
    const d = track(order, 'd', queue.acquire({ peer: 'd' }))
    expect(await rejectionOf(queue.acquire({ peer: 'e' }))).toBeInstanceOf(PeerBusyError)
    a()
    await tick()
    expect(order).toEqual(['c'])
    b()
    await tick()
    expect(order).toEqual(['c', 'd'])
    ;(await c)()
    ;(await d)()
    expect(queue.length).toBe(0)
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
