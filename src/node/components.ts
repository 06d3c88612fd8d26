import type { NodeConfig } from '../core/config.ts'
import type { HardwareInfo } from '../core/hardware.ts'
import type { LeafRecomputer } from '../core/pulse/recompute.ts'
import type { Prover } from '../core/pulse/reference-prover.ts'
import type { Scheduler } from '../core/scheduler.ts'
import type { HyperspaceLibp2p } from '../net/browser-libp2p.ts'
import type { BlockStore } from '../storage/block-store.ts'
import type { IdentityStore } from '../storage/identity-store.ts'
import type { PeerCacheStore } from '../storage/peer-cache-store.ts'
import type { PulseStore } from '../storage/pulse-store.ts'
import type { SettingsStore } from '../storage/settings-store.ts'
import type { VectorStore } from '../storage/vector-store.ts'
import type { Embedder } from './embedder.ts'
import type { ProxyFetcher } from '../core/proxy/fetcher.ts'
import type { ModelHost } from './model-host.ts'
import type { ReceiptLogStore } from './receipt-book.ts'
import type { PeerId, PrivateKey } from '@libp2p/interface'

export interface JobStores {
  /** The content-addressed blocks this node stores, opened with its quota. */
  blockStore: BlockStore
  /** The vectors this node holds for the replicated memory. */
  memoryStore: VectorStore
  /** How the proxy capability reaches the web (the page's fetch, no credentials). */
  proxyFetcher: ProxyFetcher
}

/** Everything the node needs, passed in so tests and other hosts can supply their own. */
export interface NodeComponents {
  config: NodeConfig
  hardware: HardwareInfo
  identityStore: IdentityStore
  peerCache: PeerCacheStore
  settingsStore: SettingsStore
  scheduler: Scheduler
  /** `banned` is asked by the connection gater: a peer it names may not connect or be dialled. */
  createLibp2p: (key: PrivateKey, config: NodeConfig, banned: (peerId: PeerId) => boolean) => Promise<HyperspaceLibp2p>
  /** The pulse worker: proves this node's rounds and recomputes the rows it checks as a validator. */
  prover: Prover & LeafRecomputer
  pulseStore: PulseStore
  /** The models on this device and the engines that run them. */
  models: ModelHost
  /** The embedding capability's engine; it loads its model only once the capability is on. */
  embedder: Embedder
  receiptStore: ReceiptLogStore
  /** What only the job coordinators use, made when they load (the same each time: a new session reuses them). */
  jobStores: () => Promise<JobStores>
  /** Whether the browser reports a network; the node listens for changes on `connectivity`. */
  isBrowserOnline: () => boolean
  /** `online` (also when the network changes) and `offline` events: see src/node/connectivity.ts. */
  connectivity: EventTarget
}
