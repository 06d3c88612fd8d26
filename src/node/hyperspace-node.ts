import { coalesced } from './coalesced.ts'
import { TypedEventEmitter } from 'main-event'
import { capabilityStatuses, enabledCapabilities, pulledModelServing, type CapabilityName, type CapabilityStatusMap, type ProfileName } from '../core/capabilities.ts'
import { InvalidRequestError, NodeNotRunningError } from '../core/errors.ts'
import { DEFAULT_MODEL_LISTING, isModelListing, type ModelListing } from '../core/inference/listing.ts'
import { NO_HOST_LISTS } from '../core/proxy/host-list.ts'
import { browserAvailability, proposeProfile } from '../core/hardware.ts'
import { transportKind } from '../net/transport-kind.ts'
import { identityApi } from './identity-api.ts'
import { listPeers } from './peer-list.ts'
import { proxyApi } from './proxy-api.ts'
import { tasksApi, type TasksApi } from './tasks-api.ts'
import { RECENT_RECEIPTS } from './receipt-book.ts'
import { createSession, type Session } from './session.ts'
import { workingNow } from './working.ts'
import type { BlocksApi, PointsApi, ChatCompletionsApi, ConnectionState, EmbedOptions, EmbedResult, IdentityApi, MemoryApi, ModelsApi, ModelsState, NodeApi, NodeEvents, NodeStatus, PeerInfo, ProxyApi, PulseApi, ReceiptsApi } from './api.ts'
import type { Jobs } from './jobs.ts'
import type { NodeComponents } from './components.ts'
import type { ChatCompletion, ChatCompletionChunk, NodeChatRequest } from '../core/inference/chat.ts'
import type { PointsSummary } from '../core/points.ts'
import type { HyperspaceLibp2p } from '../net/browser-libp2p.ts'
import type { NodeSettings } from '../storage/settings-store.ts'
import type { Connection, PrivateKey } from '@libp2p/interface'

/**
 * What a page does not need to come online (the DHT's code, the embedding model) starts once the node
 * is online or offline, or this long after its session started when it is still connecting.
 */
const DEFERRED_WORK_AT_THE_LATEST_MS = 5_000
/** The embedding model's download and compile take the CPU the first WebRTC dials need: it waits for the first direct peer, or this long. */
const MODEL_AFTER_DEFERRED_MS = 3_000

export class HyperspaceNode extends TypedEventEmitter<NodeEvents> implements NodeApi {
  readonly identity: IdentityApi
  readonly pulse: PulseApi
  readonly models: ModelsApi
  readonly chat: { completions: ChatCompletionsApi }
  readonly receipts: ReceiptsApi
  readonly blocks: BlocksApi
  readonly memory: MemoryApi
  readonly proxy: ProxyApi = proxyApi({
    coordinator: async () => (await this.jobs()).proxy,
    served: () => this.session?.jobs.current?.proxy.list() ?? [],
    hosts: () => this.settings.proxyHosts,
    saveHosts: async proxyHosts => { await this.changeSettings(current => ({ ...current, proxyHosts })) }
  })
  readonly tasks: TasksApi = tasksApi(async () => (await this.jobs()).tasks)
  readonly points: PointsApi = Object.assign((): PointsSummary => this.ownPoints(), {
    of: async (peerId: string, options?: Parameters<PointsApi['of']>[1]) => {
      if (this.session === undefined) throw new NodeNotRunningError()
      return await this.session.peerPoints.of(peerId, options)
    },
    checked: () => this.session?.peerPoints.list() ?? []
  })
  private session?: Session & { stopTimers: () => void }
  private identityConflictRound?: number
  private settings: NodeSettings = { toggles: {} }
  private settingsWrites: Promise<void> = Promise.resolve()
  private readonly availability
  private readonly startedAt = Date.now()
  private cachedPeersDialled = false
  private relayWasConnected = false
  private deferredWorkStarted = false

  private constructor (private readonly components: NodeComponents) {
    super()
    this.availability = browserAvailability(components.hardware)
    this.identity = identityApi(components.identityStore, components.config.networkId, async key => { await this.restart(key) })
    this.pulse = {
      current: () => this.session?.pulse.current() ?? null,
      history: n => this.session?.pulse.ledger.history(Math.max(0, Math.min(n, 10_000))) ?? []
    }
    const models = components.models
    this.models = {
      catalog: async () => await models.catalog(),
      pull: async (id, options) => {
        const pulled = await models.pull(id, options)
        // Only chat models load into the inference engine; an embedding model serves through its own capability.
        if (models.state().loaded.includes(pulled)) await this.serveChatModels()
        return pulled
      },
      downloaded: async () => await models.downloaded(),
      delete: async id => { await models.delete(id) },
      state: () => models.state()
    }
    const create = async (request: NodeChatRequest, options?: { signal?: AbortSignal }): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>> =>
      await (await this.jobs()).inference.create(request, options)
    this.chat = { completions: { create } as ChatCompletionsApi }
    this.receipts = {
      recent: n => this.session?.receipts.recent(Math.max(0, Math.min(n, RECENT_RECEIPTS))) ?? [],
      state: () => this.session?.receipts.state() ?? { entries: 0, broken: null }
    }
    this.blocks = {
      put: async (bytes, options) => await (await this.jobs()).blocks.put(bytes, options),
      get: async (cid, options) => await (await this.jobs()).blocks.get(cid, options),
      providers: async (cid, options) => await (await this.jobs()).blocks.providers(cid, options),
      stats: async () => await (await this.jobs()).blocks.stats()
    }
    this.memory = {
      put: async (key, input, meta, options) => await (await this.jobs()).memory.put(key, input, meta, options),
      query: async (input, k, options) => await (await this.jobs()).memory.query(input, k, options),
      held: () => this.session?.jobs.current?.memory.held() ?? 0
    }
  }

  static async start (components: NodeComponents): Promise<HyperspaceNode> {
    const node = new HyperspaceNode(components)
    node.settings = await components.settingsStore.load()
    await node.bringUp(await components.identityStore.loadOrCreate())
    components.connectivity.addEventListener('online', node.onBrowserOnline)
    components.connectivity.addEventListener('offline', node.queueStatus)
    components.models.addEventListener('change', node.onModelsChange)
    components.models.addEventListener('embedding-model', node.onEmbeddingModelChange)
    // Models served before a reload come back in the background: loading one takes a while.
    components.models.restore().catch(err => { console.warn('hyperspace: could not restore served models', err) })
    return node
  }

  get libp2p (): HyperspaceLibp2p {
    if (this.session === undefined) throw new NodeNotRunningError()
    return this.session.libp2p
  }

  status (): NodeStatus {
    const session = this.session
    const relays = session?.keeper.statuses() ?? []
    return {
      peerId: session?.libp2p.peerId.toString() ?? '',
      networkId: this.components.config.networkId,
      state: this.connectionState(),
      online: this.connectionState() === 'online',
      relays,
      peers: session?.libp2p.getPeers().length ?? 0,
      profile: this.profile(),
      capabilities: this.capabilities(),
      hardware: this.components.hardware,
      warnings: [...this.components.config.warnings],
      startedAt: this.startedAt,
      serving: session?.jobs.current?.inference.servingState() ?? null,
      modelListing: this.listing(),
      modelsInDht: session?.jobs.current?.inference.modelsInDht() ?? [],
      ...(this.identityConflictRound !== undefined ? { identityConflictRound: this.identityConflictRound } : {})
    }
  }

  async embed (texts: string[], options?: EmbedOptions): Promise<EmbedResult> {
    return await (await this.jobs()).embedding.embed(texts, options)
  }

  /** The job coordinators: a call before the node loads them (once online) loads them now and waits (OnDemand.ready). */
  private async jobs (): Promise<Jobs> {
    if (this.session === undefined) throw new NodeNotRunningError()
    return await this.session.jobs.ready()
  }

  private ownPoints (): PointsSummary {
    const session = this.session
    if (session === undefined) return { presence: 0, work: 0, total: 0, today: 0 }
    const now = this.components.scheduler.now()
    const presence = session.pulse.ledger.summary(now)
    const work = session.receipts.work(Date.now())
    return { presence: presence.presence, work: work.work, total: presence.presence + work.work, today: presence.today + work.today }
  }

  peers (): PeerInfo[] {
    const session = this.session
    if (session === undefined) return []
    return listPeers(session.libp2p, id => session.keeper.isRelay(id), id => session.gossip.get(id))
  }

  async setProfile (profile: ProfileName): Promise<void> {
    await this.changeSettings(current => ({ ...current, profile, toggles: {} }))
  }

  async setCapability (name: CapabilityName, enabled: boolean): Promise<void> {
    await this.changeSettings(current => ({ ...current, toggles: { ...current.toggles, [name]: enabled } }))
  }

  async setModelListing (listing: ModelListing): Promise<void> {
    if (!isModelListing(listing)) throw new InvalidRequestError('listing must be announced, unlisted or on-request')
    await this.changeSettings(current => ({ ...current, modelListing: listing }))
  }

  async stop (): Promise<void> {
    this.components.connectivity.removeEventListener('online', this.onBrowserOnline)
    this.components.connectivity.removeEventListener('offline', this.queueStatus)
    this.components.models.removeEventListener('change', this.onModelsChange)
    this.components.models.removeEventListener('embedding-model', this.onEmbeddingModelChange)
    // Another tab may take over and load the same models: this one frees their memory.
    await this.components.models.stop()
    this.components.embedder.close()
    await this.tearDown()
    this.queueStatus()
  }

  /**
   * For page unload: there is no time for a graceful stop, but aborting closes every transport at
   * once, so peers see this node leave now instead of when their connection times out.
   */
  abortConnections (): void {
    for (const conn of this.session?.libp2p.getConnections() ?? []) conn.abort(new Error('the page was closed'))
  }

  /**
   * A pulled chat model is meant to be served: inference is turned on when it is off. The status event
   * that follows says so, and the Models panel tells the user before and after the pull.
   */
  private async serveChatModels (): Promise<void> {
    if (pulledModelServing(this.capabilities().inference).kind === 'turns-inference-on') await this.setCapability('inference', true)
  }

  private profile (): ProfileName {
    return this.components.config.profile ?? this.settings.profile ?? proposeProfile(this.components.hardware)
  }

  private capabilities (): CapabilityStatusMap {
    const enabled = enabledCapabilities(this.profile(), this.availability, this.settings.toggles)
    return capabilityStatuses(enabled, this.availability, workingNow(this.session, this.components.models.state().loaded.length, this.listing()))
  }

  private listing (): ModelListing {
    return this.settings.modelListing ?? DEFAULT_MODEL_LISTING
  }

  private connectionState (): ConnectionState {
    const session = this.session
    if (session === undefined) return 'stopped'
    if (!this.components.isBrowserOnline()) return 'offline'
    if (session.libp2p.status !== 'started') return 'starting'
    const reserved = session.keeper.statuses().some(r => r.reserved)
    const direct = session.libp2p.getConnections().some(c => c.status === 'open' && transportKind(c) === 'webrtc')
    return reserved || direct ? 'online' : 'connecting'
  }

  /**
   * Changes take effect once stored, so what status() shows survives a reload; they run one after
   * another, so two quick toggles cannot each overwrite the other.
   */
  private async changeSettings (change: (current: NodeSettings) => NodeSettings): Promise<void> {
    const applied = this.settingsWrites.then(async () => {
      const next = change(this.settings)
      await this.components.settingsStore.save(next)
      this.settings = next
      this.queueStatus()
      const jobs = this.session?.jobs.current
      jobs?.embedding.sync()
      jobs?.blocks.reprovide()
      jobs?.memory.sync()
      jobs?.proxy.sync()
      jobs?.inference.relist()
      await this.session?.gossip.announce()
    })
    this.settingsWrites = applied.catch(() => {})
    await applied
  }

  private async bringUp (key: PrivateKey): Promise<void> {
    const session = await createSession(this.components, key, {
      profile: () => this.profile(),
      capabilities: () => this.capabilities(),
      modelListing: () => this.listing(),
      changed: this.queueStatus,
      proxyHosts: () => this.settings.proxyHosts ?? NO_HOST_LISTS,
      proxyServed: served => { this.safeDispatchEvent('proxy', { detail: served }) }
    })
    const { libp2p, keeper, dialer, gossip, misbehaviour, pulse, receipts, peerPoints } = session
    peerPoints.addEventListener('change', evt => { this.safeDispatchEvent('peer-points', { detail: evt.detail }) })
    receipts.addEventListener('change', evt => {
      this.safeDispatchEvent('receipts', { detail: evt.detail })
      this.queueStatus()
    })

    keeper.addEventListener('change', this.onRelayChange)
    gossip.addEventListener('announcement', evt => {
      this.queuePeers()
      dialer.considerAnnounced(evt.detail.peerId, evt.detail.announcement.addrs)
      session.jobs.current?.memory.peersChanged()
    })
    gossip.addEventListener('invalid', evt => { misbehaviour.record(evt.detail.peerId, evt.detail.error?.message ?? 'unsigned message') })
    pulse.addEventListener('invalid', evt => { misbehaviour.record(evt.detail.peerId, evt.detail.error.message) })
    pulse.addEventListener('update', evt => { this.safeDispatchEvent('pulse', { detail: evt.detail }) })
    pulse.addEventListener('identity-conflict', evt => {
      this.identityConflictRound = evt.detail.round
      this.queueStatus()
    })
    for (const event of ['connection:open', 'connection:close', 'self:peer:update', 'transport:listening'] as const) {
      libp2p.addEventListener(event, this.queueStatus)
      libp2p.addEventListener(event, this.queuePeers)
    }
    libp2p.addEventListener('connection:open', this.onConnectionOpen)

    await session.lifecycle.start()
    // Latencies change without an event; refresh the peer list on the worker clock.
    const stopTicker = this.components.scheduler.every(2_000, () => { this.queuePeers() })
    const stopDeferredWait = this.components.scheduler.after(DEFERRED_WORK_AT_THE_LATEST_MS, () => { this.startDeferredWork() })
    this.session = { ...session, stopTimers: () => { stopTicker(); stopDeferredWait() } }
    this.queueStatus()
  }

  private async tearDown (): Promise<void> {
    const session = this.session
    if (session === undefined) return
    this.session = undefined
    session.stopTimers()
    await session.lifecycle.stop()
  }

  private async restart (key: PrivateKey): Promise<void> {
    await this.tearDown()
    this.cachedPeersDialled = false
    this.relayWasConnected = false
    this.deferredWorkStarted = false
    await this.bringUp(key)
  }

  /** Peers from earlier visits are redialled as soon as a relay can carry the signalling. */
  private async dialCachedPeers (session: Session): Promise<void> {
    for (const peer of await this.components.peerCache.recent()) session.dialer.considerAnnounced(peer.peerId, peer.addrs, true)
  }

  private readonly onRelayChange = (): void => {
    const session = this.session
    const relayConnected = session?.keeper.statuses().some(r => r.connected) === true
    if (session !== undefined && !this.cachedPeersDialled && relayConnected) {
      this.cachedPeersDialled = true
      void this.dialCachedPeers(session)
    }
    // The relays hold the DHT: served models are announced again whenever one comes (back).
    if (relayConnected && !this.relayWasConnected) {
      session?.jobs.current?.inference.reprovide()
      session?.jobs.current?.blocks.reprovide()
    }
    this.relayWasConnected = relayConnected
    this.queueStatus()
  }

  private readonly onConnectionOpen = (evt: CustomEvent<Connection>): void => {
    const conn = evt.detail
    const session = this.session
    if (session === undefined || transportKind(conn) !== 'webrtc') return
    this.loadEmbeddingModel(session)
    void session.libp2p.peerStore.get(conn.remotePeer).then(peer => this.components.peerCache.record({
      peerId: conn.remotePeer.toString(),
      addrs: peer.addresses.map(a => a.multiaddr.toString()).filter(a => a.includes('/webrtc')),
      lastSeen: Date.now()
    })).catch(err => { console.warn('hyperspace: could not cache peer', conn.remotePeer.toString(), err) })
  }

  private readonly onEmbeddingModelChange = (evt: CustomEvent<{ deleted?: string }>): void => {
    this.session?.jobs.current?.embedding.modelChanged(evt.detail.deleted)
  }

  private readonly onModelsChange = (evt: CustomEvent<ModelsState>): void => {
    this.safeDispatchEvent('models', { detail: evt.detail })
    this.queueStatus()
    this.session?.gossip.announce().catch(err => { console.warn('hyperspace: capability announcement failed', err) })
  }

  private readonly onBrowserOnline = (): void => {
    this.session?.keeper.redialNow()
    this.queueStatus()
  }

  /** Many libp2p events arrive together; the UI gets one update per task. */
  private readonly queueStatus = coalesced(() => {
    const status = this.status()
    this.safeDispatchEvent('status', { detail: status })
    // After the event: what it starts loading is loaded after 'online', not before.
    if (status.state === 'online' || status.state === 'offline') this.startDeferredWork()
  })

  /** See DEFERRED_WORK_AT_THE_LATEST_MS, and docs/internals.md, "Initial JS". */
  private startDeferredWork (): void {
    const session = this.session
    if (session === undefined || this.deferredWorkStarted) return
    this.deferredWorkStarted = true
    session.libp2p.services.dht.load().catch(err => { console.warn('hyperspace: could not start the DHT', err) })
    session.jobs.ready().catch(err => { if (this.session === session) console.warn('hyperspace: could not load the job services', err) })
    this.components.scheduler.after(MODEL_AFTER_DEFERRED_MS, () => { this.loadEmbeddingModel(session) })
    if (session.libp2p.getConnections().some(c => transportKind(c) === 'webrtc')) this.loadEmbeddingModel(session)
  }

  private loadEmbeddingModel (session: Session): void {
    if (this.session === session && this.deferredWorkStarted) session.jobs.ready().then(jobs => { jobs.embedding.sync() }, () => {})
  }

  private readonly queuePeers = coalesced(() => { this.safeDispatchEvent('peers', { detail: this.peers() }) })
}
