import { ping, PING_PROTOCOL } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { ConnectionProbe, PROBE_INTERVAL_MS, PROBE_TIMEOUT_MS } from '../../src/net/connection-probe.ts'
import { connect, memoryLibp2p } from './memory-libp2p.ts'
import type { Scheduler } from '../../src/core/scheduler.ts'
import type { Connection, Libp2p, Stream } from '@libp2p/interface'

/** A scheduler the test moves by hand; periodic timers run as their times pass. */
function manualClock (): Scheduler & { run: (ms: number) => void } {
  let now = 0
  let timers: Array<{ at: number, every?: number, fn: () => void }> = []
  return {
    now: () => now,
    after: (ms, fn) => {
      const timer = { at: now + ms, fn }
      timers.push(timer)
      return () => { timers = timers.filter(t => t !== timer) }
    },
    every: (ms, fn) => {
      const timer = { at: now + ms, every: ms, fn }
      timers.push(timer)
      return () => { timers = timers.filter(t => t !== timer) }
    },
    run: ms => {
      const end = now + ms
      for (;;) {
        const next = timers.filter(t => t.at <= end).sort((a, b) => a.at - b.at)[0]
        if (next === undefined) break
        now = next.at
        if (next.every === undefined) timers = timers.filter(t => t !== next)
        else next.at += next.every
        next.fn()
      }
      now = end
    }
  }
}

const nodes: Libp2p[] = []
const probes: ConnectionProbe[] = []
afterEach(async () => {
  await Promise.all(probes.splice(0).map(async p => { await p.stop() }))
  await Promise.all(nodes.splice(0).map(async n => { await n.stop() }))
})

async function node (name: string, answersPing = true): Promise<Libp2p> {
  const libp2p = answersPing ? await memoryLibp2p(name, { services: { ping: ping() } }) : await memoryLibp2p(name)
  nodes.push(libp2p)
  return libp2p
}

async function probing (libp2p: Libp2p, clock: Scheduler): Promise<ConnectionProbe> {
  const probe = new ConnectionProbe(libp2p, clock)
  probes.push(probe)
  await probe.start()
  return probe
}

/** Counts the ping streams a node is opened, holding each (never echoing) when `silent`. */
async function countPings (libp2p: Libp2p, silent: boolean): Promise<{ count: () => number }> {
  let count = 0
  await libp2p.handle(PING_PROTOCOL, (stream: Stream) => {
    count++
    if (silent) return
    stream.addEventListener('message', evt => { stream.send(evt.data) })
  }, { force: true, maxInboundStreams: 8 })
  return { count: () => count }
}

describe('connection probe', () => {
  it('measures the round-trip time of a connection at its first tick', async () => {
    const clock = manualClock()
    const [a, b] = [await node('a'), await node('b')]
    await connect(a, b)
    await probing(a, clock)
    const conn = a.getConnections(b.peerId)[0] as Connection
    expect(conn.rtt).toBeUndefined()
    clock.run(5_000)
    await vi.waitFor(() => { expect(conn.rtt).toBeTypeOf('number') })
    expect(conn.status).toBe('open')
  })

  it('cuts a connection whose peer does not answer a probe in time', async () => {
    const clock = manualClock()
    const [a, b] = [await node('a'), await node('b')]
    const pings = await countPings(b, true)
    await connect(a, b)
    await probing(a, clock)
    clock.run(5_000)
    await vi.waitFor(() => { expect(pings.count()).toBe(1) })
    expect(a.getConnections(b.peerId)).toHaveLength(1)
    clock.run(PROBE_TIMEOUT_MS)
    await vi.waitFor(() => { expect(a.getConnections(b.peerId)).toHaveLength(0) })
  })

  it('keeps a peer that answers without the ping protocol: multistream-select showed it alive', async () => {
    const clock = manualClock()
    const [a, b] = [await node('a'), await node('b', false)]
    await connect(a, b)
    await probing(a, clock)
    const conn = a.getConnections(b.peerId)[0] as Connection
    clock.run(5_000)
    await vi.waitFor(() => { expect(conn.rtt).toBeTypeOf('number') })
    clock.run(PROBE_TIMEOUT_MS)
    expect(conn.status).toBe('open')
  })

  it('probes a peer\'s other connections at once when one of its connections opens or closes', async () => {
    const clock = manualClock()
    const [a, b] = [await node('a'), await node('b')]
    const pings = await countPings(b, false)
    await connect(a, b)
    await probing(a, clock)
    const first = a.getConnections(b.peerId)[0] as Connection
    // A page that reloaded dials again: the connection to its old run is checked without waiting.
    const second = await a.dial(b.getMultiaddrs(), { force: true })
    await vi.waitFor(() => { expect(pings.count()).toBe(1) })
    await vi.waitFor(() => { expect(first.rtt).toBeTypeOf('number') })
    // Closing the first checks the second; the schedule would not for another tick.
    clock.run(1_000)
    await first.close()
    await vi.waitFor(() => { expect(pings.count()).toBe(2) })
    await vi.waitFor(() => { expect(second.rtt).toBeTypeOf('number') })
  })

  it('probes WebRTC and relayed connections once a minute, relay WebSockets every 5 s', async () => {
    const clock = manualClock()
    const peer = (await node('peer')).peerId
    const opened: string[] = []
    const fake = (id: string, addr: string, limits?: object): Connection => ({
      id,
      status: 'open',
      remotePeer: peer,
      remoteAddr: multiaddr(addr),
      limits,
      newStream: async () => { opened.push(id); throw new Error('unsupported') },
      abort: () => {}
    }) as unknown as Connection
    const relayAddr = '/ip4/198.19.0.1/tcp/4002/ws/p2p/12D3KooWG7xN5Xs8L6hYw7kMRSRBg3h1NpPqe8D7LXvF7jNDQ3hN'
    const conns = [
      fake('ws', relayAddr),
      fake('webrtc', `${relayAddr}/p2p-circuit/webrtc/p2p/${peer.toString()}`),
      fake('relayed', `${relayAddr}/p2p-circuit/p2p/${peer.toString()}`, {})
    ]
    const libp2p = { getConnections: () => conns, addEventListener: () => {}, removeEventListener: () => {} }
    await probing(libp2p as unknown as Libp2p, clock)
    const probedIn = async (ms: number): Promise<string[]> => {
      opened.length = 0
      clock.run(ms)
      await new Promise(resolve => setTimeout(resolve, 0))
      return [...opened].sort()
    }
    expect(await probedIn(5_000)).toEqual(['relayed', 'webrtc', 'ws'])
    for (let t = 10_000; t < PROBE_INTERVAL_MS.webrtc + 5_000; t += 5_000) expect(await probedIn(5_000)).toEqual(['ws'])
    expect(await probedIn(5_000)).toEqual(['relayed', 'webrtc', 'ws'])
  })
})
