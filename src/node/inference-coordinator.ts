import { admitPeerJob } from '../net/stream-helpers.ts'
import { jobServiceBase, type LocalJobOptions, type ReceiptedJobContext, type ServeLimits, type ServingBase } from './job-context.ts'
import { peerIdFromString } from '@libp2p/peer-id'
import { AsyncQueue } from '../core/async-queue.ts'
import { hasUnlimitedConnection, retryLostStream } from '../net/job-streams.ts'
import { HyperspaceError, InvalidRequestError, NoProviderError, StreamBudgetError, StreamDivergedError, errorMessage } from '../core/errors.ts'
import type { JobQueue, JobRequestOptions } from '../core/jobs/admission.ts'
import { cacheKey, CompletionCache } from '../core/inference/cache.ts'
import { DeliveredStream } from '../core/inference/delivered-stream.ts'
import { validateChatRequest, type ValidChatRequest } from '../core/inference/request.ts'
import { missesOn, rankProviders, routeWithFailover, type Provider, type Tier } from '../core/jobs/routing.ts'
import { providedInDht, type ModelListing } from '../core/inference/listing.ts'
import { ModelNotLoadedError } from '../core/models/errors.ts'
import { toHex } from '../core/crypto/bytes.ts'
import { InferenceBroadcast } from '../net/inference-broadcast.ts'
import { InferenceService, type LocalRun } from '../net/inference-service.ts'
import { ModelProviders } from '../net/model-providers.ts'
import type { ServingState } from '../core/wire/announcement.ts'
import type { ChatCompletion, ChatCompletionChunk, ChatRoute, EngineCompletion, NodeChatRequest, ServedInfo } from '../core/inference/chat.ts'
import type { CapabilityGossip } from '../net/capability-gossip.ts'
import type { Availability } from '../core/capabilities.ts'
import type { HyperspaceServices } from '../net/services.ts'
import type { ModelHost } from './model-host.ts'
import type { Libp2p, PeerId } from '@libp2p/interface'
import type { CancelOptions } from '../core/progress.ts'

/** How long after the last answer served from the cache the caching capability counts as working. */
const CACHE_WORKING_MS = 60 * 60_000

export interface InferenceCoordinatorOptions extends ReceiptedJobContext {
  networkId: string
  models: ModelHost
  gossip: CapabilityGossip
  /** The inference capability is on: this node serves its loaded models. */
  serving: () => boolean
  /** How peers find the served models: whether they are provided in the DHT. */
  listing: () => ModelListing
  /** A served model's DHT provider record was accepted (modelsInDht changed). */
  onDhtRecord?: () => void
  /** The caching capability is on. */
  caching: () => boolean
  /** A peer broke a protocol rule. */
  onInvalid: (peerId: PeerId, reason: string) => void
}

/** Jobs this node runs at once for the network, how many more may wait, and each peer's rate (60 a minute, 30 at once). */
const SERVE: ServeLimits = { slots: 1, waiting: 4, perMinute: 60, burst: 30 }
/** Peers tried for one request before giving up. */
const MAX_ATTEMPTS = 4

type Delivery = (text: string) => void

function usageOf (c: EngineCompletion): ChatCompletion['usage'] {
  return { prompt_tokens: c.promptTokens, completion_tokens: c.completionTokens, total_tokens: c.promptTokens + c.completionTokens }
}

/**
 * Chat completions for this node's users and for the network: runs a request here (cache first),
 * or routes it through the three tiers to a peer, failing over; serves peers' requests; hands the
 * receipts of both to the node's ReceiptKeeper.
 */
export class InferenceCoordinator {
  readonly queue: JobQueue
  /** Admits peers' jobs: those on the inference stream, and a peer's task's prompts run here. */
  private readonly admission: ServingBase
  private readonly cache = new CompletionCache()
  /** When this node last answered a peer's job from its cache: what the caching capability's bonus rests on. */
  private lastServedFromCache = -Infinity
  private readonly service: InferenceService
  private readonly broadcast: InferenceBroadcast
  private readonly providers: ModelProviders

  constructor (private readonly libp2p: Libp2p<HyperspaceServices>, private readonly o: InferenceCoordinatorOptions) {
    const base = jobServiceBase(o, SERVE)
    this.admission = base
    this.queue = base.queue
    this.service = new InferenceService(libp2p, {
      ...base,
      serves: model => this.servedModels().includes(model),
      run: async (request, onDelta, signal) => {
        const run = await this.runLocal(request, onDelta, signal)
        if (run.cached) this.lastServedFromCache = o.scheduler.now()
        return run
      },
    })
    this.broadcast = new InferenceBroadcast(libp2p, o.scheduler, o.networkId, () => {
      const serving = this.servingState()
      return serving === undefined ? undefined : { ...serving, room: this.queue.length < SERVE.slots + SERVE.waiting }
    }, o.established)
    this.providers = new ModelProviders(libp2p, o.networkId, o.onDhtRecord)
    this.broadcast.addEventListener('invalid', evt => { o.onInvalid(evt.detail.peerId, evt.detail.error.message) })
  }

  async start (): Promise<void> {
    await this.service.start()
    await this.broadcast.start()
    this.o.models.addEventListener('change', this.onModelsChange)
    this.onModelsChange()
  }

  async stop (): Promise<void> {
    this.o.models.removeEventListener('change', this.onModelsChange)
    await this.broadcast.stop()
    await this.service.stop()
  }

  /** What this node tells the network it serves, or nothing when it serves nothing. */
  servingState (): ServingState | undefined {
    const models = this.servedModels()
    return models.length === 0 ? undefined : { models, queue: this.queue.length, slots: SERVE.slots }
  }

  /** The relays came back: the DHT records may be gone with them. */
  reprovide (): void {
    this.providers.reprovide()
  }

  /** Provides in the DHT the models served now when the listing allows it, and stops providing the rest. */
  relist (): void {
    const served = providedInDht(this.o.listing()) ? this.servedModels() : []
    const provided = this.providers.models()
    for (const model of provided) if (!served.includes(model)) this.providers.forget(model)
    for (const model of served) if (!provided.includes(model)) this.providers.provide(model)
  }

  /** Served models the relays accepted a DHT provider record of this node for. */
  modelsInDht (): string[] {
    return this.providers.inDht()
  }

  async create (input: NodeChatRequest, { signal }: CancelOptions = {}): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>> {
    const request = validateChatRequest(input)
    const route = input.route ?? 'auto'
    if (!['auto', 'local', 'network'].includes(route)) throw new InvalidRequestError('route must be auto, local or network')
    const id = `chatcmpl-${toHex(crypto.getRandomValues(new Uint8Array(12)))}`
    const created = Math.floor(Date.now() / 1000)
    if (input.stream !== true) {
      const { completion, served } = await this.complete(request, route, () => {}, signal)
      return {
        id,
        object: 'chat.completion',
        created,
        model: request.model,
        choices: [{ index: 0, message: { role: 'assistant', content: completion.text }, finish_reason: completion.finishReason }],
        usage: usageOf(completion),
        hyperspace: served
      }
    }
    const stop = new AbortController()
    const streamSignal = signal === undefined ? stop.signal : AbortSignal.any([signal, stop.signal])
    const chunks = new AsyncQueue<ChatCompletionChunk>(() => { stop.abort(new Error('the reader stopped')) })
    const chunk = (delta: ChatCompletionChunk['choices'][0]['delta'], finish: ChatCompletionChunk['choices'][0]['finish_reason']): ChatCompletionChunk =>
      ({ id, object: 'chat.completion.chunk', created, model: request.model, choices: [{ index: 0, delta, finish_reason: finish }] })
    chunks.push(chunk({ role: 'assistant' }, null))
    this.complete(request, route, text => { chunks.push(chunk({ content: text }, null)) }, streamSignal)
      .then(({ completion, served }) => {
        chunks.push({ ...chunk({}, completion.finishReason), hyperspace: served, usage: usageOf(completion) })
        chunks.end()
      }, err => { chunks.end(err) })
    return chunks
  }

  private async complete (request: ValidChatRequest, route: ChatRoute, deliver: Delivery, signal?: AbortSignal): Promise<{ completion: EngineCompletion, served: ServedInfo }> {
    const started = this.o.scheduler.now()
    let firstAt: number | undefined
    const timed: Delivery = text => {
      firstAt ??= this.o.scheduler.now()
      deliver(text)
    }
    const info = (completion: EngineCompletion, rest: Pick<ServedInfo, 'servedBy' | 'route' | 'cached' | 'failedOver'> & Partial<Pick<ServedInfo, 'receipt' | 'tier'>>): ServedInfo => {
      const end = this.o.scheduler.now()
      const ttft = (firstAt ?? end) - started
      const genSeconds = Math.max(end - started - ttft, 1) / 1000
      return { ...rest, timeToFirstTokenMs: ttft, durationMs: end - started, tokensPerSecond: completion.completionTokens / genSeconds }
    }
    const local = this.o.models.state().loaded.includes(request.model)
    if (route === 'local' || (route === 'auto' && local)) {
      if (!local) throw new ModelNotLoadedError(request.model)
      const run = await this.runLocal(request, timed, signal)
      return { completion: run.completion, served: info(run.completion, { servedBy: this.o.signer.peerId, route: 'local', cached: run.cached, failedOver: [] }) }
    }
    const routed = await this.routeToNetwork(request, timed, signal)
    const { completion, cached, receipt } = routed.result
    return { completion, served: info(completion, { servedBy: routed.provider.peerId, route: 'network', tier: routed.provider.source, cached, failedOver: routed.failed, receipt: toHex(receipt.body.job) }) }
  }

  /** Runs a request on this one peer, without routing or failover: a spot-check of its inference (capability-prober.ts). */
  async requestFrom (peerId: string, request: ValidChatRequest, { signal }: CancelOptions = {}): Promise<string> {
    let text = ''
    await this.service.request(peerId, request, delta => { text += delta }, { signal })
    return text
  }

  /** A task's prompt on this one peer (the batch's failover is the orchestrator's), ending with the job's receipt. */
  async completeOn (peerId: string, request: ValidChatRequest, { signal, forStranger }: JobRequestOptions = {}): Promise<{ text: string, receipt: string }> {
    let text = ''
    const run = await retryLostStream(this.libp2p, peerId, async () => {
      text = ''
      return await this.service.request(peerId, request, delta => { text += delta }, { signal, ...(forStranger !== undefined ? { forStranger } : {}) })
    }, { signal })
    return { text: run.completion.text !== '' ? run.completion.text : text, receipt: toHex(run.receipt.body.job) }
  }

  /**
   * A task's prompt on this device (cache first), when it holds the model. A peer's task (`forPeer`)
   * takes a place as that peer's inference jobs do: its rate, the queue, established peers first.
   */
  async completeHere (request: ValidChatRequest, { signal, forPeer }: LocalJobOptions = {}): Promise<string> {
    const release = forPeer === undefined ? undefined : await admitPeerJob(this.admission, forPeer, signal)
    try {
      return (await this.runLocal(request, () => {}, signal)).completion.text
    } finally {
      release?.()
    }
  }

  /** Peers that serve `model`, best first, from the first routing tier that knows any. */
  async peersFor (model: string, exclude: ReadonlySet<string>, { signal }: CancelOptions = {}): Promise<string[]> {
    const without = new Set([...exclude, this.o.signer.peerId])
    const tiers: Tier[] = [
      async ex => this.registryProviders(model, ex),
      async ex => await this.providers.find(model, ex, signal),
      async ex => await this.broadcast.ask(model, ex, signal)
    ]
    for (const tier of tiers) {
      const found = rankProviders(await tier(without), without, this.o.established)
      if (found.length > 0) return found.map(p => p.peerId)
    }
    return []
  }

  /**
   * Tries peers in tier order. Streamed text must not repeat or change after a failover: a peer that
   * takes over must regenerate exactly what was already delivered (deterministic requests do), and
   * only the rest is passed on.
   */
  private async routeToNetwork (request: ValidChatRequest, deliver: Delivery, signal?: AbortSignal): ReturnType<typeof routeWithFailover<Awaited<ReturnType<InferenceService['request']>>>> {
    const stream = new DeliveredStream()
    const attempt = async (provider: Provider): ReturnType<InferenceService['request']> => {
      const attemptAbort = new AbortController()
      const attemptSignal = signal === undefined ? attemptAbort.signal : AbortSignal.any([signal, attemptAbort.signal])
      const current = stream.attempt(provider.peerId)
      let diverged: StreamDivergedError | undefined
      const onDelta = (piece: string): void => {
        if (diverged !== undefined) return
        try {
          const fresh = current.push(piece)
          if (fresh !== '') deliver(fresh)
        } catch (err) {
          diverged = err as StreamDivergedError
          attemptAbort.abort(diverged)
        }
      }
      try {
        return await retryLostStream(this.libp2p, provider.peerId, async () => await this.service.request(provider.peerId, request, onDelta, { signal: attemptSignal }), {
          signal: attemptSignal,
          // A second run streams from the start: only safe while this attempt has passed nothing on.
          retryable: () => !current.started()
        })
      } catch (err) {
        // More text than max_tokens allows is no accident: the peer is reported, not only skipped.
        if (err instanceof StreamBudgetError) this.o.onInvalid(peerIdFromString(provider.peerId), err.message)
        throw diverged ?? err
      }
    }
    const self = this.o.signer.peerId
    const tiers: Tier[] = [
      async exclude => this.registryProviders(request.model, new Set([...exclude, self])),
      async exclude => await this.providers.find(request.model, new Set([...exclude, self]), signal),
      async exclude => await this.broadcast.ask(request.model, new Set([...exclude, self]), signal)
    ]
    try {
      return await routeWithFailover(tiers, attempt, {
        model: request.model,
        maxAttempts: MAX_ATTEMPTS,
        miss: missesOn(['ERR_PEER_BUSY', 'ERR_MODEL_NOT_SERVED']),
        established: this.o.established,
        ...(signal !== undefined ? { signal } : {}),
        isFinal: err => err instanceof StreamDivergedError
      })
    } catch (err) {
      // The caller stopped: it gets its own reason back (an AbortError by default), as from fetch().
      if (signal?.aborted === true) throw signal.reason
      if (err instanceof NoProviderError || err instanceof HyperspaceError) throw err
      throw new NoProviderError(request.model, [errorMessage(err)])
    }
  }

  private registryProviders (model: string, exclude: ReadonlySet<string>): Provider[] {
    const providers: Provider[] = []
    for (const entry of this.o.gossip.entries()) {
      const serving = entry.announcement.serving
      if (serving === undefined || !serving.models.includes(model) || exclude.has(entry.peerId)) continue
      const rtt = this.libp2p.getConnections().find(c => c.remotePeer.toString() === entry.peerId && c.status === 'open' && c.rtt !== undefined)?.rtt
      providers.push({ peerId: entry.peerId, source: 'registry', latencyMs: rtt ?? null, queue: serving.queue, slots: serving.slots, connected: hasUnlimitedConnection(this.libp2p, entry.peerId) })
    }
    return providers
  }

  /** A job on this device: answered from the cache when the request is deterministic and was seen before. */
  private async runLocal (request: ValidChatRequest, onDelta: Delivery, signal?: AbortSignal): Promise<LocalRun> {
    const key = this.o.caching() ? cacheKey(request) : undefined
    const hit = key === undefined ? undefined : this.cache.get(key)
    if (hit !== undefined) {
      if (hit.text !== '') onDelta(hit.text)
      return { completion: hit, cached: true }
    }
    const completion = await this.o.models.complete(request, { onDelta, ...(signal !== undefined ? { signal } : {}) })
    if (key !== undefined && completion.finishReason !== 'abort') this.cache.set(key, completion)
    return { completion, cached: false }
  }

  /**
   * Caching earns its bonus only while it saves work for others: it works when this node answered a
   * peer's job from its cache within the last CACHE_WORKING_MS (its own requests do not count).
   */
  cachingAvailability (): Availability {
    // Not servedModels(): whether this node serves asks the capabilities, which ask this.
    if (this.o.models.state().loaded.length === 0) return { available: false, reason: 'no chat model is loaded, so there is nothing to cache' }
    if (this.o.scheduler.now() - this.lastServedFromCache <= CACHE_WORKING_MS) return { available: true }
    return { available: false, reason: 'no peer was answered from the cache in the last hour' }
  }

  private servedModels (): string[] {
    return this.o.serving() ? this.o.models.state().loaded : []
  }

  private readonly onModelsChange = (): void => {
    this.relist()
  }
}
