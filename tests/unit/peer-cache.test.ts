import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import {
  PEER_CACHE_LIMIT,
  PEER_CACHE_TTL_MS,
  prunePeers,
  recordSighting,
  type CachedPeer
} from '../../src/core/peer-cache.ts'
import { PeerCacheStore } from '../../src/storage/peer-cache-store.ts'
import { closeAll, fakePeerId, openDb } from './helpers.ts'

const NOW = 1_700_000_000_000

function peer (i: number, lastSeen: number, addrs = [`/ip4/10.0.0.${i % 250}/tcp/4002/ws`]): CachedPeer {
  return { peerId: fakePeerId(i), addrs, lastSeen }
}

afterAll(() => { closeAll() })

describe('recordSighting', () => {
  it('adds a new peer', () => {
    expect(recordSighting([], peer(1, NOW), NOW)).toEqual([peer(1, NOW)])
  })

  it('refreshes a known peer: new time and addresses, one entry', () => {
    const cache = [peer(1, NOW - 10_000, ['/ip4/1.1.1.1/tcp/1/ws']), peer(2, NOW - 5000)]
    const result = recordSighting(cache, peer(1, NOW, ['/ip4/2.2.2.2/tcp/2/ws']), NOW)
    expect(result).toEqual([peer(1, NOW, ['/ip4/2.2.2.2/tcp/2/ws']), peer(2, NOW - 5000)])
  })

  it('deduplicates addresses, keeping their first order', () => {
    const result = recordSighting([], peer(1, NOW, ['/a', '/b', '/a', '/c', '/b']), NOW)
    expect(result[0]?.addrs).toEqual(['/a', '/b', '/c'])
  })

  it('keeps at most 8 addresses per peer, counted after deduplication', () => {
    const addrs = Array.from({ length: 12 }, (_, i) => `/ip4/10.0.0.${i}/tcp/1/ws`)
    expect(recordSighting([], peer(1, NOW, addrs), NOW)[0]?.addrs).toEqual(addrs.slice(0, 8))
    const withDuplicates = [addrs[0] ?? '', addrs[0] ?? '', ...addrs.slice(1, 8)]
    expect(recordSighting([], peer(1, NOW, withDuplicates), NOW)[0]?.addrs).toEqual(addrs.slice(0, 8))
  })

  it('drops addresses longer than 1024 characters', () => {
    const long = `/dns4/${'a'.repeat(1100)}/tcp/1/ws`
    expect(recordSighting([], peer(1, NOW, [long, '/ok']), NOW)[0]?.addrs).toEqual(['/ok'])
    expect(recordSighting([], peer(1, NOW, [`/${'a'.repeat(1023)}`]), NOW)[0]?.addrs).toHaveLength(1)
  })

  it('drops a peer with no addresses left', () => {
    expect(recordSighting([], peer(1, NOW, []), NOW)).toEqual([])
    expect(recordSighting([], peer(1, NOW, [`/${'a'.repeat(1024)}`]), NOW)).toEqual([])
    // A sighting without addresses also removes the cached entry for that peer.
    expect(recordSighting([peer(1, NOW - 1)], peer(1, NOW, []), NOW)).toEqual([])
  })

  it('keeps the 64 most recent peers', () => {
    expect(PEER_CACHE_LIMIT).toBe(64)
    const cache = Array.from({ length: 64 }, (_, i) => peer(i, NOW - 1000 + i))
    const result = recordSighting(cache, peer(100, NOW), NOW)
    expect(result).toHaveLength(64)
    expect(result[0]).toEqual(peer(100, NOW))
    // The oldest (i = 0) was evicted; the rest are ordered newest first.
    expect(result.map(p => p.peerId)).toEqual([fakePeerId(100), ...Array.from({ length: 63 }, (_, k) => fakePeerId(63 - k))])
  })

  it('a sighting older than all 64 cached peers is not kept', () => {
    const cache = Array.from({ length: 64 }, (_, i) => peer(i, NOW - 1000 + i))
    const result = recordSighting(cache, peer(100, NOW - 5000), NOW)
    expect(result.map(p => p.peerId)).not.toContain(fakePeerId(100))
    expect(result).toHaveLength(64)
  })

  it('prunes peers not seen for 7 days', () => {
    expect(PEER_CACHE_TTL_MS).toBe(7 * 24 * 3600 * 1000)
    const atLimit = peer(1, NOW - PEER_CACHE_TTL_MS)
    const expired = peer(2, NOW - PEER_CACHE_TTL_MS - 1)
    expect(recordSighting([atLimit, expired], peer(3, NOW), NOW)).toEqual([peer(3, NOW), atLimit])
    expect(prunePeers([expired], NOW)).toEqual([])
  })

  it('property: the result is bounded, unique, fresh, sorted, and keeps a recent sighting with addresses', () => {
    const arbPeer = fc.record({
      peerId: fc.integer({ min: 0, max: 120 }).map(fakePeerId),
      addrs: fc.array(fc.constantFrom('/a', '/b', '/c', '/d', '/e', '/f', '/g', '/h', '/i', '/j'), { maxLength: 12 }),
      lastSeen: fc.integer({ min: NOW - PEER_CACHE_TTL_MS - 1000, max: NOW })
    })
    // A cache that recordSighting produced never holds a peer twice.
    const arbCache = fc.uniqueArray(arbPeer, { maxLength: 100, selector: p => p.peerId })
    fc.assert(fc.property(arbCache, arbPeer, (cache, seen) => {
      const result = recordSighting(cache, seen, NOW)
      expect(result.length).toBeLessThanOrEqual(64)
      expect(new Set(result.map(p => p.peerId)).size).toBe(result.length)
      for (const p of result) {
        expect(p.addrs.length).toBeGreaterThan(0)
        expect(NOW - p.lastSeen).toBeLessThanOrEqual(PEER_CACHE_TTL_MS)
      }
      for (let i = 1; i < result.length; i++) {
        expect((result[i - 1]?.lastSeen ?? 0) >= (result[i]?.lastSeen ?? 0)).toBe(true)
      }
      const newer = cache.filter(p => p.peerId !== seen.peerId && p.addrs.length > 0 && p.lastSeen >= seen.lastSeen).length
      if (seen.addrs.length > 0 && NOW - seen.lastSeen <= PEER_CACHE_TTL_MS && newer < PEER_CACHE_LIMIT) {
        expect(result.find(p => p.peerId === seen.peerId)).toEqual({ ...seen, addrs: [...new Set(seen.addrs)].slice(0, 8) })
      }
    }))
  })
})

describe('PeerCacheStore', () => {
  it('persists sightings across connections to the same database', async () => {
    const db = await openDb()
    await new PeerCacheStore(db).record(peer(1, NOW - 10), NOW)
    await new PeerCacheStore(db).record(peer(2, NOW), NOW)
    const reopened = new PeerCacheStore(await openDb(db.name))
    expect(await reopened.recent(NOW)).toEqual([peer(2, NOW), peer(1, NOW - 10)])
  })

  it('refreshes an entry in place', async () => {
    const db = await openDb()
    const store = new PeerCacheStore(db)
    await store.record(peer(1, NOW - 10, ['/old']), NOW)
    await store.record(peer(1, NOW, ['/new', '/new']), NOW)
    expect(await db.getAll('peers')).toEqual([peer(1, NOW, ['/new'])])
  })

  it('deletes evicted entries beyond 64 from the database', async () => {
    const db = await openDb()
    const store = new PeerCacheStore(db)
    for (let i = 0; i < 64; i++) await store.record(peer(i, NOW - 1000 + i), NOW)
    expect(await db.count('peers')).toBe(64)
    await store.record(peer(100, NOW), NOW)
    expect(await db.count('peers')).toBe(64)
    expect(await db.get('peers', fakePeerId(0))).toBeUndefined()
    expect(await db.get('peers', fakePeerId(1))).toEqual(peer(1, NOW - 999))
    expect(await db.get('peers', fakePeerId(100))).toEqual(peer(100, NOW))
  })

  it('deletes expired entries on the next record, and recent() hides them', async () => {
    const db = await openDb()
    const store = new PeerCacheStore(db)
    await store.record(peer(1, NOW - 1000), NOW - 1000)
    await store.record(peer(2, NOW), NOW)
    const later = NOW - 1000 + PEER_CACHE_TTL_MS + 1
    expect(await store.recent(later)).toEqual([peer(2, NOW)])
    // recent() only reads; the expired row is still there until the next write.
    expect(await db.count('peers')).toBe(2)
    await store.record(peer(3, later), later)
    expect((await db.getAllKeys('peers')).sort()).toEqual([fakePeerId(2), fakePeerId(3)].sort())
  })

  it('deletes a peer whose new sighting has no addresses', async () => {
    const db = await openDb()
    const store = new PeerCacheStore(db)
    await store.record(peer(1, NOW - 1), NOW)
    await store.record(peer(1, NOW, []), NOW)
    expect(await db.count('peers')).toBe(0)
    expect(await store.recent(NOW)).toEqual([])
  })
})
