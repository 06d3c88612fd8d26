import { peerIdFromString } from '@libp2p/peer-id'
import { JobStreams } from '../net/job-streams.ts'
import { Lifecycle } from '../core/lifecycle.ts'
import { verifyPulseSignature } from '../net/pulse-keys.ts'
import { ReceiptGossip } from '../net/receipt-gossip.ts'
import { BlockCoordinator } from './block-coordinator.ts'
import { EmbeddingCoordinator } from './embedding-coordinator.ts'
import { InferenceCoordinator } from './inference-coordinator.ts'
import { MemoryCoordinator } from './memory-coordinator.ts'
import { ProxyCoordinator } from './proxy-coordinator.ts'
import { ReceiptKeeper } from './receipt-keeper.ts'
import { TaskCoordinator } from './task-coordinator.ts'
import type { Loaded } from './on-demand.ts'
import type { ReceiptedJobContext } from './job-context.ts'
import type { NodeComponents } from './components.ts'
import type { SessionHost } from './session.ts'
import type { Established } from '../core/jobs/routing.ts'
import type { PulseSigner } from '../core/crypto/signing.ts'
import type { CapabilityGossip } from '../net/capability-gossip.ts'
import type { HyperspaceLibp2p } from '../net/browser-libp2p.ts'
import type { MisbehaviourTracker } from '../net/misbehaviour.ts'
import type { Departures } from './departures.ts'
import type { ReceiptBook } from './receipt-book.ts'

/**
 * The job coordinators: what a node serves and asks of peers. This module is imported once the node
 * is online (or at the first job), not at page load: see docs/internals.md, "Initial JS".
 */
export interface Jobs {
  inference: InferenceCoordinator
  embedding: EmbeddingCoordinator
  blocks: BlockCoordinator
  memory: MemoryCoordinator
  proxy: ProxyCoordinator
  tasks: TaskCoordinator
}

/** The session's parts the coordinators use. */
export interface JobsContext {
  components: NodeComponents
  host: SessionHost
  libp2p: HyperspaceLibp2p
  gossip: CapabilityGossip
  receipts: ReceiptBook
  misbehaviour: MisbehaviourTracker
  departures: Departures
  /** Peers aged in the pulse history, and the anchors: a key that has done verified work (fresh keys cost nothing). */
  established: Established
  signer: PulseSigner
  currentRound: () => number
}

/** Builds the coordinators, wired to each other and to the session, and starts them. */
export async function startJobs (ctx: JobsContext): Promise<Loaded<Jobs>> {
  const { components, host, libp2p, gossip, misbehaviour, departures, established } = ctx
  const { config } = components
  const { blockStore, memoryStore, proxyFetcher } = await components.jobStores()
  const receiptGossip = new ReceiptGossip(libp2p, { networkId: config.networkId, verify: verifyPulseSignature, currentRound: ctx.currentRound, established })
  receiptGossip.addEventListener('invalid', evt => { misbehaviour.record(evt.detail.peerId, evt.detail.error.message) })
  const receipts = new ReceiptKeeper(ctx.receipts, receiptGossip, { verify: verifyPulseSignature, currentRound: ctx.currentRound })
  // What every job protocol needs: the pulse round its receipts are dated by, the signer, how its
  // streams reach peers, and where its receipts go.
  const jobs: ReceiptedJobContext = {
    scheduler: components.scheduler,
    signer: ctx.signer,
    verify: verifyPulseSignature,
    streams: new JobStreams(libp2p),
    currentRound: ctx.currentRound,
    established,
    receipts
  }
  const inference: InferenceCoordinator = new InferenceCoordinator(libp2p, {
    networkId: config.networkId,
    ...jobs,
    models: components.models,
    gossip,
    serving: () => host.capabilities().inference.enabled,
    listing: host.modelListing,
    onDhtRecord: host.changed,
    caching: () => host.capabilities().caching.enabled,
    onInvalid: (peerId, reason) => { misbehaviour.record(peerId, reason) }
  })
  const embedding: EmbeddingCoordinator = new EmbeddingCoordinator(libp2p, {
    ...jobs,
    embedder: components.embedder,
    model: async () => await components.models.embeddingModel(),
    gossip,
    enabled: () => host.capabilities().embedding.enabled,
    onChange: announceChange
  })
  const blocks = new BlockCoordinator(libp2p, {
    store: blockStore,
    ...jobs,
    serving: () => host.capabilities().storage.enabled,
    storagePeers: () => {
      const connected = new Set(libp2p.getPeers().map(p => p.toString()))
      return gossip.entries().filter(e => e.announcement.capabilities.storage?.working === true && connected.has(e.peerId)).map(e => e.peerId)
    },
    onInvalid: (peerId, reason) => { misbehaviour.record(peerIdFromString(peerId), reason) }
  })
  const memory: MemoryCoordinator = new MemoryCoordinator(libp2p, {
    networkId: config.networkId,
    ...jobs,
    store: memoryStore,
    established,
    enabled: () => host.capabilities().memory.enabled,
    peers: () => gossip.entries()
      .filter(e => e.announcement.capabilities.memory?.working === true && departures.present(e.peerId, e.receivedAt))
      .map(e => e.peerId),
    embed: async (texts, signal) => await embedding.embed(texts, { route: 'auto', ...(signal !== undefined ? { signal } : {}) }),
    onChange: announceChange,
    onInvalid: (peerId, reason) => { misbehaviour.record(peerIdFromString(peerId), reason) }
  })
  const proxy = new ProxyCoordinator(libp2p, {
    ...jobs,
    gossip,
    fetcher: proxyFetcher,
    dev: config.dev,
    enabled: () => host.capabilities().proxy.enabled,
    hosts: host.proxyHosts,
    onServed: host.proxyServed
  })
  const tasks = new TaskCoordinator(libp2p, {
    ...jobs,
    gossip,
    embedding,
    inference,
    models: components.models,
    enabled: () => host.capabilities().orchestration.enabled,
    inferenceServing: () => host.capabilities().inference.enabled
  })

  // A failed start stops what had started: a later load starts them all again, and none may keep
  // its protocol handler.
  const lifecycle = new Lifecycle([{ receipts }, { inference }, { embedding }, { blocks }, { memory }, { proxy }, { tasks }])
  await lifecycle.start()
  // The relays' DHT records of stored blocks, and what is served now, were not announced without them.
  blocks.reprovide()
  announceChange()
  return {
    parts: { inference, embedding, blocks, memory, proxy, tasks },
    stop: async () => { await lifecycle.stop() }
  }

  function announceChange (): void {
    host.changed()
    gossip.announce().catch(err => { console.warn('hyperspace: capability announcement failed', err) })
  }
}
