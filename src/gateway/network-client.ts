import { roundMsOf } from '../core/config.ts'
import { EMBED_LIMITS } from '../core/embedding/limits.ts'
import { NoProviderError } from '../core/errors.ts'
import { foundNoServer } from '../core/gateway/errors.ts'
import { ModelSightings } from '../core/gateway/model-sightings.ts'
import { DEFAULT_MODEL_LISTING } from '../core/inference/listing.ts'
import { roundOf } from '../core/pulse/clock.ts'
import { systemScheduler } from '../core/scheduler.ts'
import { CapabilityGossip } from '../net/capability-gossip.ts'
import { JobStreams } from '../net/job-streams.ts'
import { pulseSigner, verifyPulseSignature } from '../net/pulse-keys.ts'
import { ReceiptGossip } from '../net/receipt-gossip.ts'
import { EmbeddingCoordinator } from '../node/embedding-coordinator.ts'
import { InferenceCoordinator } from '../node/inference-coordinator.ts'
import { ReceiptBook, type ReceiptLogStore } from '../node/receipt-book.ts'
import { ReceiptKeeper } from '../node/receipt-keeper.ts'
import { relayAnnouncement } from '../relay/topic-carrier.ts'
import { noEmbedder, NoModels } from './no-engines.ts'
import { embedSharded } from './sharded-embeddings.ts'
import type { ChatCompletion, ChatCompletionChunk, NodeChatRequest } from '../core/inference/chat.ts'
import type { LogEntry } from '../core/receipts/log.ts'
import type { EmbedResult } from '../node/api.ts'
import type { HyperspaceServices } from '../net/services.ts'
import type { Libp2p, PrivateKey } from '@libp2p/interface'

/** What the HTTP side asks of the network; tests give it a fake. */
export interface GatewayBackend {
  chat: (request: NodeChatRequest, signal: AbortSignal) => Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>>
  embed: (model: string, texts: string[], signal: AbortSignal) => Promise<EmbedResult>
  /** Chat models served now, with how many peers serve each. */
  servedModels: () => Map<string, number>
  /** When a peer was first seen serving the model, or undefined for a model never seen served since the gateway started. */
  firstSeen: (model: string) => number | undefined
  /** A request for this model, never seen served, found no server a moment ago. */
  missedRecently: (model: string) => boolean
}

/** The receipt log kept in memory: the gateway is the client of its jobs and earns nothing by them. */
class MemoryReceiptLog implements ReceiptLogStore {
  private readonly entries: LogEntry[] = []
  page = async (_network: string, _peer: string, from: number, limit: number): Promise<LogEntry[]> => this.entries.slice(from, from + limit)
  append = async (_network: string, _peer: string, entry: LogEntry): Promise<void> => { this.entries.push(entry) }
}

/**
 * The gateway's side of the network: the node's own InferenceCoordinator and EmbeddingCoordinator,
 * run on the relay's libp2p node with no models, so requests take the same routing tiers, failover
 * and receipt exchange as a page's. The gateway signs each job's receipt as its client, and the
 * serving page earns the work points. It listens to capability announcements itself (the relay's
 * TopicCarrier leaves a topic someone else joined to them) and announces the relay as the carrier
 * would.
 */
export class NetworkClient implements GatewayBackend {
  private readonly gossip: CapabilityGossip
  private readonly receipts: ReceiptKeeper
  private readonly inference: InferenceCoordinator
  private readonly embedding: EmbeddingCoordinator
  private readonly sightings = new ModelSightings()

  /**
   * `established`: the relay's established peers (its anchors, peers aged in its pulse history). The
   * gossips' validators may be the relay's own on these topics, so they judge peers as the carrier's
   * would: the capabilities cap the same forwarders (STRANGERS_PER_FORWARDER), and receipts spend the
   * same per-server budgets (ReceiptGossip).
   */
  constructor (libp2p: Libp2p<HyperspaceServices>, key: PrivateKey, networkId: string, established: (peerId: string) => boolean) {
    const roundMs = roundMsOf(networkId)
    if (roundMs === undefined) throw new RangeError(`not a network id: ${networkId}`)
    const signer = pulseSigner(key)
    const currentRound = (): number => roundOf(Date.now(), roundMs)
    this.gossip = new CapabilityGossip(libp2p, systemScheduler, networkId, () => relayAnnouncement(libp2p), { established })
    this.gossip.addEventListener('announcement', evt => { for (const model of evt.detail.announcement.serving?.models ?? []) this.remember(model) })
    // Routing already skips a peer that broke a rule (and StreamBudgetError reports it here); the
    // relay's own MisbehaviourTracker judges what peers gossip, so the gateway only says so.
    const onInvalid = (peerId: { toString: () => string }, reason: string): void => { console.warn(`gateway: ${peerId.toString()} broke a rule: ${reason}`) }
    const receiptGossip = new ReceiptGossip(libp2p, { networkId, verify: verifyPulseSignature, currentRound, established })
    receiptGossip.addEventListener('invalid', evt => { onInvalid(evt.detail.peerId, evt.detail.error.message) })
    this.receipts = new ReceiptKeeper(new ReceiptBook(new MemoryReceiptLog(), networkId, signer.peerId), receiptGossip, { verify: verifyPulseSignature, currentRound })
    const jobs = {
      scheduler: systemScheduler,
      signer,
      verify: verifyPulseSignature,
      streams: new JobStreams(libp2p),
      currentRound,
      receipts: this.receipts
    }
    this.inference = new InferenceCoordinator(libp2p, {
      ...jobs,
      networkId,
      models: new NoModels(),
      gossip: this.gossip,
      serving: () => false,
      listing: () => DEFAULT_MODEL_LISTING,
      caching: () => false,
      onInvalid
    })
    this.embedding = new EmbeddingCoordinator(libp2p, {
      ...jobs,
      embedder: noEmbedder,
      model: async () => await new NoModels().embeddingModel(),
      gossip: this.gossip,
      enabled: () => false,
      onChange: () => {}
    })
  }

  async start (): Promise<void> {
    await this.gossip.start()
    await this.receipts.start()
    await this.inference.start()
    await this.embedding.start()
  }

  async stop (): Promise<void> {
    await this.embedding.stop()
    await this.inference.stop()
    await this.receipts.stop()
    await this.gossip.stop()
  }

  /**
   * Routed through all three tiers, so a server that lists its models `unlisted` (DHT records only)
   * or `on-request` (answers wants only) is reached too; a model reached that way counts as seen.
   */
  async chat (request: NodeChatRequest, signal: AbortSignal): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>> {
    try {
      const answer = await this.inference.create({ ...request, route: 'network' }, { signal })
      if (request.stream === true) return this.watched(answer as AsyncIterable<ChatCompletionChunk>, request.model)
      this.sightings.seen(request.model, Date.now())
      return answer
    } catch (err) {
      this.noteMiss(err, request.model)
      throw err
    }
  }

  /** One embed job (routed with failover) for a batch that fits one; more texts are sharded over peers. */
  async embed (model: string, texts: string[], signal: AbortSignal): Promise<EmbedResult> {
    if (texts.length > EMBED_LIMITS.batch) return await embedSharded(this.embedding, model, texts, signal)
    return await this.embedding.embed(texts, { model, route: 'network', signal })
  }

  servedModels (): Map<string, number> {
    const peers = new Map<string, number>()
    for (const entry of this.gossip.entries()) {
      for (const model of entry.announcement.serving?.models ?? []) peers.set(model, (peers.get(model) ?? 0) + 1)
    }
    return peers
  }

  firstSeen (model: string): number | undefined {
    // An announcement may have come before this asked, or expired since: the registry is asked too.
    for (const m of this.servedModels().keys()) this.remember(m)
    return this.sightings.firstSeen(model)
  }

  missedRecently (model: string): boolean {
    return this.sightings.missedRecently(model, Date.now())
  }

  private remember (model: string): void {
    this.sightings.seen(model, Date.now())
  }

  /** A streamed answer: the model counts as seen once a peer sends text, as missed if no tier finds one. */
  private async * watched (chunks: AsyncIterable<ChatCompletionChunk>, model: string): AsyncIterable<ChatCompletionChunk> {
    let seen = false
    try {
      for await (const chunk of chunks) {
        if (!seen && (chunk.choices[0]?.delta.content ?? '') !== '') {
          seen = true
          this.remember(model)
        }
        yield chunk
      }
    } catch (err) {
      this.noteMiss(err, model)
      throw err
    }
  }

  private noteMiss (err: unknown, model: string): void {
    if (err instanceof NoProviderError && foundNoServer(err)) this.sightings.missed(model, Date.now())
  }
}
