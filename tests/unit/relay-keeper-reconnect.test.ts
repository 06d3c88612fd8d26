import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { setImmediate as settle } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { DIAL_TIMEOUT_MS, RelayKeeper, RETRY_MAX_MS } from '../../src/net/relay-keeper.ts'
import type { Scheduler } from '../../src/core/scheduler.ts'

/** Virtual time: timers run in order, and what each one started settles before time moves on. */
function virtualClock (): Scheduler & { runUntil: (t: number) => Promise<void> } {
  let timers: Array<{ at: number, fn: () => void }> = []
  let now = 0
  const after = (ms: number, fn: () => void): () => void => {
    const timer = { at: now + Math.max(0, ms), fn }
    timers.push(timer)
    return () => { timers = timers.filter(t => t !== timer) }
  }
  return {
    now: () => now,
    after,
    every: (ms, fn) => {
      let cancel = (): void => {}
      const tick = (): void => { fn(); cancel = after(ms, tick) }
      cancel = after(ms, tick)
      return () => { cancel() }
    },
    runUntil: async t => {
      await settle()
      for (;;) {
        const next = timers.filter(x => x.at <= t).sort((x, y) => x.at - y.at)[0]
        if (next === undefined) break
        timers = timers.filter(x => x !== next)
        now = next.at
        next.fn()
        await settle()
      }
      now = t
    }
  }
}

type Network = 'up' | 'silent' | 'refusing'

/**
 * A libp2p with one relay behind a network the test controls: 'silent' drops everything (a dial hangs
 * until its signal aborts, as behind a dead uplink), 'refusing' fails a dial at once (the relay is
 * down), 'up' connects.
 */
async function harness (): Promise<{ keeper: RelayKeeper, clock: ReturnType<typeof virtualClock>, dials: number[], set: (n: Network) => void, drop: () => void, connected: () => boolean }> {
  const relayId = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  const clock = virtualClock()
  const listeners = new Map<string, Array<(evt: CustomEvent) => void>>()
  const emit = (type: string, detail: unknown): void => { for (const fn of listeners.get(type) ?? []) fn(new CustomEvent(type, { detail })) }
  let network: Network = 'up'
  let open = false
  const dials: number[] = []
  const libp2p = {
    addEventListener: (type: string, fn: (evt: CustomEvent) => void) => { listeners.set(type, [...listeners.get(type) ?? [], fn]) },
    removeEventListener: () => {},
    getMultiaddrs: () => [],
    getConnections: () => open ? [{ remotePeer: relayId, status: 'open' }] : [],
    peerStore: { merge: async () => {} },
    dial: async (_addr: unknown, options: { signal: AbortSignal }) => {
      dials.push(clock.now())
      if (network === 'refusing') throw new Error('connection refused')
      if (network === 'silent') {
        await new Promise((_resolve, reject) => { options.signal.addEventListener('abort', () => { reject(options.signal.reason) }) })
      }
      open = true
      emit('peer:connect', relayId)
    }
  }
  const keeper = new RelayKeeper(libp2p as never, clock, [`/ip4/198.19.0.1/tcp/4002/ws/p2p/${relayId.toString()}`], () => 1)
  await keeper.start()
  await clock.runUntil(0)
  return {
    keeper,
    clock,
    dials,
    set: n => { network = n },
    drop: () => { open = false; emit('peer:disconnect', relayId) },
    connected: () => keeper.statuses()[0]?.connected === true
  }
}

/** A harness whose relay connection has just dropped, with the network then in state `network`. */
async function cutOffWhile (network: Network): Promise<Awaited<ReturnType<typeof harness>>> {
  const h = await harness()
  h.set(network)
  h.drop()
  return h
}

describe('RelayKeeper reconnect schedule (virtual time)', () => {
  it('after a 120 s dead uplink, dials back to back and finds the relay within one dial timeout of the uplink returning', async () => {
    const h = await harness()
    expect(h.connected()).toBe(true)
    h.set('silent')
    h.drop()
    await h.clock.runUntil(120_000)
    expect(h.connected()).toBe(false)
    // One dial per timeout while nothing answers: cheap, and one is always under way.
    const duringCut = h.dials.length - 1
    expect(duringCut).toBeGreaterThanOrEqual(11)
    expect(duringCut).toBeLessThanOrEqual(13)
    h.set('up')
    let back: number | undefined
    for (let t = 120_000; t <= 120_000 + DIAL_TIMEOUT_MS + 1000 && back === undefined; t += 100) {
      await h.clock.runUntil(t)
      if (h.connected()) back = t - 120_000
    }
    // The dial hanging at the moment of restore gives up, and the next starts at once (a real SYN
    // retransmission inside the hanging dial is sooner still).
    expect(back).toBeDefined()
    expect(back).toBeLessThanOrEqual(DIAL_TIMEOUT_MS + 100)
    await h.keeper.stop()
  })

  it('a relay that refuses waits between attempts, never longer than the bound', async () => {
    const h = await cutOffWhile('refusing')
    await h.clock.runUntil(120_000)
    const gaps = h.dials.slice(2).map((t, i) => t - (h.dials[i + 1] ?? 0))
    expect(Math.max(...gaps)).toBeLessThanOrEqual(RETRY_MAX_MS)
    // A restarting relay is not hammered: after the first doublings the attempts are a bound apart.
    expect(h.dials.length).toBeLessThanOrEqual(20)
    h.set('up')
    await h.clock.runUntil(120_000 + RETRY_MAX_MS)
    expect(h.connected()).toBe(true)
    await h.keeper.stop()
  })

  it('a network change (redialNow) dials at once and starts the schedule over', async () => {
    const h = await cutOffWhile('refusing')
    await h.clock.runUntil(60_000)
    const before = h.dials.length
    h.keeper.redialNow()
    await h.clock.runUntil(60_000)
    expect(h.dials.length).toBe(before + 1)
    expect(h.dials.at(-1)).toBe(60_000)
    // The schedule starts over: the next try comes after the shortest delay, not the bound.
    expect(h.keeper.statuses()[0]?.nextRetryAt).toBe(61_000)
    await h.keeper.stop()
  })
})
