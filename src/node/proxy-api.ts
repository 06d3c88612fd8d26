import { NodeNotRunningError } from '../core/errors.ts'
import { NO_HOST_LISTS, normalizeHostLists, type ProxyHostLists } from '../core/proxy/host-list.ts'
import type { ProxyApi } from './api.ts'
import type { ProxyCoordinator } from './proxy-coordinator.ts'

export interface ProxyApiHost {
  /** The running session's proxy, undefined while the node does not run. */
  coordinator: () => ProxyCoordinator | undefined
  /** The stored lists (none set: both empty). */
  hosts: () => ProxyHostLists | undefined
  /** Stores the lists; they apply to the next fetch. */
  saveHosts: (lists: ProxyHostLists) => Promise<void>
}

/** `hyperspace.proxy`: fetches through peers, and this node's own proxy's record and host lists. */
export function proxyApi (host: ProxyApiHost): ProxyApi {
  const running = (): ProxyCoordinator => {
    const coordinator = host.coordinator()
    if (coordinator === undefined) throw new NodeNotRunningError()
    return coordinator
  }
  return {
    fetch: async (url, options) => await running().fetch(url, options),
    served: () => host.coordinator()?.list() ?? [],
    hosts: () => structuredClone(host.hosts() ?? NO_HOST_LISTS),
    setHosts: async lists => {
      const checked = normalizeHostLists(lists)
      await host.saveHosts(checked)
      return structuredClone(checked)
    }
  }
}
