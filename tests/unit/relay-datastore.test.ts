import { Key } from 'interface-datastore'
import { describe, expect, it } from 'vitest'
import { MAX_PROVIDERS_PER_KEY, RELAY_DEFAULTS } from '../../src/relay/relay.ts'
import { PeerRecordTooLargeError, RelayDatastore } from '../../src/relay/relay-datastore.ts'
import { MemoryMeter } from './adversary.ts'
import { fakePeerId } from './helpers.ts'

const record = (cid: string, peer: number): Key => new Key(`/dht/provider/${cid}/${fakePeerId(peer)}`)
/** kad-dht's varint of a provide time (ms). */
const time = Uint8Array.of(0xd2, 0xb6, 0xa8, 0xd8, 0xe7, 0x32)

async function keys (store: RelayDatastore, prefix: string): Promise<string[]> {
  const out: string[] = []
  for await (const { key } of store.query({ prefix })) out.push(key.toString())
  return out.sort()
}

describe('RelayDatastore', () => {
  it('refuses a peer record larger than its bound, and keeps the one it had', async () => {
    const store = new RelayDatastore({ perPeer: 2, total: 4, perKey: 100, maxPeerRecordBytes: 64 })
    await store.put(new Key('/peers/abc'), new Uint8Array(64))
    expect(() => store.put(new Key('/peers/abc'), new Uint8Array(65))).toThrow(PeerRecordTooLargeError)
    expect(await store.get(new Key('/peers/abc'))).toHaveLength(64)
    await store.put(new Key('/other/abc'), new Uint8Array(65))
  })

  it('keeps other keys as the plain in-memory store does', async () => {
    const store = new RelayDatastore({ perPeer: 2, total: 4, perKey: 100, maxPeerRecordBytes: 64 })
    await store.put(new Key('/peers/abc'), Uint8Array.of(1, 2, 3))
    expect(await store.get(new Key('/peers/abc'))).toEqual(Uint8Array.of(1, 2, 3))
    expect(await store.has(new Key('/peers/abc'))).toBe(true)
    expect(await keys(store, '/peers')).toEqual(['/peers/abc'])
    await store.delete(new Key('/peers/abc'))
    expect(await store.has(new Key('/peers/abc'))).toBe(false)
    expect(() => store.get(new Key('/peers/abc'))).toThrow()
  })

  it('answers kad-dht\'s queries: one CID\'s providers, and all records', async () => {
    const store = new RelayDatastore({ perPeer: 10, total: 100, perKey: 100, maxPeerRecordBytes: 64 })
    await store.put(record('CIDA', 1), time)
    await store.put(record('CIDA', 2), time)
    await store.put(record('CIDB', 1), time)
    await store.put(new Key('/peers/abc'), time)
    expect(await keys(store, '/dht/provider/CIDA')).toEqual([record('CIDA', 1).toString(), record('CIDA', 2).toString()])
    expect(await keys(store, '/dht/provider')).toHaveLength(3)
    expect(await keys(store, '/')).toHaveLength(4)
    expect(await store.get(record('CIDB', 1))).toEqual(time)
    await store.delete(record('CIDA', 1))
    expect(await store.has(record('CIDA', 1))).toBe(false)
    expect(store.providerRecords).toBe(2)
  })

  it('a provider at its bound loses its oldest record; re-announcing a key makes it its newest', async () => {
    const store = new RelayDatastore({ perPeer: 3, total: 100, perKey: 100, maxPeerRecordBytes: 64 })
    for (const cid of ['A', 'B', 'C']) await store.put(record(cid, 1), time)
    await store.put(record('A', 1), time)
    await store.put(record('D', 1), time)
    expect(await keys(store, '/dht/provider')).toEqual(['A', 'C', 'D'].map(c => record(c, 1).toString()))
  })

  it('at the total bound a newcomer displaces the oldest record of the largest provider', async () => {
    const store = new RelayDatastore({ perPeer: 5, total: 6, perKey: 100, maxPeerRecordBytes: 64 })
    for (const cid of ['A', 'B', 'C', 'D']) await store.put(record(cid, 1), time)
    for (const cid of ['E', 'F']) await store.put(record(cid, 2), time)
    await store.put(record('G', 3), time)
    expect(store.providerRecords).toBe(6)
    expect(await store.has(record('A', 1))).toBe(false)
    expect(await store.has(record('G', 3))).toBe(true)
    expect(await store.has(record('E', 2))).toBe(true)
  })

  it('keeps perKey providers of one key: a newcomer displaces the oldest stranger, never an established provider for a stranger', async () => {
    const established = new Set([1, 2, 7, 8].map(fakePeerId))
    const store = new RelayDatastore({ perPeer: 10, total: 100, perKey: 3, maxPeerRecordBytes: 64 }, provider => established.has(provider))
    const providersOfA = async (): Promise<string[]> => await keys(store, '/dht/provider/A')
    const expected = (...peers: number[]): string[] => peers.map(p => record('A', p).toString()).sort()
    let ms = 0
    const provide = async (cid: string, peer: number): Promise<void> => { await store.put(record(cid, peer), Uint8Array.of(++ms)) }
    for (const peer of [1, 3, 4, 5]) await provide('A', peer)
    expect(await providersOfA()).toEqual(expected(1, 4, 5))
    // Established newcomers take strangers' places, the oldest first.
    await provide('A', 2)
    await provide('A', 7)
    expect(await providersOfA()).toEqual(expected(1, 2, 7))
    // With only established providers held, a stranger is not kept; an established newcomer takes the oldest's place.
    await provide('A', 6)
    expect(await providersOfA()).toEqual(expected(1, 2, 7))
    await provide('A', 8)
    expect(await providersOfA()).toEqual(expected(2, 7, 8))
    // Other keys are not affected.
    await provide('B', 6)
    expect(store.providerRecords).toBe(4)
  })

  it('holds its default total bound of records in a stated amount of memory', async () => {
    const meter = new MemoryMeter()
    const store = new RelayDatastore({ perPeer: RELAY_DEFAULTS.maxProvidersPerPeer, total: RELAY_DEFAULTS.maxProviders, perKey: MAX_PROVIDERS_PER_KEY, maxPeerRecordBytes: 64 })
    const cid = (i: number): string => `CIQ${i.toString(32).padStart(52, 'A')}`
    for (let i = 0; i < RELAY_DEFAULTS.maxProviders * 2; i++) await store.put(record(cid(i), i % 64), time)
    const memory = await meter.stop()
    expect(store.providerRecords).toBe(RELAY_DEFAULTS.maxProviders)
    // Measured about 15 MiB; docs/internals.md's budget says 20.
    expect(memory.retainedMiB).toBeLessThan(20)
    console.log(`FIGURES | provider store at its total bound (${RELAY_DEFAULTS.maxProviders} records) | +${memory.retainedMiB.toFixed(1)} MiB retained`)
  })
})
