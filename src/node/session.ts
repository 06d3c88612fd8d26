import { peerIdFromString } from '@libp2p/peer-id'
import { announcementFromStatuses, servesSomething, type CapabilityAnnouncement } from '../core/announcement.ts'
import { workingCapabilities, type CapabilityStatusMap, type ProfileName } from '../core/capabilities.ts'
import { CapabilityGossip } from '../net/capability-gossip.ts'
import { DirectDialer } from '../net/direct-dialer.ts'
import { JobStreams } from '../net/job-streams.ts'
import { MisbehaviourTracker } from '../net/misbehaviour.ts'
import { ValidatorHistory } from '../core/pulse/validators.ts'
import { beaconProver, pulseSigner, verifyBeacon, verifyPulseSignature } from '../net/pulse-keys.ts'
import { PulseService } from '../net/pulse-service.ts'
import { PointsService } from '../net/points-service.ts'
import { PeerPoints } from './peer-points.ts'
import { RelayKeeper } from '../net/relay-keeper.ts'
import { BlockCoordinator } from './block-coordinator.ts'
import { NetworkCapabilityProber } from './capability-prober.ts'
import { Departures } from './departures.ts'
import { EmbeddingCoordinator } from './embedding-coordinator.ts'
import { InferenceCoordinator } from './inference-coordinator.ts'
import { MemoryCoordinator } from './memory-coordinator.ts'
import { ProxyCoordinator } from './proxy-coordinator.ts'
import { ReceiptBook } from './receipt-book.ts'
import { TaskCoordinator } from './task-coordinator.ts'
import type { NodeComponents } from './components.ts'
import type { ModelListing } from '../core/inference/listing.ts'
import type { ProxyHostLists } from '../core/proxy/host-list.ts'
import type { ServedFetch } from '../net/proxy-service.ts'
import type { HyperspaceLibp2p } from '../net/browser-libp2p.ts'
import type { PrivateKey } from '@libp2p/interface'

/** The parts that live as long as one libp2p instance (an identity import replaces them all). */
export interface Session {
  libp2p: HyperspaceLibp2p
  keeper: RelayKeeper
  dialer: DirectDialer
  gossip: CapabilityGossip
  misbehaviour: MisbehaviourTracker
  pulse: PulseService
  receipts: ReceiptBook
  points: PointsService
  peerPoints: PeerPoints
  inference: InferenceCoordinator
  embedding: EmbeddingCoordinator
  blocks: BlockCoordinator
  memory: MemoryCoordinator
  proxy: ProxyCoordinator
  tasks: TaskCoordinator
  departures: Departures
}

/** What a session asks of the node that owns it. */
export interface SessionHost {
  profile: () => ProfileName
  capabilities: () => CapabilityStatusMap
  /** How peers find the chat models this node serves. */
  modelListing: () => ModelListing
  /** A capability's state changed (a model loaded, a store opened): status and announcement follow. */
  changed: () => void
  /** The user's proxy host lists. */
  proxyHosts: () => ProxyHostLists
  /** The proxy fetched something for a peer (or refused to). */
  proxyServed: (served: ServedFetch[]) => void
}

/**
 * Builds one identity's libp2p node and everything that runs on it, wired to each other and not yet
 * started. The node adds its own listeners, then calls startSession.
 */
export async function createSession (components: NodeComponents, key: PrivateKey, host: SessionHost): Promise<Session> {
  const { config, scheduler } = components
  // Created before libp2p, whose connection gater asks it about bans; it hangs up and asks the
  // keeper about relays only once both exist.
  const misbehaviour: MisbehaviourTracker = new MisbehaviourTracker(scheduler, id => keeper.isRelay(id), peerId => {
    libp2p.hangUp(peerId).catch(err => { console.warn('hyperspace: hang-up failed', peerId.toString(), err) })
  })
  const libp2p = await components.createLibp2p(key, config, peerId => misbehaviour.isBanned(peerId))
  const keeper = new RelayKeeper(libp2p, scheduler, config.bootstrap)
  // The announcement reads what is served from the coordinator below, which needs this registry;
  // nothing is announced before start(), by which time both exist.
  const gossip: CapabilityGossip = new CapabilityGossip(libp2p, scheduler, config.networkId, (): CapabilityAnnouncement => announcementFromStatuses(
    host.profile(), host.capabilities(), libp2p.getMultiaddrs().map(ma => ma.toString()).filter(a => a.includes('/p2p-circuit')), scheduler.now(),
    inference.servingState()))
  const dialer = new DirectDialer(libp2p, scheduler, id => keeper.isRelay(id), id => {
    const announced = gossip.get(id)?.announcement
    return announced !== undefined && servesSomething(announced)
  })
  const signer = pulseSigner(key)
  const validatorHistory = new ValidatorHistory(keeper.relayIds())
  const pulse: PulseService = new PulseService(libp2p, scheduler, {
    networkId: config.networkId,
    roundMs: config.roundMs,
    signer,
    verify: verifyPulseSignature,
    prover: components.prover,
    beaconKey: beaconProver(key),
    verifyBeacon,
    recompute: components.prover,
    store: components.pulseStore,
    validating: () => host.capabilities().validation.enabled,
    workingCaps: () => workingCapabilities(host.capabilities()),
    // The jobs are the coordinators' below; a check starts only once rounds run, after they exist.
    prober: new NetworkCapabilityProber({
      announcedModels: peer => gossip.get(peer)?.announcement.serving?.models ?? [],
      complete: async (peer, request, signal) => await inference.requestFrom(peer, request, signal),
      embed: async (peer, texts, signal) => await embedding.embedOn(peer, texts, signal),
      fetchBlock: async (peer, cid, signal) => { await blocks.fetchFrom(peer, cid, signal) },
      queryMemory: async (peer, space, vector, signal) => { await memory.queryOn(peer, space, vector, signal) }
    }),
    history: validatorHistory
  })
  const receipts = new ReceiptBook(components.receiptStore, config.networkId, signer.peerId)
  const points = new PointsService(libp2p, {
    networkId: config.networkId,
    roundMs: config.roundMs,
    scheduler,
    verify: verifyPulseSignature,
    history: pulse.proofHistory((from, to) => receipts.served(from, to)),
    // The voters this node counted in the round itself: its anchors, and the validators it drew then.
    counts: pulse.countsInRound,
    firstDrawnRound: (from, to) => pulse.firstDrawnRound(from, to)
  })
  const peerPoints = new PeerPoints(async (peer, options) => await points.check(peer, options), scheduler,
    () => [...new Set(libp2p.getPeers().map(p => p.toString()))].filter(id => !keeper.isRelay(id)))
  // What every job protocol needs: the pulse round its receipts are dated by, the signer, and how
  // its streams reach peers.
  const jobs = {
    scheduler,
    signer,
    verify: verifyPulseSignature,
    streams: new JobStreams(libp2p),
    currentRound: () => pulse.current().round
  }
  const inference: InferenceCoordinator = new InferenceCoordinator(libp2p, {
    networkId: config.networkId,
    ...jobs,
    models: components.models,
    gossip,
    receipts,
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
    keepReceipt: async receipt => { await inference.keepReceipt(receipt) },
    onChange: announceChange
  })
  const blocks = new BlockCoordinator(libp2p, {
    store: components.blockStore,
    ...jobs,
    serving: () => host.capabilities().storage.enabled,
    storagePeers: () => {
      const connected = new Set(libp2p.getPeers().map(p => p.toString()))
      return gossip.entries().filter(e => e.announcement.capabilities.storage?.working === true && connected.has(e.peerId)).map(e => e.peerId)
    },
    keepReceipt: async receipt => { await inference.keepReceipt(receipt) },
    onInvalid: (peerId, reason) => { misbehaviour.record(peerIdFromString(peerId), reason) }
  })
  const departures: Departures = new Departures(libp2p, scheduler, () => { memory.peersChanged() })
  const memory: MemoryCoordinator = new MemoryCoordinator(libp2p, {
    networkId: config.networkId,
    ...jobs,
    store: components.memoryStore,
    established: peerId => validatorHistory.isAged(peerId) || validatorHistory.isAnchor(peerId),
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
    fetcher: components.proxyFetcher,
    dev: config.dev,
    enabled: () => host.capabilities().proxy.enabled,
    hosts: host.proxyHosts,
    keepReceipt: async receipt => { await inference.keepReceipt(receipt) },
    onServed: host.proxyServed
  })
  const tasks = new TaskCoordinator(libp2p, {
    ...jobs,
    gossip,
    embedding,
    inference,
    models: components.models,
    enabled: () => host.capabilities().orchestration.enabled,
    inferenceServing: () => host.capabilities().inference.enabled,
    keepReceipt: async receipt => { await inference.keepReceipt(receipt) }
  })
  return { libp2p, keeper, dialer, gossip, misbehaviour, pulse, receipts, points, peerPoints, inference, embedding, blocks, memory, proxy, tasks, departures }

  function announceChange (): void {
    host.changed()
    gossip.announce().catch(err => { console.warn('hyperspace: capability announcement failed', err) })
  }
}

/** Starts a session's parts in the order they depend on each other. */
export async function startSession (session: Session): Promise<void> {
  await session.libp2p.start()
  // Dial the relays first: everything else waits on them, and the pulse history loads meanwhile.
  session.keeper.start()
  session.dialer.start()
  session.gossip.start()
  await Promise.all([session.pulse.start(), session.receipts.load()])
  await session.points.start()
  session.peerPoints.start()
  await session.inference.start()
  await session.embedding.start()
  await session.blocks.start()
  session.departures.start()
  await session.memory.start()
  await session.proxy.start()
  await session.tasks.start()
}

/** Stops a session's parts, libp2p last. */
export async function stopSession (session: Session): Promise<void> {
  session.keeper.stop()
  session.dialer.stop()
  session.gossip.stop()
  session.pulse.stop()
  session.peerPoints.stop()
  await session.points.stop()
  await session.inference.stop()
  await session.embedding.stop()
  await session.blocks.stop()
  session.departures.stop()
  await session.memory.stop()
  await session.proxy.stop()
  await session.tasks.stop()
  await session.libp2p.stop()
}
