import { describe, expect, it } from 'vitest'
import { dht, dhtSession, honestProviderFound, MemoryMeter, relayTestbed, reportFigures } from './adversary.ts'
import { multiaddr } from '@multiformats/multiaddr'
import { rejectionOf } from './waiting.ts'
import { MAX_PROVIDERS_PER_KEY, type Relay } from '../../src/relay/relay.ts'

describe('DHT provider spam against the relay (a DHT server)', () => {
  let relay: Relay
  const testbed = relayTestbed()

  const peer = testbed.peer
  /** An honest provider announces one key after the attack, and a third peer finds it. */
  const honestFound = async (): Promise<boolean> => await honestProviderFound(testbed, relay)

  it('keeps a peer\'s newest records up to its bound and forgets its oldest', async () => {
    relay = await testbed.startRelay({ maxProvidersPerPeer: 64, maxProviders: 256 })
    const meter = new MemoryMeter()
    const attacker = await peer()
    const session = await dhtSession(attacker, relay)
    const keys = Array.from({ length: 1000 }, () => dht.randomCid())
    await session.provide(keys)
    const id = attacker.peerId.toString()
    expect(await session.providers(keys[999] ?? dht.randomCid())).toEqual([id])
    expect(await session.providers(keys[0] ?? dht.randomCid())).toEqual([])
    expect(relay.providerRecords()).toBe(64)
    const served = await honestFound()
    expect(served).toBe(true)
    const memory = await meter.stop()
    expect(memory.retainedMiB).toBeLessThan(8)
    reportFigures('DHT: 1,000 provider records from one peer (64 per peer)', memory, served, '64 records kept, the oldest forgotten')
  })

  it('bounds records in all: many identities cannot keep a newcomer out', async () => {
    relay = await testbed.startRelay({ maxProvidersPerPeer: 64, maxProviders: 256 })
    const meter = new MemoryMeter()
    for (let i = 0; i < 10; i++) {
      const session = await dhtSession(await peer(), relay)
      await session.provide(Array.from({ length: 64 }, () => dht.randomCid()))
      await session.providers(dht.randomCid())
    }
    expect(relay.providerRecords()).toBe(256)
    const served = await honestFound()
    expect(served).toBe(true)
    expect(relay.providerRecords()).toBe(256)
    const memory = await meter.stop()
    expect(memory.retainedMiB).toBeLessThan(8)
    reportFigures('DHT: 10 identities x 64 records (256 in all)', memory, served, '256 records kept, a newcomer displaces the largest holder')
  })

  it('bounds what a provider\'s addresses can make its peer-store record grow to', async () => {
    relay = await testbed.startRelay()
    const meter = new MemoryMeter()
    const attacker = await peer()
    const session = await dhtSession(attacker, relay)
    let refusedAt: number | undefined
    for (let batch = 0; batch < 10 && refusedAt === undefined; batch++) {
      const addrs = Array.from({ length: 2000 }, (_, i) => multiaddr(`/ip4/10.${batch}.${i >> 8}.${i & 255}/tcp/${1000 + batch}`))
      const key = dht.randomCid()
      // The answer to a lookup on the same stream says the relay has handled the ADD_PROVIDER; a
      // refused one aborts the stream.
      if (await rejectionOf((async () => { await session.provide([key], addrs); await session.providers(key) })()) !== undefined) refusedAt = batch
    }
    const held = (await relay.libp2p.peerStore.get(attacker.peerId)).addresses.length
    expect(held).toBeLessThanOrEqual(4000)
    const served = await honestFound()
    expect(served).toBe(true)
    expect(refusedAt).toBeDefined()
    const memory = await meter.stop()
    expect(memory.retainedMiB).toBeLessThan(8)
    reportFigures('DHT: ADD_PROVIDERs of 2,000 addresses each', memory, served, `stream refused at message ${(refusedAt ?? 0) + 1}, ${held} addresses kept`)
  })

  it('lists at most MAX_PROVIDERS_PER_KEY providers of one key, established ones kept: fresh keys cannot make its answer megabytes', async () => {
    const established = await peer()
    relay = await testbed.startRelay({ anchors: [established.peerId.toString()] })
    const key = dht.randomCid()
    await (await dhtSession(established, relay)).provide([key])
    // Each fresh key provides the key with a few hundred addresses: every lookup answer used to carry them all.
    const addrs = Array.from({ length: 300 }, (_, i) => multiaddr(`/ip4/10.9.${i >> 8}.${i & 255}/tcp/4001`))
    // One at a time: the relay takes 8 handshakes at once from one address.
    for (let i = 0; i < 2 * MAX_PROVIDERS_PER_KEY; i++) {
      const session = await dhtSession(await peer(), relay)
      await session.provide([key], addrs)
      await session.providers(dht.randomCid())
    }
    const listed = await (await dhtSession(await peer(), relay)).providers(key)
    expect(listed).toHaveLength(MAX_PROVIDERS_PER_KEY)
    expect(listed).toContain(established.peerId.toString())
  })

  it('stores no DHT values, not even a valid public-key record', async () => {
    relay = await testbed.startRelay()
    const session = await dhtSession(await peer(), relay)
    expect(await rejectionOf(session.putOwnKey())).toBeInstanceOf(Error)
  })

  it('holds the memory of its default bound under a flood of 5,000 records', async () => {
    relay = await testbed.startRelay()
    const meter = new MemoryMeter()
    const session = await dhtSession(await peer(), relay)
    const keys = Array.from({ length: 5000 }, () => dht.randomCid())
    for (let i = 0; i < keys.length; i += 500) await session.provide(keys.slice(i, i + 500))
    expect(await session.providers(keys[4999] ?? dht.randomCid())).toHaveLength(1)
    expect(relay.providerRecords()).toBe(1024)
    const served = await honestFound()
    const memory = await meter.stop()
    // Peak includes the attacker's own garbage (this process runs both); what stays is the relay's.
    expect(memory.growthMiB).toBeLessThan(96)
    expect(memory.retainedMiB).toBeLessThan(8)
    reportFigures('DHT: 5,000 provider records from one peer (default 1,024 per peer)', memory, served, '1,024 records kept')
  })
})
