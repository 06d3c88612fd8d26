import type { CapabilityName, CapabilityStatusMap, ProfileName } from '../core/capabilities.ts'
import type { HardwareInfo } from '../core/hardware.ts'
import type { IdentityFile } from '../core/identity-envelope.ts'
import type { RelayStatus } from '../net/relay-keeper.ts'
import type { TransportKind } from '../net/transport-kind.ts'
import type { PointsSummary } from '../core/points.ts'
import type { PulseCurrent } from '../net/pulse-service.ts'
import type { RoundSummary } from '../core/pulse/ledger.ts'
import type { TypedEventTarget } from 'main-event'
import type { ChatCompletion, ChatCompletionChunk, NodeChatRequest } from '../core/inference/chat.ts'
import type { CatalogModel, DownloadedModel, PullProgress } from '../core/models/catalog.ts'
import type { ReceiptLogState, ReceiptSummary } from './receipt-book.ts'
import type { ServingState } from '../core/wire/announcement.ts'
import type { ModelListing } from '../core/inference/listing.ts'
import type { CheckedPoints, PointsCheck, UncheckedPoints, UncheckedReason } from '../core/points-proof/check.ts'
import type { PeerPointsEntry } from './peer-points.ts'
import type { ProxyHostLists } from '../core/proxy/host-list.ts'
import type { ServedFetch } from '../net/proxy-service.ts'
import type { TasksApi } from './tasks-api.ts'
import type { BlockProgress, ByteProgress, LongCallOptions } from '../core/progress.ts'

export type { CheckedPoints, PeerPointsEntry, PointsCheck, UncheckedPoints, UncheckedReason }
export type { ProxyHostLists, ServedFetch }
export type { ModelListing }
export type { BlockProgress, ByteProgress, LongCallOptions }
export type { ChatTaskInput, ShardRun, TaskProgress, TaskRequest, TaskResult, TaskRunOptions, TasksApi } from './tasks-api.ts'
export type { PointsSummary, PulseCurrent, ReceiptLogState, ReceiptSummary, RelayStatus, RoundSummary, TransportKind }

/**
 * starting: libp2p is coming up; connecting: no relay or peer yet; online: reachable through at
 * least one relay reservation or connected to a peer; offline: the browser reports no network.
 */
export type ConnectionState = 'starting' | 'connecting' | 'online' | 'offline' | 'stopped'

export interface NodeStatus {
  peerId: string
  networkId: string
  state: ConnectionState
  online: boolean
  relays: RelayStatus[]
  /** Number of connected peers (relays included). */
  peers: number
  profile: ProfileName
  capabilities: CapabilityStatusMap
  hardware: HardwareInfo
  warnings: string[]
  startedAt: number
  /** The chat models this node serves to the network and its jobs running or waiting; null when it serves none. */
  serving: ServingState | null
  /** How peers find the chat models this node serves (setModelListing). */
  modelListing: ModelListing
  /** Served models the relays accepted a DHT provider record of this node for. */
  modelsInDht: string[]
  /** The last round in which another node committed with this node's identity (it runs twice). */
  identityConflictRound?: number
}

export interface PeerInfo {
  peerId: string
  transport: TransportKind
  /** Round-trip time measured by libp2p ping, null until the first ping returns. */
  latencyMs: number | null
  /** What the peer announced as enabled; empty until its first announcement. */
  capabilities: CapabilityName[]
  /** The announced capabilities that actually work on that peer now. */
  working: CapabilityName[]
  profile?: ProfileName
  relay: boolean
  connectedAt: number
  remoteAddr: string
}

export interface NodeEvents {
  /** Anything in status() changed. */
  status: CustomEvent<NodeStatus>
  /** The peer list or a peer's latency/capabilities changed. */
  peers: CustomEvent<PeerInfo[]>
  /** The pulse moved on: a phase, a commit, a verdict. */
  pulse: CustomEvent<PulseCurrent>
  /** A model download or load moved on, or the set of downloaded/loaded models changed. */
  models: CustomEvent<ModelsState>
  /** A receipt was added to this node's log. */
  receipts: CustomEvent<ReceiptLogState>
  /** A check of a peer's points started or ended. */
  'peer-points': CustomEvent<PeerPointsEntry[]>
  /** A fetch made for a peer ended: the newest first, as proxy.served() lists them. */
  proxy: CustomEvent<ServedFetch[]>
}

export interface PointsOfOptions {
  /** The period in rounds; by default the last day of finished rounds (at most 1,024). */
  from?: number
  to?: number
  signal?: AbortSignal
}

/** `points()` is this node's own; `points.of(peerId)` checks another's from its signed proof. */
export interface PointsApi {
  (): PointsSummary
  /**
   * Asks the peer for the signed commits, attestations and receipts behind its points over the
   * period (`/hyperspace/points/1.0.0`), checks a random sample of them and recomputes the points:
   * `{ checked: true, points, ... }`, or `{ checked: false, reason }` saying why they did not check.
   */
  of(peerId: string, options?: PointsOfOptions): Promise<PointsCheck>
  /** The latest check of each peer (connected peers are checked every 5 minutes, and on demand). */
  checked(): PeerPointsEntry[]
}

export interface ReceiptsApi {
  /** The newest n receipts this node holds (as server or client; at most the newest 1,000), newest first. */
  recent(n: number): ReceiptSummary[]
  /** How many entries the hash-chained log holds and whether it verified when loaded. */
  state(): ReceiptLogState
}

export interface ModelsState {
  /** Pulls in progress, by model id. */
  pulls: Record<string, PullProgress>
  /** Models loaded in an engine and served to the network. */
  loaded: string[]
}

/** The same verbs as `hyperspace models pull --auto / downloaded / delete`. */
export interface ModelsApi {
  /** Every model this node knows, with whether it fits this device. */
  catalog(): Promise<CatalogModel[]>
  /**
   * Downloads (when not cached), loads and starts serving a model; `'auto'` picks the largest chat
   * model that fits this device. Resolves with the model id.
   */
  pull(id: string, options?: { onProgress?: (progress: PullProgress) => void, signal?: AbortSignal }): Promise<string>
  downloaded(): Promise<DownloadedModel[]>
  /** Stops serving the model and deletes its cached files. */
  delete(id: string): Promise<void>
  state(): ModelsState
}

export interface ChatCompletionsApi {
  create(request: NodeChatRequest & { stream: true }, options?: { signal?: AbortSignal }): Promise<AsyncIterable<ChatCompletionChunk>>
  create(request: NodeChatRequest & { stream?: false }, options?: { signal?: AbortSignal }): Promise<ChatCompletion>
}

export interface PulseApi {
  /** This round, or null while the node is not running. */
  current(): PulseCurrent | null
  /** The newest n of this node's rounds, newest first. */
  history(n: number): RoundSummary[]
}

export interface IdentityApi {
  /** The sealed key, with the identity's signed history on this network (rounds and served receipts a points proof shows). */
  export(passphrase: string): Promise<IdentityFile>
  /**
   * Decrypts and checks a file without storing it: what the UI shows before asking to replace. A
   * history that does not check against the file's key is an IdentityHistoryError.
   */
  inspect(file: string | Blob | IdentityFile, passphrase: string): Promise<{ peerId: string, current: string }>
  /**
   * Stores the identity and the history it carries, once every piece of it checks against the key
   * (else IdentityHistoryError, and nothing is stored); history already on this device is kept. A
   * different existing identity is only replaced with `replace: true`. The node restarts with it and
   * the new peer id is returned.
   */
  import(file: string | Blob | IdentityFile, passphrase: string, options?: { replace?: boolean }): Promise<string>
}

export interface EmbedOptions {
  /** The embedding model; by default the node's own (the deployment's first local embedding model, else all-MiniLM-L6-v2). */
  model?: string
  /** auto: on this device when its embedding capability is on and its model loads, else a peer; local / network force one. */
  route?: 'auto' | 'local' | 'network'
  signal?: AbortSignal
}

export interface EmbedResult {
  model: string
  dims: number
  /** One vector per text, in order. */
  vectors: number[][]
  /** The peer id that computed the vectors (this node's own when local). */
  servedBy: string
  route: 'local' | 'network'
  /** The job id of the countersigned receipt (hex), when a peer served the request. */
  receipt?: string
}

/** What memory.put and memory.query take: a text (embedded with the node's embedding model) or a vector. */
export type MemoryInput = string | readonly number[] | Float32Array

export interface MemoryOptions {
  /** The vector space; a text's is its embedding model, a vector's defaults to `raw-<dims>`. */
  space?: string
  signal?: AbortSignal
}

export interface MemoryPutResult {
  key: string
  space: string
  /** The peers that stored the vector (this node's id when it is one), closest to the key first. */
  holders: string[]
  stored: number
  /** Holders that refused or did not answer; the next closest peer was tried instead. */
  failed: Array<{ holder: string, error: string }>
}

export interface MemoryQueryHit {
  key: string
  /** The peer that signed the put; its signature was checked. Two owners' same key are two hits. */
  owner: string
  /** Cosine similarity to the query, computed by this node. */
  score: number
  /** The meta given to put (JSON), undefined when none was. */
  meta: unknown
  /** The peers that returned this key. */
  holders: string[]
}

export interface MemoryQueryResult {
  space: string
  hits: MemoryQueryHit[]
  /** Memory peers asked (this node included when it holds memory) and how many answered, sending only hits their owners signed. */
  asked: number
  answered: number
}

export interface MemoryApi {
  /** Stores the vector of `input` on the R (default 3) memory peers closest to SHA-256(key); meta is any JSON of at most 1 KiB. */
  put(key: string, input: MemoryInput, meta?: unknown, options?: MemoryOptions): Promise<MemoryPutResult>
  /** The k (default 10, at most 100) stored vectors most similar to `input`, asked of every memory peer. */
  query(input: MemoryInput, k?: number, options?: MemoryOptions): Promise<MemoryQueryResult>
  /** Vectors this node holds for the network. */
  held(): number
}

export interface BlockStats {
  /** Blocks stored on this node (chunks and manifests each count). */
  count: number
  bytes: number
  /** This node's share of the browser's storage quota for blocks. */
  quotaBytes: number
}

/** Content-addressed storage (`/hyperspace/blocks/1.0.0`): CIDv1, raw codec, sha2-256. */
export interface BlocksApi {
  /**
   * Stores the content here and announces it in the DHT; more than 1 MiB becomes chunks plus a
   * manifest, whose CID is returned. Progress: 'hashing', then 'storing'; a cancelled put stores nothing.
   */
  put(bytes: Uint8Array | Blob, options?: LongCallOptions<BlockProgress>): Promise<string>
  /**
   * The content, from this node or fetched from providers with every block's hash verified (then
   * kept and provided here too). Progress: 'fetching', in bytes of the content.
   */
  get(cid: string, options?: LongCallOptions<BlockProgress>): Promise<Uint8Array>
  /** Peer ids that provide the CID: the DHT's providers, and this node when it holds it. */
  providers(cid: string, options?: { signal?: AbortSignal }): Promise<string[]>
  stats(): Promise<BlockStats>
}

export interface ProxyFetchOptions {
  /** network (default): a peer whose proxy works, failing over to the next; local: this node fetches itself, under the same rules. */
  route?: 'network' | 'local'
  /** Only this peer, when it proxies. */
  peer?: string
  /** GET (default) or HEAD. */
  method?: 'GET' | 'HEAD'
  /** The most body bytes to take, at most 1 MiB (the default). */
  maxBytes?: number
  signal?: AbortSignal
}

export interface ProxyResult {
  /** The target's HTTP status (200–599; redirects are refused, not followed). */
  status: number
  /** The response headers the proxy could read (CORS-safelisted and exposed ones), names in lower case. */
  headers: Record<string, string>
  /** The body, at most `maxBytes`; empty for HEAD. */
  body: Uint8Array
  /** The peer that fetched it (this node's id when local). */
  servedBy: string
  route: 'local' | 'network'
  /** The job id of the countersigned proxy receipt (hex), when a peer fetched it and countersigned. */
  receipt?: string
}

/** Fetches for agents through peers (`/hyperspace/proxy/1.0.0`), and this node's own proxy's record and host lists. */
export interface ProxyApi {
  /** Fetches an https URL through a proxy peer: no credentials, no redirects, only what CORS lets a page read. */
  fetch(url: string, options?: ProxyFetchOptions): Promise<ProxyResult>
  /** What this node fetched for peers, newest first (at most 100). */
  served(): ServedFetch[]
  /** The hosts this node's proxy fetches: deny always wins; a non-empty allow list admits only its hosts. */
  hosts(): ProxyHostLists
  /** Replaces the lists (kept in settings); entries are hosts, `*.domain` or IP literals. */
  setHosts(lists: { allow?: string[], deny?: string[] }): Promise<ProxyHostLists>
}

/** The node as a typed object: what the UI, DevTools (`window.hyperspace`) and the tests drive. */
export interface NodeApi extends TypedEventTarget<NodeEvents> {
  status(): NodeStatus
  peers(): PeerInfo[]
  setProfile(profile: ProfileName): Promise<void>
  setCapability(name: CapabilityName, enabled: boolean): Promise<void>
  /** Announced, unlisted or on request: which routing tiers can find the chat models this node serves. */
  setModelListing(listing: ModelListing): Promise<void>
  identity: IdentityApi
  pulse: PulseApi
  models: ModelsApi
  chat: { completions: ChatCompletionsApi }
  receipts: ReceiptsApi
  /** Embeds up to 64 texts of at most 8 KiB each (EMBED_LIMITS), here or on a peer. */
  embed(texts: string[], options?: EmbedOptions): Promise<EmbedResult>
  /** The replicated vector memory (`/hyperspace/memory/1.0.0`). */
  memory: MemoryApi
  /** Content-addressed blocks stored here and fetched from peers. */
  blocks: BlocksApi
  /** Points from this node's attested rounds (presence) and countersigned receipts (work); `.of(peerId)` checks a peer's. */
  points: PointsApi
  /** Fetches through proxy peers; what this node's proxy served. */
  proxy: ProxyApi
  /** Batch jobs (many texts to embed, many prompts) split into shards over the peers that serve them. */
  tasks: TasksApi
  stop(): Promise<void>
}
