import { contentRoutingSymbol, NotStartedError, peerDiscoverySymbol, peerRoutingSymbol, serviceCapabilities, serviceDependencies, start, stop } from '@libp2p/interface'
import { TypedEventEmitter } from 'main-event'
import type { AbortOptions, ContentRouting, PeerDiscoveryEvents, PeerId, PeerInfo, PeerRouting, Provider, RoutingOptions, Startable, TypedEventTarget } from '@libp2p/interface'
import type { KadDHT, KadDHTComponents } from '@libp2p/kad-dht'
import type { CID } from 'multiformats/cid'

/** The DHT as libp2p uses it: its class offers routing and discovery under these symbols (its interface does not say so). */
type RoutingDHT = KadDHT & {
  [contentRoutingSymbol]: ContentRouting
  [peerRoutingSymbol]: PeerRouting
  [peerDiscoverySymbol]: TypedEventTarget<PeerDiscoveryEvents>
}

export interface DeferredDHTInit {
  /** The DHT's protocol, to introduce the peers connected before it started. */
  protocol: string
  /** Imports the DHT's code and returns its factory; called by the first `load()` of each run. */
  importDHT: () => Promise<(components: KadDHTComponents) => KadDHT>
}

/**
 * A libp2p service that stands in for the Kademlia DHT until `load()` imports and starts it, so that
 * the DHT's code (the largest part of the libp2p stack) is not part of what a page loads to come
 * online. libp2p 3 takes its services once, at createLibp2p: this one is registered then, as content
 * router, peer router and peer discovery, and hands every call to the DHT once it runs.
 *
 * Content routing (provide, findProviders, ...) loads the DHT when it is not loaded yet. Peer routing
 * only waits for it: libp2p's random walk asks for peers from the start, and loading the DHT for it
 * would load it before the node is online.
 */
export class DeferredDHT extends TypedEventEmitter<PeerDiscoveryEvents> implements Startable {
  readonly [Symbol.toStringTag] = 'hyperspace:deferred-dht'
  readonly [serviceCapabilities] = ['@libp2p/content-routing', '@libp2p/peer-routing', '@libp2p/peer-discovery']
  readonly [serviceDependencies] = ['@libp2p/identify', '@libp2p/ping']
  private running = false
  private dht?: Promise<RoutingDHT>
  /** Peer routing calls waiting for the DHT to be loaded. */
  private readonly waiting = new Set<() => void>()

  constructor (private readonly components: KadDHTComponents, private readonly init: DeferredDHTInit) {
    super()
  }

  get [contentRoutingSymbol] (): ContentRouting {
    return {
      provide: async (cid: CID, options?: RoutingOptions) => { await this.provide(cid, options) },
      cancelReprovide: async (cid: CID, options?: RoutingOptions) => {
        // Nothing was provided before the DHT was loaded.
        if (this.dht !== undefined) await (await this.dht)[contentRoutingSymbol].cancelReprovide(cid, options)
      },
      findProviders: (cid: CID, options?: RoutingOptions) => this.findProviders(cid, options),
      put: async (key: Uint8Array, value: Uint8Array, options?: RoutingOptions) => { await (await this.routingDHT())[contentRoutingSymbol].put(key, value, options) },
      get: async (key: Uint8Array, options?: RoutingOptions) => await (await this.routingDHT())[contentRoutingSymbol].get(key, options)
    }
  }

  get [peerRoutingSymbol] (): PeerRouting {
    return {
      findPeer: async (peerId: PeerId, options?: RoutingOptions) => await (await this.loaded(options))[peerRoutingSymbol].findPeer(peerId, options),
      getClosestPeers: (key: Uint8Array, options?: RoutingOptions) => this.getClosestPeers(key, options)
    }
  }

  get [peerDiscoverySymbol] (): TypedEventTarget<PeerDiscoveryEvents> {
    return this
  }

  isStarted (): boolean {
    return this.running
  }

  async start (): Promise<void> {
    this.running = true
  }

  async stop (): Promise<void> {
    this.running = false
    const dht = await this.dht?.catch(() => undefined)
    this.dht = undefined
    if (dht !== undefined) await stop(dht)
  }

  /** Imports and starts the DHT, once per run; later calls return the same DHT. */
  async load (): Promise<KadDHT> {
    return await this.routingDHT()
  }

  private async routingDHT (): Promise<RoutingDHT> {
    if (!this.running) throw new NotStartedError('the DHT is not started')
    if (this.dht === undefined) {
      const dht = this.startDHT()
      this.dht = dht
      // A failed import (the page went offline before the DHT's code was cached) is tried again on the next call.
      dht.catch(() => { if (this.dht === dht) this.dht = undefined })
      for (const wake of this.waiting) wake()
    }
    return await this.dht
  }

  private async startDHT (): Promise<RoutingDHT> {
    const createDHT = await this.init.importDHT()
    const dht = createDHT(this.components) as RoutingDHT
    dht[peerDiscoverySymbol].addEventListener('peer', evt => { this.safeDispatchEvent('peer', { detail: evt.detail }) })
    await start(dht)
    await this.introduceConnectedPeers()
    return dht
  }

  /**
   * libp2p tells topologies about a peer's protocols when identify completes. The peers identified
   * before the DHT started (the relays, which serve it) are introduced to its topology here, with the
   * same rules.
   */
  private async introduceConnectedPeers (): Promise<void> {
    const { registrar, connectionManager, peerStore } = this.components
    const topologies = registrar.getTopologies(this.init.protocol)
    const introduced = new Set<string>()
    for (const connection of connectionManager.getConnections()) {
      const peerId = connection.remotePeer
      if (introduced.has(peerId.toString())) continue
      const peer = await peerStore.get(peerId).catch(() => undefined)
      if (peer?.protocols.includes(this.init.protocol) !== true) continue
      for (const topology of topologies) {
        if (connection.limits != null && topology.notifyOnLimitedConnection !== true) continue
        if (topology.filter?.has(peerId) === true) continue
        introduced.add(peerId.toString())
        topology.filter?.add(peerId)
        await topology.onConnect?.(peerId, connection)
      }
    }
  }

  /** The DHT once something has asked to load it; peer routing never does. */
  private async loaded (options?: AbortOptions): Promise<RoutingDHT> {
    const signal = options?.signal
    while (this.dht === undefined) {
      signal?.throwIfAborted()
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => {
          this.waiting.delete(wake)
          reject(signal?.reason)
        }
        const wake = (): void => {
          this.waiting.delete(wake)
          signal?.removeEventListener('abort', onAbort)
          resolve()
        }
        this.waiting.add(wake)
        signal?.addEventListener('abort', onAbort, { once: true })
      })
    }
    return await this.dht
  }

  /**
   * kad-dht's provide resolves even when no DHT server took the record (none was known yet): here that
   * fails, so whoever counts a record as stored (the served models in status()) only does when one holds it.
   */
  private async provide (cid: CID, options?: RoutingOptions): Promise<void> {
    let stored = 0
    for await (const event of (await this.routingDHT()).provide(cid, options)) {
      if (event.name === 'PEER_RESPONSE' && event.messageName === 'ADD_PROVIDER') stored++
    }
    if (stored === 0) throw new Error('no DHT server took the provider record')
  }

  private async * findProviders (cid: CID, options?: RoutingOptions): AsyncGenerator<Provider> {
    yield * (await this.routingDHT())[contentRoutingSymbol].findProviders(cid, options)
  }

  private async * getClosestPeers (key: Uint8Array, options?: RoutingOptions): AsyncGenerator<PeerInfo> {
    yield * (await this.loaded(options))[peerRoutingSymbol].getClosestPeers(key, options)
  }
}

/** The service factory for createLibp2p's `services`. */
export function deferredDHT (init: DeferredDHTInit): (components: KadDHTComponents) => DeferredDHT {
  return components => new DeferredDHT(components, init)
}
