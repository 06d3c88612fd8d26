import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { lpStream } from '@libp2p/utils'
import { webSockets } from '@libp2p/websockets'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import { afterEach, describe, expect, it } from 'vitest'
import { dht, dhtSession, honestProviderFound, MemoryMeter, provideAndFind, proto, relayAddr, relayEndOf, relayTestbed, reportFigures } from './adversary.ts'
import { eventually, until } from './waiting.ts'
import { dhtProtocol } from '../../src/core/wire/dht.ts'
import { hyperspaceDHT, MAX_DHT_MESSAGE_BYTES, MAX_DHT_STREAM_BYTES } from '../../src/net/dht.ts'
import { DhtMessageTooLargeError, DhtStreamBudgetError } from '../../src/net/dht-stream-guard.ts'
import { MAX_PROVIDERS_PER_KEY, type Relay } from '../../src/relay/relay.ts'
import { MISBEHAVIOUR_LIMITS } from '../../src/net/misbehaviour.ts'
import type { KadDHT } from '@libp2p/kad-dht'
import type { Stream } from '@libp2p/interface'

const DHT = dhtProtocol('dev')
/**
 * What the attacker declares: under libp2p's 4 MiB stream buffer, so a reader without the guard keeps
 * it all. 3 MiB takes a 4-byte prefix, refused as longer than any length within the bound needs; 1 MiB
 * a 3-byte one, refused for the length it declares.
 */
const DECLARED = 3 * 2 ** 20
const CHUNK = new Uint8Array(64 * 1024)

/** Declares a message of `declared` bytes and sends its body while the stream takes it; the body bytes sent. */
async function sendOversizeMessage (stream: Stream, declared = DECLARED): Promise<number> {
  stream.send(Uint8Array.from(proto.varint(declared)))
  let sent = 0
  while (sent < declared && stream.writeStatus === 'writable') {
    const waitForDrain = !stream.send(CHUNK)
    sent += CHUNK.length
    if (waitForDrain) await stream.onDrain().catch(() => {})
  }
  return sent
}

type DhtNode = Libp2p<{ identify: ReturnType<ReturnType<typeof identify>>, ping: ReturnType<ReturnType<typeof ping>>, dht: KadDHT }>

const base = {
  transports: [webSockets()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  connectionGater: { denyDialMultiaddr: () => false }
}

/** A Node peer running the DHT as a browser does (a client), over WebSockets. */
async function dhtClient (): Promise<DhtNode> {
  return await createLibp2p({
    ...base,
    // kad-dht keeps no provider without an address; this one no peer here dials (a WebSocket dial to a
    // peer stopping at the end of a test fails outside any promise).
    addresses: { announce: ['/ip4/127.0.0.1/udp/9/quic-v1'] },
    services: { identify: identify(), ping: ping(), dht: hyperspaceDHT({ network: 'dev', dev: true, server: false, initialQuerySelfInterval: 0 }) }
  })
}

describe('DHT messages larger than MAX_DHT_MESSAGE_BYTES, against the relay (a DHT server)', () => {
  let relay: Relay
  const testbed = relayTestbed()

  const peer = testbed.peer

  it.each([DECLARED, 2 ** 20])('resets a stream that declares a message of %i bytes before its body is buffered, and keeps serving', async declared => {
    relay = await testbed.startRelay()
    const attacker = await peer()
    const meter = new MemoryMeter()
    const stream = await attacker.dialProtocol(relayAddr(relay), DHT)
    // The relay's end of the stream, to learn why it ended.
    const relayEnd = await relayEndOf(relay, attacker, DHT)

    const sent = await sendOversizeMessage(stream, declared)
    await until(() => stream.status !== 'open', 'the relay to reset the stream')
    await until(() => relayEnd.closedWith() !== undefined, 'the relay\'s end to close')
    const memory = await meter.stop()
    // Stopped at the prefix: what got through is what the sender's window let out before the reset.
    expect(sent).toBeLessThan(declared / 2)
    expect(relayEnd.closedWith()).toBeInstanceOf(DhtMessageTooLargeError)
    // Both ends' garbage included (this process runs both): ~5 MiB here, ~28 MiB when the relay kept the body.
    expect(memory.growthMiB).toBeLessThan(12)
    const served = await honestProviderFound(testbed, relay)
    expect(served).toBe(true)
    reportFigures(`DHT: one message declaring ${declared / 2 ** 20} MiB`, memory, served, `stream reset after ${Math.round(sent / 1024)} KiB of its body was sent`)
  })

  it('cuts off a peer whose DHT streams break the bounds again and again, as it does other invalid senders', async () => {
    relay = await testbed.startRelay()
    const attacker = await peer()
    for (let i = 0; i < MISBEHAVIOUR_LIMITS.strikes; i++) {
      const stream = await attacker.dialProtocol(relayAddr(relay), DHT)
      await sendOversizeMessage(stream)
      await until(() => stream.status !== 'open', 'the relay to reset the stream')
    }
    await until(() => relay.libp2p.getConnections(attacker.peerId).length === 0, 'the relay to hang up on the attacker')
    expect(await honestProviderFound(testbed, relay)).toBe(true)
  })

  it('resets a stream that carries more than MAX_DHT_STREAM_BYTES of requests, each within the bound, its answers unread', async () => {
    relay = await testbed.startRelay()
    const attacker = await peer()
    const meter = new MemoryMeter()
    const stream = await attacker.dialProtocol(relayAddr(relay), DHT)
    const relayEnd = await relayEndOf(relay, attacker, DHT)

    // FIND_NODE requests with 32 KiB keys: each a valid message well within the bound. The relay
    // answers the first ones; the attacker reads none, so the rest waited in the relay's reader until
    // kad-dht's stream timeout (10 s).
    const findNode = Uint8Array.from([...proto.uint(1, dht.FIND_NODE), ...proto.bytes(2, new Uint8Array(32 * 1024))])
    const framed = Uint8Array.from([...proto.varint(findNode.length), ...findNode])
    let sent = 0
    while (sent < 4 * MAX_DHT_STREAM_BYTES && stream.writeStatus === 'writable') {
      const waitForDrain = !stream.send(framed)
      sent += framed.length
      if (waitForDrain) await stream.onDrain().catch(() => {})
    }
    await until(() => relayEnd.closedWith() !== undefined, 'the relay to reset the stream')
    const memory = await meter.stop()
    expect(relayEnd.closedWith()).toBeInstanceOf(DhtStreamBudgetError)
    expect(await honestProviderFound(testbed, relay)).toBe(true)
    reportFigures('DHT: requests within the bound, answers unread', memory, true, `stream reset; ${Math.round(sent / 1024)} KiB written`)
  })

  it('answers a lookup within the bound when every provider of the key has its largest peer record', async () => {
    relay = await testbed.startRelay()
    const key = dht.randomCid()
    // 500 addresses of ~70 bytes each (~35 KB, within the 64 KiB peer record): all of them in every answer made it ~700 KB.
    const addrs = Array.from({ length: 500 }, (_, i) => multiaddr(`/dns4/${'a'.repeat(56)}${i}.example/tcp/4001/tls/ws`))
    // One at a time: the relay takes 8 handshakes at once from one address.
    for (let i = 0; i < MAX_PROVIDERS_PER_KEY; i++) {
      const session = await dhtSession(await peer(), relay)
      await session.provide([key], addrs)
      await session.providers(dht.randomCid())
    }
    const stream = await (await peer()).dialProtocol(relayAddr(relay), DHT)
    const lp = lpStream(stream)
    await lp.write(dht.getProviders(key))
    const answer = (await lp.read()).subarray()
    expect(proto.read(answer).get(9)).toHaveLength(MAX_PROVIDERS_PER_KEY)
    expect(answer.byteLength).toBeLessThanOrEqual(MAX_DHT_MESSAGE_BYTES)
  })

  it('an honest provide and lookup through the relay, by kad-dht clients with the guard on', async () => {
    relay = await testbed.startRelay()
    const [provider, seeker] = [testbed.track(await dhtClient()), testbed.track(await dhtClient())]
    await Promise.all([provider.dial(relayAddr(relay)), seeker.dial(relayAddr(relay))])
    const key = dht.randomCid()
    await provideAndFind(provider, seeker, key)
  })
})

describe('a DHT client against a server that declares a 3 MiB answer', () => {
  const started: Libp2p[] = []
  afterEach(async () => {
    await Promise.all(started.splice(0).map(async node => { await node.stop() }))
  })

  it('aborts the stream at the answer\'s prefix, and the query goes on without that server', async () => {
    const hostile = await createLibp2p({ ...base, addresses: { listen: ['/ip4/127.0.0.1/tcp/0/ws'] }, services: { identify: identify(), ping: ping() } })
    const client = await dhtClient()
    started.push(client, hostile)
    const answers: Array<{ stream: Stream, sent: number }> = []
    await hostile.handle(DHT, async stream => { answers.push({ stream, sent: await sendOversizeMessage(stream) }) })
    await client.dial(hostile.getMultiaddrs())
    // The client's query asks the hostile server once its DHT has the server in its routing table.
    await eventually(async () => {
      let failed = false
      for await (const event of client.services.dht.findProviders(dht.randomCid(), { signal: AbortSignal.timeout(5_000) })) failed ||= event.name === 'QUERY_ERROR'
      return failed
    }, 'the client\'s query to fail at the hostile server')
    await until(() => answers.length > 0, 'the hostile server to stop sending')
    for (const { sent } of answers) expect(sent).toBeLessThan(DECLARED / 4)
    await until(() => answers.every(({ stream }) => stream.status === 'reset'), 'the client to reset the streams')
  })
})
