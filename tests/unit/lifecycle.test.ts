import { describe, expect, it } from 'vitest'
import { LifecycleStartError, LifecycleStopError } from '../../src/core/lifecycle-errors.ts'
import { Lifecycle, startOnly, stopOnly, type Startable } from '../../src/core/lifecycle.ts'

/** A part that writes what happens to it into the shared log, and fails where it is told to. */
function part (name: string, log: string[], fail: { start?: boolean, stop?: boolean } = {}): Startable {
  return {
    start: async () => {
      log.push(`start ${name}`)
      if (fail.start === true) throw new Error(`${name} broke`)
    },
    stop: async () => {
      log.push(`stop ${name}`)
      if (fail.stop === true) throw new Error(`${name} would not stop`)
    }
  }
}

/** A part whose start the test finishes itself: shows which parts start at once. */
function gated (name: string, log: string[]): Startable & { finish: () => void } {
  let finish = (): void => {}
  const started = new Promise<void>(resolve => { finish = resolve })
  return {
    finish: () => { finish() },
    start: async () => {
      log.push(`begin ${name}`)
      await started
      log.push(`end ${name}`)
    },
    stop: async () => { log.push(`stop ${name}`) }
  }
}

describe('Lifecycle (start in order, stop in reverse)', () => {
  it('starts the steps in the order listed and stops them in reverse', async () => {
    const log: string[] = []
    const lifecycle = new Lifecycle([{ a: part('a', log) }, { b: part('b', log) }, { c: part('c', log) }])
    await lifecycle.start()
    expect(log).toEqual(['start a', 'start b', 'start c'])
    log.length = 0
    await lifecycle.stop()
    expect(log).toEqual(['stop c', 'stop b', 'stop a'])
  })

  it('starts the parts of one step at once, and the next step after all of them', async () => {
    const log: string[] = []
    const x = gated('x', log)
    const y = gated('y', log)
    const lifecycle = new Lifecycle([{ x, y }, { after: part('after', log) }])
    const starting = lifecycle.start()
    await expect.poll(() => log).toEqual(['begin x', 'begin y'])
    y.finish()
    await expect.poll(() => log).toContain('end y')
    expect(log).not.toContain('start after')
    x.finish()
    await starting
    expect(log).toEqual(['begin x', 'begin y', 'end y', 'end x', 'start after'])
  })

  it('stops what started, in reverse, when a part fails to start, and names it', async () => {
    const log: string[] = []
    const lifecycle = new Lifecycle([{ a: part('a', log) }, { b: part('b', log) }, { c: part('c', log, { start: true }) }, { d: part('d', log) }])
    const err = await lifecycle.start().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(LifecycleStartError)
    expect((err as LifecycleStartError).part).toBe('c')
    expect((err as LifecycleStartError).cause).toBeInstanceOf(Error)
    expect((err as Error).message).toContain('c broke')
    // c's own start failed: it is not stopped; d never started.
    expect(log).toEqual(['start a', 'start b', 'start c', 'stop b', 'stop a'])
    log.length = 0
    await lifecycle.stop()
    expect(log).toEqual([])
  })

  it('stops the parts of a step that started when another part of it failed', async () => {
    const log: string[] = []
    const lifecycle = new Lifecycle([{ a: part('a', log) }, { ok: part('ok', log), bad: part('bad', log, { start: true }) }])
    await expect(lifecycle.start()).rejects.toThrow(LifecycleStartError)
    expect(log.slice(3)).toEqual(['stop ok', 'stop a'])
  })

  it('keeps the stop failures of a rollback on the start error', async () => {
    const log: string[] = []
    const lifecycle = new Lifecycle([{ a: part('a', log, { stop: true }) }, { b: part('b', log, { start: true }) }])
    const err = await lifecycle.start().catch((e: unknown) => e) as LifecycleStartError
    expect(err).toBeInstanceOf(LifecycleStartError)
    expect(err.stopFailures.map(f => f.part)).toEqual(['a'])
  })

  it('stops every part although some fail, then throws one error naming them all', async () => {
    const log: string[] = []
    const lifecycle = new Lifecycle([
      { a: part('a', log, { stop: true }) }, { b: part('b', log) }, { c: part('c', log, { stop: true }) }, { d: part('d', log) }
    ])
    await lifecycle.start()
    log.length = 0
    const err = await lifecycle.stop().catch((e: unknown) => e) as LifecycleStopError
    expect(err).toBeInstanceOf(LifecycleStopError)
    expect(log).toEqual(['stop d', 'stop c', 'stop b', 'stop a'])
    expect(err.failures.map(f => f.part)).toEqual(['c', 'a'])
    expect(err.message).toContain('a would not stop')
    expect(err.message).toContain('c would not stop')
    // Stopped is stopped: a second stop has nothing left to do.
    log.length = 0
    await lifecycle.stop()
    expect(log).toEqual([])
  })

  it('starts once: a second start while running does nothing', async () => {
    const log: string[] = []
    const lifecycle = new Lifecycle([{ a: part('a', log) }])
    await lifecycle.start()
    await lifecycle.start()
    expect(log).toEqual(['start a'])
  })

  it('nests: a lifecycle is itself a part of another', async () => {
    const log: string[] = []
    const inner = new Lifecycle([{ b: part('b', log) }, { c: part('c', log) }])
    const outer = new Lifecycle([{ a: part('a', log) }, { inner }, { d: part('d', log) }])
    await outer.start()
    await outer.stop()
    expect(log).toEqual(['start a', 'start b', 'start c', 'start d', 'stop d', 'stop c', 'stop b', 'stop a'])
  })
})

describe('startOnly', () => {
  it('runs its work on start and has nothing to release on stop', async () => {
    let loads = 0
    const loader = startOnly(async () => { loads++ })
    await loader.start()
    await loader.stop()
    expect(loads).toBe(1)
  })
})

describe('stopOnly', () => {
  it('leaves the start to its owner and runs its work on stop', async () => {
    let stops = 0
    const lifecycle = new Lifecycle([{ onDemand: stopOnly(async () => { stops++ }) }])
    await lifecycle.start()
    expect(stops).toBe(0)
    await lifecycle.stop()
    expect(stops).toBe(1)
  })
})
