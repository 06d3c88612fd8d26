import { ServingCoordinator } from './serving-coordinator.ts'
import { jobServiceBase, type ReceiptedJobContext, type ServeLimits } from './job-context.ts'
import { hasUnlimitedConnection, retryLostStream } from '../net/job-streams.ts'
import { InvalidRequestError } from '../core/errors.ts'
import { ProxyTargetError } from '../core/proxy/errors.ts'
import { missesOn, routeWithFailover, type Provider } from '../core/jobs/routing.ts'
import { toHex } from '../core/crypto/bytes.ts'
import { checkProxyMethod, checkProxyUrl } from '../core/proxy/url-policy.ts'
import { PROXY_MAX_BODY_BYTES, type ProxyHeaders } from '../core/wire/proxy.ts'
import { ProxyService, type ServedFetch } from '../net/proxy-service.ts'
import type { ProxyFetchOptions, ProxyResult } from './api.ts'
import type { Availability } from '../core/capabilities.ts'
import type { ProxyFetcher } from '../core/proxy/fetcher.ts'
import type { ProxyHostLists } from '../core/proxy/host-list.ts'
import type { CapabilityGossip } from '../net/capability-gossip.ts'
import type { Libp2p } from '@libp2p/interface'

export interface ProxyCoordinatorOptions extends ReceiptedJobContext {
  gossip: CapabilityGossip
  fetcher: ProxyFetcher
  /** A dev network: loopback targets are allowed (http too), for tests. */
  dev: boolean
  /** The proxy capability is on: this node fetches for peers. */
  enabled: () => boolean
  /** The user's allow and deny lists. */
  hosts: () => ProxyHostLists
  /** The list of fetches served changed. */
  onServed: (served: ServedFetch[]) => void
}

/** Fetches made for peers at once, and how many more may wait (each holds up to 1 MiB); per peer 30 a minute, 10 at once. */
const SERVE: ServeLimits = { slots: 4, waiting: 8, perMinute: 30, burst: 10 }
/** Proxies tried for one fetch before giving up. */
const MAX_ATTEMPTS = 3
/** Fetches kept for the Proxy panel. */
export const SERVED_KEPT = 100

/**
 * `proxy.*` of the node: fetches for this node's user through a peer whose proxy works (failing over,
 * except on an answer about the target itself, which any proxy would give), serves peers' fetches
 * when the capability is on, and keeps the record of what it fetched for whom.
 */
export class ProxyCoordinator extends ServingCoordinator<ProxyService> {
  protected readonly service: ProxyService
  private served: ServedFetch[] = []

  constructor (private readonly libp2p: Libp2p, private readonly o: ProxyCoordinatorOptions) {
    super()
    this.service = new ProxyService(libp2p, {
      ...jobServiceBase(o, SERVE),
      serving: o.enabled,
      policy: () => ({ allowLoopback: o.dev, hosts: o.hosts() }),
      fetcher: o.fetcher,
      onServed: entry => {
        this.served = [entry, ...this.served].slice(0, SERVED_KEPT)
        o.onServed(this.served)
      }
    })
  }

  /** The capability changed: switched off, every fetch in flight for a peer stops at once. */
  sync (): void {
    if (!this.o.enabled()) this.service.abortAll()
  }

  /** Working while the protocol is served (the capability decides whether a fetch is made). */
  availability (): Availability {
    return this.service.registered ? { available: true } : { available: false, reason: 'the proxy protocol is not being served' }
  }

  list (): ServedFetch[] {
    return this.served
  }

  async fetch (input: string, options: ProxyFetchOptions = {}): Promise<ProxyResult> {
    const route = options.route ?? 'network'
    if (route !== 'network' && route !== 'local') throw new InvalidRequestError('route must be network or local')
    const method = checkProxyMethod(options.method)
    const maxBytes = options.maxBytes ?? PROXY_MAX_BODY_BYTES
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0 || maxBytes > PROXY_MAX_BODY_BYTES) throw new InvalidRequestError(`maxBytes must be a whole number from 0 to ${PROXY_MAX_BODY_BYTES}`)
    const signal = options.signal
    // Checked here first, with this network's rules: a URL no proxy may fetch is not sent anywhere.
    const url = checkProxyUrl(input, { allowLoopback: this.o.dev })
    const self = this.o.signer.peerId
    if (route === 'local') {
      const answer = await this.o.fetcher.fetch({ url, method, maxBytes, signal: signal ?? new AbortController().signal })
      return { status: answer.status, headers: headerRecord(answer.headers), body: answer.body, servedBy: self, route: 'local' }
    }
    const pinned = options.peer
    if (pinned !== undefined && (typeof pinned !== 'string' || pinned.length > 128 || pinned === self)) throw new InvalidRequestError('peer must be another peer\'s id')
    const tier = async (exclude: ReadonlySet<string>): Promise<Provider[]> => this.providers(new Set([...exclude, self]), pinned)
    const routed = await routeWithFailover([tier],
      async provider => await retryLostStream(this.libp2p, provider.peerId, async () => await this.service.request(provider.peerId, url, method, maxBytes, signal),
        signal !== undefined ? { signal } : {}),
      { model: 'proxy', maxAttempts: MAX_ATTEMPTS, miss: missesOn(['ERR_PEER_BUSY', 'ERR_PROXY_OFF']), established: this.o.established, isFinal: err => err instanceof ProxyTargetError, ...(signal !== undefined ? { signal } : {}) })
    const { status, headers, body, receipt } = routed.result
    return {
      status, headers: headerRecord(headers), body, servedBy: routed.provider.peerId, route: 'network',
      ...(receipt !== undefined ? { receipt: toHex(receipt.body.job) } : {})
    }
  }

  /** Peers whose announcement says their proxy works (or only the pinned one, announced or not). */
  private providers (exclude: ReadonlySet<string>, pinned?: string): Provider[] {
    const ids = pinned !== undefined
      ? [pinned]
      : this.o.gossip.entries().filter(e => e.announcement.capabilities.proxy?.working === true).map(e => e.peerId)
    const providers: Provider[] = []
    for (const peerId of ids) {
      if (exclude.has(peerId)) continue
      const rtt = this.libp2p.getConnections().find(c => c.remotePeer.toString() === peerId && c.status === 'open' && c.rtt !== undefined)?.rtt
      providers.push({ peerId, source: 'registry', latencyMs: rtt ?? null, queue: 0, slots: SERVE.slots, connected: hasUnlimitedConnection(this.libp2p, peerId) })
    }
    return providers
  }
}

/** Headers as an object; a name the target sent twice keeps both values, comma-separated as fetch does. */
function headerRecord (headers: ProxyHeaders): Record<string, string> {
  const merged = new Map<string, string>()
  for (const [name, value] of headers) merged.set(name, merged.has(name) ? `${merged.get(name)}, ${value}` : value)
  // fromEntries defines own properties: a header named __proto__ cannot reach the prototype.
  return Object.fromEntries(merged)
}
