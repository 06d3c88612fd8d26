import { ping, PING_PROTOCOL } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { ConnectionProbe, PROBE_INTERVAL_MS, PROBE_TIMEOUT_MS } from '../../src/net/connection-probe.ts'
import { connect, memoryLibp2p } from './memory-libp2p.ts'
import { steppedClock } from './stepped-clock.ts'
import type { Scheduler } from '../../src/core/scheduler.ts'
import type { Connection, Libp2p, Stream } from '@libp2p/interface'

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
  /** A probes its connection to B at its first tick, and the probe returns. */
  async function probedOnce (answersPing: boolean): Promise<{ clock: ReturnType<typeof steppedClock>, conn: Connection }> {
    const clock = steppedClock(0, { periodic: true })
    const [a, b] = [await node('a'), await node('b', answersPing)]
    await connect(a, b)
    await probing(a, clock)
    const conn = a.getConnections(b.peerId)[0] as Connection
    expect(conn.rtt).toBeUndefined()
    clock.run(5_000)
    await vi.waitFor(() => { expect(conn.rtt).toBeTypeOf('number') })
    return { clock, conn }
  }

  it('measures the round-trip time of a connection at its first tick', async () => {
    const { conn } = await probedOnce(true)
    expect(conn.status).toBe('open')
  })

  /** A probing its connection to B, which counts the pings it is sent. */
  async function countedPair (silent: boolean): Promise<{ clock: ReturnType<typeof steppedClock>, a: Libp2p, b: Libp2p, pings: { count: () => number } }> {
    const clock = steppedClock(0, { periodic: true })
    const [a, b] = [await node('a'), await node('b')]
    const pings = await countPings(b, silent)
    await connect(a, b)
    await probing(a, clock)
    return { clock, a, b, pings }
  }

  it('cuts a connection whose peer does not answer a probe in time', async () => {
    const { clock, a, b, pings } = await countedPair(true)
    clock.run(5_000)
    await vi.waitFor(() => { expect(pings.count()).toBe(1) })
    expect(a.getConnections(b.peerId)).toHaveLength(1)
    clock.run(PROBE_TIMEOUT_MS)
    await vi.waitFor(() => { expect(a.getConnections(b.peerId)).toHaveLength(0) })
  })

  it('keeps a peer that answers without the ping protocol: multistream-select showed it alive', async () => {
    const { clock, conn } = await probedOnce(false)
    clock.run(PROBE_TIMEOUT_MS)
    expect(conn.status).toBe('open')
  })

  it('probes a peer\'s other connections at once when one of its connections opens or closes', async () => {
    const { clock, a, b, pings } = await countedPair(false)
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

  /**
   * One peer reached three ways, as a browser sees a relay (WebSockets) and a page (WebRTC, and a
   * circuit through the relay): connections that record which of them a probe opened a stream on.
   */
  async function threeWays (): Promise<{ clock: ReturnType<typeof steppedClock>, opened: string[], emit: (type: string, conn: Connection) => void, conns: Connection[] }> {
    const clock = steppedClock(0, { periodic: true })
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
    const listeners = new Map<string, (evt: CustomEvent<Connection>) => void>()
    const libp2p = {
      getConnections: () => conns,
      addEventListener: (type: string, fn: (evt: CustomEvent<Connection>) => void) => { listeners.set(type, fn) },
      removeEventListener: () => {}
    }
    await probing(libp2p as unknown as Libp2p, clock)
    return { clock, opened, conns, emit: (type, conn) => { listeners.get(type)?.(new CustomEvent(type, { detail: conn })) } }
  }

  async function settled (opened: string[]): Promise<string[]> {
    await new Promise(resolve => setTimeout(resolve, 0))
    return opened.splice(0).sort()
  }

  it('probes WebRTC and relayed connections once a minute, relay WebSockets every 5 s', async () => {
    const { clock, opened } = await threeWays()
    const probedIn = async (ms: number): Promise<string[]> => {
      clock.run(ms)
      return await settled(opened)
    }
    expect(await probedIn(5_000)).toEqual(['relayed', 'webrtc', 'ws'])
    for (let t = 10_000; t < PROBE_INTERVAL_MS.webrtc + 5_000; t += 5_000) expect(await probedIn(5_000)).toEqual(['ws'])
    expect(await probedIn(5_000)).toEqual(['relayed', 'webrtc', 'ws'])
  })

  it('leaves relayed connections to their relay when another connection of the peer opens or closes', async () => {
    const { opened, conns, emit } = await threeWays()
    emit('connection:close', conns[0] as Connection)
    expect(await settled(opened)).toEqual(['webrtc'])
  })
})
