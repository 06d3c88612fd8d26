import { afterAll, describe, expect, it, vi } from 'vitest'
import { systemScheduler, type Scheduler } from '../../src/core/scheduler.ts'
import { WorkerScheduler } from '../../src/node/worker-scheduler.ts'
import { VirtualTime } from '../../sim/virtual-time.ts'
import { serveRpc } from '../../src/core/worker-rpc/host.ts'
import { createPulseApi } from '../../workers/pulse-api.ts'
import { PULSE_SERIAL, pulseErrors } from '../../workers/pulse-protocol.ts'
import { workerChannel } from './worker-channel.ts'

/**
 * The Scheduler port's contract, run against each implementation: plain timers (relay, tests), the
 * pulse worker's clock (browsers; here over a MessageChannel to the worker's own API) and virtual
 * time (simulator, adversary suite). Each test waits for a state, never for a fixed time.
 */
interface Subject {
  scheduler: Scheduler
  /** Lets time pass until `done` holds. */
  until: (done: () => boolean) => Promise<void>
}

function realTime (scheduler: Scheduler): Subject {
  return { scheduler, until: async done => { await vi.waitFor(() => { expect(done()).toBe(true) }, { timeout: 5_000, interval: 2 }) } }
}

function workerClock (): Subject & { close: () => void } {
  const channel = workerChannel()
  const noProver = async (): Promise<never> => { throw new Error('no prover in this test') }
  const stop = serveRpc(channel.worker, createPulseApi(noProver, async () => {}), { errors: pulseErrors, serial: PULSE_SERIAL })
  const scheduler = new WorkerScheduler(channel.page)
  return { ...realTime(scheduler), close: () => { stop(); scheduler.terminate() } }
}

function virtualTime (): Subject {
  const time = new VirtualTime(1_000_000)
  return {
    scheduler: time,
    until: async done => {
      const limit = time.now() + 60_000
      while (!done() && time.now() < limit) await time.runUntil(time.now() + 1)
      expect(done()).toBe(true)
    }
  }
}

const worker = workerClock()
afterAll(() => { worker.close() })

const subjects: Array<[string, () => Subject]> = [
  ['systemScheduler', () => realTime(systemScheduler)],
  ['WorkerScheduler', () => worker],
  ['VirtualTime', virtualTime]
]

describe.each(subjects)('Scheduler contract: %s', (_name, make) => {
  it('after: fires once, shorter delays first, no earlier than asked', async () => {
    const { scheduler, until } = make()
    const fired: Array<[string, number]> = []
    const start = scheduler.now()
    scheduler.after(30, () => fired.push(['late', scheduler.now()]))
    scheduler.after(10, () => fired.push(['early', scheduler.now()]))
    let sentinel = false
    scheduler.after(60, () => { sentinel = true })
    await until(() => sentinel)
    expect(fired.map(([name]) => name)).toEqual(['early', 'late'])
    // Node's timers may fire up to a millisecond before Date.now() says the delay is over.
    expect((fired[0]?.[1] ?? 0) - start).toBeGreaterThanOrEqual(9)
    expect((fired[1]?.[1] ?? 0) - start).toBeGreaterThanOrEqual(29)
  })

  it('after: a cancelled timer never fires; cancelling again, or after it fired, is harmless', async () => {
    const { scheduler, until } = make()
    let cancelledFired = false
    let fired = 0
    const cancel = scheduler.after(10, () => { cancelledFired = true })
    cancel()
    cancel()
    const cancelFired = scheduler.after(5, () => { fired++ })
    let sentinel = false
    scheduler.after(40, () => { sentinel = true })
    await until(() => sentinel)
    cancelFired()
    expect(cancelledFired).toBe(false)
    expect(fired).toBe(1)
  })

  it('every: repeats until cancelled, then never again', async () => {
    const { scheduler, until } = make()
    let count = 0
    const stop = scheduler.every(5, () => { count++ })
    await until(() => count >= 3)
    stop()
    const seen = count
    let sentinel = false
    scheduler.after(40, () => { sentinel = true })
    await until(() => sentinel)
    expect(count).toBe(seen)
  })

  it('every: a callback can cancel its own timer', async () => {
    const { scheduler, until } = make()
    let count = 0
    const stop = scheduler.every(5, () => { if (++count === 2) stop() })
    let sentinel = false
    scheduler.after(50, () => { sentinel = true })
    await until(() => sentinel)
    expect(count).toBe(2)
  })
})
