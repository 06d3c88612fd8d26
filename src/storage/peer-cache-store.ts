import { prunePeers, recordSighting, type CachedPeer } from '../core/peer-cache.ts'
import type { HyperspaceDb } from './database.ts'

/** Recently seen peers with their addresses, redialled first when the node starts. */
export class PeerCacheStore {
  constructor (private readonly db: HyperspaceDb) {}

  async recent (now = Date.now()): Promise<CachedPeer[]> {
    return prunePeers(await this.db.getAll('peers'), now)
  }

  async record (seen: CachedPeer, now = Date.now()): Promise<void> {
    const tx = this.db.transaction('peers', 'readwrite')
    const kept = recordSighting(await tx.store.getAll(), seen, now)
    const keptIds = new Set(kept.map(p => p.peerId))
    for (const key of await tx.store.getAllKeys()) {
      if (!keptIds.has(key)) await tx.store.delete(key)
    }
    for (const peer of kept) await tx.store.put(peer)
    await tx.done
  }
}
