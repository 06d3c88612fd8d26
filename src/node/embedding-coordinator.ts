import { ServingCoordinator } from './serving-coordinator.ts'
import { jobServiceBase, type LocalJobOptions, type ReceiptedJobContext, type ServeLimits, type ServingBase } from './job-context.ts'
import { admitPeerJob } from '../net/stream-helpers.ts'
import { validateTexts } from '../core/embedding/limits.ts'
import { hasUnlimitedConnection, retryLostStream } from '../net/job-streams.ts'
import { builtInEmbeddingDims, type EmbeddingModelSpec } from '../core/embedding/models.ts'
import { EmbeddingInputError, InvalidRequestError, errorMessage } from '../core/errors.ts'
import { isModelId } from '../core/inference/request.ts'
import { missesOn, rankProviders, routeWithFailover, type Provider } from '../core/jobs/routing.ts'
import { ModelNotLoadedError } from '../core/models/errors.ts'
import { toHex } from '../core/crypto/bytes.ts'
import { EmbedService } from '../net/embed-service.ts'
import type { EmbedOptions, EmbedResult } from './api.ts'
import type { Embedder, EmbedderModel } from './embedder.ts'
import type { Availability } from '../core/capabilities.ts'
import type { CapabilityGossip } from '../net/capability-gossip.ts'
import type { Libp2p } from '@libp2p/interface'
import type { CancelOptions } from '../core/progress.ts'
import type { JobRequestOptions } from '../core/jobs/admission.ts'

export interface EmbeddingCoordinatorOptions extends ReceiptedJobContext {
  embedder: Embedder
  /** The model this node loads: the one pulled, else the deployment's default (ModelHost.embeddingModel). */
  model: () => Promise<EmbeddingModelSpec>
  gossip: CapabilityGossip
  /** The embedding capability is on: this node loads its model and serves peers. */
  enabled: () => boolean
  /** The capability's state changed (loading, loaded, failed): status and announcement follow. */
  onChange: () => void
}

/** Embedding jobs run at once for the network (the worker runs one batch at a time), how many more may wait, and each peer's rate. */
const SERVE: ServeLimits = { slots: 1, waiting: 8, perMinute: 120, burst: 30 }
/** Peers tried for one request before giving up. */
const MAX_ATTEMPTS = 4

/**
 * Embeddings for this node's users and for the network: loads the node's embedding model when the
 * capability is on, embeds here or routes to a peer whose announcement says its embedding works
 * (failing over), serves peers' requests, and hands the receipts of both to the receipt book.
 */
export class EmbeddingCoordinator extends ServingCoordinator<EmbedService> {
  protected readonly service: EmbedService
  private spec?: Promise<EmbeddingModelSpec>
  private loading?: Promise<EmbedderModel>
  private failure?: string

  /** Admits peers' jobs: those on the embed stream, and a peer's task's shards run here. */
  private readonly admission: ServingBase

  constructor (private readonly libp2p: Libp2p, private readonly o: EmbeddingCoordinatorOptions) {
    super()
    this.admission = jobServiceBase(o, SERVE)
    this.service = new EmbedService(libp2p, {
      ...this.admission,
      serves: model => o.enabled() && o.embedder.loaded()?.id === model,
      run: async (texts, signal) => await this.embedHere(texts, signal),
    })
  }

  /**
   * Starts loading the model when the capability is on and nothing is loaded, loading or failed.
   * Starting the coordinator serves peers and loads nothing: the node calls this once it is online.
   */
  sync (): void {
    if (!this.o.enabled() || this.o.embedder.loaded() !== undefined || this.loading !== undefined || this.failure !== undefined) return
    this.load().catch(() => {})
  }

  /**
   * An embedding model was pulled or deleted: a loaded (or loading) model that is no longer the one
   * to serve, or whose files were deleted, is unloaded, and the capability loads the new one when on.
   */
  modelChanged (deleted?: string): void {
    this.spec = undefined
    this.failure = undefined
    this.modelSpec().then(spec => {
      const loaded = this.o.embedder.loaded()?.id
      // A load in flight may be of the old model: it starts again rather than finish it.
      if (this.loading !== undefined || (loaded !== undefined && (loaded !== spec.id || loaded === deleted))) {
        this.loading = undefined
        this.o.embedder.close()
        this.o.onChange()
      }
      this.sync()
    }).catch(() => {})
  }

  /** Working once the model is loaded; otherwise why not. */
  availability (): Availability {
    if (this.o.embedder.loaded() !== undefined) return { available: true }
    if (this.loading !== undefined) return { available: false, reason: 'loading the embedding model' }
    if (this.failure !== undefined) return { available: false, reason: `the embedding model could not be loaded: ${this.failure}` }
    return { available: false, reason: 'no embedding model loaded yet' }
  }

  async embed (input: string[], options: EmbedOptions = {}): Promise<EmbedResult> {
    const texts = validateTexts(input)
    if (texts.length === 0) throw new EmbeddingInputError('no texts to embed')
    const route = options.route ?? 'auto'
    if (!['auto', 'local', 'network'].includes(route)) throw new InvalidRequestError('route must be auto, local or network')
    if (options.model !== undefined && !isModelId(options.model)) throw new InvalidRequestError('model is not a model id')
    const model = options.model ?? (await this.modelSpec()).id
    // A request for the network needs no model here (the gateway has none to find out).
    const local = route === 'network' ? undefined : this.o.embedder.loaded()?.id ?? (await this.modelSpec()).id
    if (route === 'local' || (route === 'auto' && this.o.enabled() && this.failure === undefined && model === local)) {
      if (model !== local) throw new ModelNotLoadedError(model)
      const { dims, vectors } = await this.embedHere(texts, options.signal)
      return { model, dims, vectors: vectors.map(v => Array.from(v)), servedBy: this.o.signer.peerId, route: 'local' }
    }
    const self = this.o.signer.peerId
    const routed = await routeWithFailover([async exclude => this.registryProviders(new Set([...exclude, self]))],
      async provider => await retryLostStream(this.libp2p, provider.peerId, async () => await this.service.request(provider.peerId, model, texts, { signal: options.signal }),
        options.signal !== undefined ? { signal: options.signal } : {}),
      { model, maxAttempts: MAX_ATTEMPTS, miss: missesOn(['ERR_PEER_BUSY', 'ERR_MODEL_NOT_SERVED']), established: this.o.established, ...(options.signal !== undefined ? { signal: options.signal } : {}) })
    const { dims, vectors, receipt } = routed.result
    return { model, dims, vectors: vectors.map(v => Array.from(v)), servedBy: routed.provider.peerId, route: 'network', receipt: toHex(receipt.body.job) }
  }

  /** On this device, loading the model first when it is not loaded yet. */
  private async embedHere (texts: string[], signal?: AbortSignal): Promise<{ dims: number, vectors: Float32Array[] }> {
    const { dims } = this.o.embedder.loaded() ?? await this.load()
    return { dims, vectors: await this.o.embedder.embed(texts, { signal }) }
  }

  /** One load at a time, shared by everyone waiting; a failed load is remembered until the next explicit try. */
  private async load (): Promise<EmbedderModel> {
    if (this.loading === undefined) {
      this.failure = undefined
      const loading = this.modelSpec().then(async spec => await this.o.embedder.load(spec))
      this.loading = loading
      // A load dropped by modelChanged neither clears its successor nor counts as a failure.
      loading.then(() => { if (this.loading === loading) this.loading = undefined }, err => {
        if (this.loading !== loading) return
        this.loading = undefined
        this.failure = errorMessage(err)
        console.warn('hyperspace: embedding model failed to load', this.failure)
      }).finally(() => { this.o.onChange() }).catch(() => {})
      this.o.onChange()
    }
    return await this.loading
  }

  /** The model this node embeds with when none is named: the one pulled, else the deployment's default. */
  async defaultModel (): Promise<string> {
    return (await this.modelSpec()).id
  }

  /** Whether this device embeds `model` for a task's shards now: the capability on, its model that one, no failed load. */
  async servesHere (model: string): Promise<boolean> {
    return this.o.enabled() && this.failure === undefined && (this.o.embedder.loaded()?.id ?? (await this.modelSpec()).id) === model
  }

  /** The length of `model`'s vectors when this node knows it: its own model's, or a built-in one's. */
  async dimsOf (model: string): Promise<number | undefined> {
    const own = await this.modelSpec().catch(() => undefined)
    return own?.id === model ? own.dims : builtInEmbeddingDims(model)
  }

  /**
   * A task's shard on this device (loading the model first when needed). A peer's task (`forPeer`)
   * takes a place as that peer's embed jobs do: its rate, the queue, established peers first.
   */
  async shardHere (texts: string[], { signal, forPeer }: LocalJobOptions = {}): Promise<{ dims: number, vectors: Float32Array[] }> {
    const valid = validateTexts(texts)
    const release = forPeer === undefined ? undefined : await admitPeerJob(this.admission, forPeer, signal)
    try {
      return await this.embedHere(valid, signal)
    } finally {
      release?.()
    }
  }

  /** A task's shard on this one peer (the batch's failover is the orchestrator's), ending with the job's receipt. */
  async shardOn (peerId: string, model: string, texts: string[], { signal, forStranger }: JobRequestOptions = {}): Promise<{ dims: number, vectors: Float32Array[], receipt: string }> {
    const { dims, vectors, receipt } = await retryLostStream(this.libp2p, peerId, async () => await this.service.request(peerId, model, texts, { signal, ...(forStranger !== undefined ? { forStranger } : {}) }), { signal })
    return { dims, vectors, receipt: toHex(receipt.body.job) }
  }

  /** Peers whose announcement says their embedding works, best first. */
  peers (exclude: ReadonlySet<string>): string[] {
    return rankProviders(this.registryProviders(new Set([...exclude, this.o.signer.peerId])), new Set(), this.o.established).map(p => p.peerId)
  }

  /** Embeds on this one peer with this node's model, without routing or failover: a spot-check (capability-prober.ts). */
  async embedOn (peerId: string, texts: string[], { signal }: CancelOptions = {}): Promise<number> {
    return (await this.service.request(peerId, (await this.modelSpec()).id, texts, { signal })).vectors.length
  }

  private async modelSpec (): Promise<EmbeddingModelSpec> {
    this.spec ??= this.o.model()
    const spec = this.spec
    // A model that could not be found out is asked again next time.
    spec.catch(() => { if (this.spec === spec) this.spec = undefined })
    return await spec
  }

  private registryProviders (exclude: ReadonlySet<string>): Provider[] {
    const providers: Provider[] = []
    for (const entry of this.o.gossip.entries()) {
      if (entry.announcement.capabilities.embedding?.working !== true || exclude.has(entry.peerId)) continue
      const rtt = this.libp2p.getConnections().find(c => c.remotePeer.toString() === entry.peerId && c.status === 'open' && c.rtt !== undefined)?.rtt
      providers.push({ peerId: entry.peerId, source: 'registry', latencyMs: rtt ?? null, queue: 0, slots: SERVE.slots, connected: hasUnlimitedConnection(this.libp2p, entry.peerId) })
    }
    return providers
  }
}
