import { announcementFromStatuses, servesSomething, type CapabilityAnnouncement } from '../core/wire/announcement.ts'
import { workingCapabilities, type CapabilityStatusMap, type ProfileName } from '../core/capabilities.ts'
import { CapabilityGossip } from '../net/capability-gossip.ts'
import { ConnectionProbe } from '../net/connection-probe.ts'
import { DirectDialer } from '../net/direct-dialer.ts'
import { MisbehaviourTracker } from '../net/misbehaviour.ts'
import { ValidatorHistory } from '../core/pulse/validators.ts'
import { beaconProver, pulseSigner, verifyBeacon, verifyPulseSignature } from '../net/pulse-keys.ts'
import { PulseService } from '../net/pulse-service.ts'
import { PointsService } from '../net/points-service.ts'
import { PeerPoints } from './peer-points.ts'
import { RelayKeeper } from '../net/relay-keeper.ts'
import { NetworkCapabilityProber } from './capability-prober.ts'
import { Departures } from './departures.ts'
import { Lifecycle, startOnly, stopOnly } from '../core/lifecycle.ts'
import { OnDemand } from './on-demand.ts'
import { ReceiptBook } from './receipt-book.ts'
import type { Jobs } from './jobs.ts'
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
  /** The job coordinators, loaded once the node is online or at the first job (src/node/jobs.ts). */
  jobs: OnDemand<Jobs>
  departures: Departures
  /** Starts and stops all of the above. */
  lifecycle: Lifecycle
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
 * started. The node adds its own listeners, then starts `lifecycle`.
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
  const probe = new ConnectionProbe(libp2p, scheduler)
  const validatorHistory = new ValidatorHistory(keeper.relayIds())
  const established = (peerId: string): boolean => validatorHistory.isEstablished(peerId)
  // What is served is announced once the coordinators run (they announce again when they start).
  const gossip: CapabilityGossip = new CapabilityGossip(libp2p, scheduler, config.networkId, (): CapabilityAnnouncement => announcementFromStatuses(
    host.profile(), host.capabilities(), libp2p.getMultiaddrs().map(ma => ma.toString()).filter(a => a.includes('/p2p-circuit')), scheduler.now(),
    jobs.current?.inference.servingState()), { established })
  const dialer = new DirectDialer(libp2p, scheduler, {
    isRelay: id => keeper.isRelay(id),
    serves: id => {
      const announced = gossip.get(id)?.announcement
      return announced !== undefined && servesSomething(announced)
    },
    established,
    makeKnown: () => { gossip.reannounce() }
  })
  const signer = pulseSigner(key)
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
    // The checks are jobs: a check that comes before the coordinators are loaded waits for them.
    prober: new NetworkCapabilityProber({
      announcedModels: peer => gossip.get(peer)?.announcement.serving?.models ?? [],
      complete: async (peer, request, options) => await (await jobs.ready()).inference.requestFrom(peer, request, options),
      embed: async (peer, texts, options) => await (await jobs.ready()).embedding.embedOn(peer, texts, options),
      fetchBlock: async (peer, cid, options) => { await (await jobs.ready()).blocks.fetchFrom(peer, cid, options) },
      queryMemory: async (peer, space, vector, options) => { await (await jobs.ready()).memory.queryOn(peer, space, vector, options) }
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
    firstDrawnRound: (from, to) => pulse.firstDrawnRound(from, to),
    established
  })
  const peerPoints = new PeerPoints(async (peer, options) => await points.check(peer, options), scheduler,
    () => [...new Set(libp2p.getPeers().map(p => p.toString()))].filter(id => !keeper.isRelay(id)))
  const departures: Departures = new Departures(libp2p, scheduler, () => { jobs.current?.memory.peersChanged() })
  const jobs: OnDemand<Jobs> = new OnDemand(async () => await (await import('./jobs.ts')).startJobs({
    components, host, libp2p, gossip, receipts, misbehaviour, departures, established, signer, currentRound: () => pulse.current().round
  }))
  // The parts in the order they depend on each other; stopping is the reverse. The relays are dialed
  // first: everything else waits on them, and the pulse history and the receipts load meanwhile. The
  // job coordinators use every other part, so they stop first; they start on demand, not here.
  const lifecycle = new Lifecycle([
    { libp2p: { start: async () => { await libp2p.start() }, stop: async () => { await libp2p.stop() } } },
    { keeper, probe },
    { dialer },
    { gossip },
    { pulse, receipts: startOnly(async () => { await receipts.load() }) },
    { points },
    { peerPoints },
    { departures },
    { jobs: stopOnly(async () => { await jobs.stop() }) }
  ])
  return { libp2p, keeper, dialer, gossip, misbehaviour, pulse, receipts, points, peerPoints, jobs, departures, lifecycle }
}
