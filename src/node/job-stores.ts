import { BlockStore, blockQuotaFrom } from '../storage/block-store.ts'
import { VectorStore } from '../storage/vector-store.ts'
import { FetchProxyFetcher } from './proxy-fetcher.ts'
import type { JobStores } from './components.ts'
import type { HyperspaceDb } from '../storage/database.ts'

/** The browser's stores for the job coordinators; imported with them, not at page load (see boot.ts). */
export function openJobStores (db: HyperspaceDb, storageQuotaBytes: number | undefined): JobStores {
  return {
    blockStore: new BlockStore(db, blockQuotaFrom(storageQuotaBytes)),
    memoryStore: new VectorStore(db),
    proxyFetcher: new FetchProxyFetcher()
  }
}
