/** Rules for the cache of recently seen peers that a node redials first on its next start. */
export interface CachedPeer {
  peerId: string
  addrs: string[]
  lastSeen: number
}

export const PEER_CACHE_LIMIT = 64
export const PEER_CACHE_TTL_MS = 7 * 24 * 3600_000
const MAX_ADDRS_PER_PEER = 8
const MAX_ADDR_LENGTH = 1024

/** Adds or refreshes a sighting, then keeps the most recent, unexpired peers within the limit. */
export function recordSighting (cache: readonly CachedPeer[], seen: CachedPeer, now: number): CachedPeer[] {
  const addrs = [...new Set(seen.addrs)]
    .filter(a => a.length <= MAX_ADDR_LENGTH)
    .slice(0, MAX_ADDRS_PER_PEER)
  const others = cache.filter(p => p.peerId !== seen.peerId)
  return prunePeers([...others, { peerId: seen.peerId, addrs, lastSeen: seen.lastSeen }], now)
}

export function prunePeers (cache: readonly CachedPeer[], now: number): CachedPeer[] {
  return cache
    .filter(p => now - p.lastSeen <= PEER_CACHE_TTL_MS && p.addrs.length > 0)
    .sort((a, b) => b.lastSeen - a.lastSeen)
    .slice(0, PEER_CACHE_LIMIT)
}
