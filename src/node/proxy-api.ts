import { NO_HOST_LISTS, normalizeHostLists, type ProxyHostLists } from '../core/proxy/host-list.ts'
import type { ProxyApi } from './api.ts'
import type { ProxyCoordinator } from './proxy-coordinator.ts'
import type { ServedFetch } from '../net/proxy-service.ts'

export interface ProxyApiHost {
  /** The running session's proxy, once loaded (it throws while the node does not run). */
  coordinator: () => Promise<ProxyCoordinator>
  /** What this node's proxy fetched for peers (nothing while its coordinator is not loaded). */
  served: () => ServedFetch[]
  /** The stored lists (none set: both empty). */
  hosts: () => ProxyHostLists | undefined
  /** Stores the lists; they apply to the next fetch. */
  saveHosts: (lists: ProxyHostLists) => Promise<void>
}

/** `hyperspace.proxy`: fetches through peers, and this node's own proxy's record and host lists. */
export function proxyApi (host: ProxyApiHost): ProxyApi {
  return {
    fetch: async (url, options) => await (await host.coordinator()).fetch(url, options),
    served: host.served,
    hosts: () => structuredClone(host.hosts() ?? NO_HOST_LISTS),
    setHosts: async lists => {
      const checked = normalizeHostLists(lists)
      await host.saveHosts(checked)
      return structuredClone(checked)
    }
  }
}
