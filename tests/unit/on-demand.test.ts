import { describe, expect, it } from 'vitest'
import { NodeNotRunningError } from '../../src/core/errors.ts'
import { JobsUnavailableError, OnDemand, type Loaded } from '../../src/node/on-demand.ts'

/** A loader whose load the test finishes (or fails) itself, counting loads and stops. */
function gatedLoader (): { loader: () => Promise<Loaded<{ id: number }>>, finish: () => void, fail: (err: Error) => void, loads: number, stops: number } {
  const state = {
    loads: 0,
    stops: 0,
    finish: () => {},
    fail: (_err: Error) => {},
    loader: async (): Promise<Loaded<{ id: number }>> => {
      const id = ++state.loads
      await new Promise<void>((resolve, reject) => { state.finish = resolve; state.fail = reject })
      return { parts: { id }, stop: async () => { state.stops++ } }
    }
  }
  return state
}

/** An OnDemand over a gated loader, with one caller waiting for the load it started. */
async function loadStarted (): Promise<{ gate: ReturnType<typeof gatedLoader>, parts: OnDemand<{ id: number }>, waiting: Promise<{ id: number }> }> {
  const gate = gatedLoader()
  const parts = new OnDemand(gate.loader)
  const waiting = parts.ready()
  await Promise.resolve()
  return { gate, parts, waiting }
}

describe('OnDemand (the job coordinators, loaded on first need)', () => {
  it('builds nothing until asked; callers before it is ready wait for the one load', async () => {
    const gate = gatedLoader()
    const parts = new OnDemand(gate.loader)
    expect(gate.loads).toBe(0)
    expect(parts.current).toBeUndefined()
    const first = parts.ready()
    const second = parts.ready()
    await Promise.resolve()
    expect(gate.loads).toBe(1)
    gate.finish()
    expect(await first).toEqual({ id: 1 })
    expect(await second).toBe(await first)
    expect(parts.current).toBe(await first)
    expect(await parts.ready()).toBe(await first)
    expect(gate.loads).toBe(1)
  })

  it('a load that fails rejects its callers with JobsUnavailableError, and the next call loads again', async () => {
    const { gate, parts, waiting } = await loadStarted()
    gate.fail(new Error('Failed to fetch dynamically imported module'))
    const err = await waiting.catch((e: unknown) => e)
    expect(err).toBeInstanceOf(JobsUnavailableError)
    expect(err).toMatchObject({ name: 'JobsUnavailableError', code: 'ERR_JOBS_UNAVAILABLE' })
    expect((err as Error).message).toContain('Failed to fetch dynamically imported module')
    expect(parts.current).toBeUndefined()
    const again = parts.ready()
    await Promise.resolve()
    expect(gate.loads).toBe(2)
    gate.finish()
    expect(await again).toEqual({ id: 2 })
  })

  it('stopped while loading: callers get NodeNotRunningError and what the load built is stopped', async () => {
    const { gate, parts, waiting } = await loadStarted()
    const stopped = parts.stop()
    gate.finish()
    await expect(waiting).rejects.toBeInstanceOf(NodeNotRunningError)
    await stopped
    expect(gate.stops).toBe(1)
    expect(parts.current).toBeUndefined()
    await expect(parts.ready()).rejects.toBeInstanceOf(NodeNotRunningError)
    expect(gate.loads).toBe(1)
  })

  it('stops what it loaded, once, and loads nothing after', async () => {
    const { gate, parts, waiting } = await loadStarted()
    gate.finish()
    await waiting
    await parts.stop()
    await parts.stop()
    expect(gate.stops).toBe(1)
    expect(parts.current).toBeUndefined()
    await expect(parts.ready()).rejects.toMatchObject({ name: 'NodeNotRunningError', code: 'ERR_NODE_NOT_RUNNING' })
  })

  it('stopped before anything asked: nothing is loaded', async () => {
    const gate = gatedLoader()
    const parts = new OnDemand(gate.loader)
    await parts.stop()
    await expect(parts.ready()).rejects.toBeInstanceOf(NodeNotRunningError)
    expect(gate.loads).toBe(0)
  })
})
