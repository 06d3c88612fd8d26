import { hasUnlimitedConnection } from './job-streams.ts'
import type { Provider } from '../core/jobs/routing.ts'
import type { Libp2p } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

export interface ProviderLookup {
  /** Peers not to list (this node, peers tried already). */
  exclude: ReadonlySet<string>
  /** How long the DHT is asked. */
  timeoutMs: number
  /** The most providers listed. */
  max: number
  /** Jobs each provider is taken to run at once (the DHT does not say). */
  slots: number
  /**
   * End the lookup at the first provider with an unlimited connection: routing ranks it first, and
   * the rest of the lookup (tens of ms) would only add candidates to fail over to.
   */
  untilConnected?: boolean
  signal?: AbortSignal
}

/**
 * The DHT tier of routing: the providers of `key` the DHT names, each once, at most `max`. A provider
 * is `connected` as everywhere in routing: this node has an open connection to it without relay
 * limits (hasUnlimitedConnection), so a job needs no dial first. A DHT that cannot be reached yet, or
 * that runs out of time, yields what it found so far (the next tier is asked instead); only the
 * caller's abort throws.
 */
export async function findProviders (libp2p: Libp2p, key: CID, o: ProviderLookup): Promise<Provider[]> {
  const found: Provider[] = []
  const timeout = AbortSignal.timeout(o.timeoutMs)
  try {
    for await (const peer of libp2p.contentRouting.findProviders(key, { signal: o.signal === undefined ? timeout : AbortSignal.any([o.signal, timeout]) })) {
      const peerId = peer.id.toString()
      if (o.exclude.has(peerId) || found.some(p => p.peerId === peerId)) continue
      const connected = hasUnlimitedConnection(libp2p, peerId)
      found.push({ peerId, source: 'dht', latencyMs: null, queue: 0, slots: o.slots, connected })
      if (found.length >= o.max || (connected && o.untilConnected === true)) break
    }
  } catch (err) {
    if (o.signal?.aborted === true) throw err
  }
  return found
}
