import { ApiKeyring, type ApiKeyEntry } from '../core/gateway/api-keys.ts'
import { GatewayMetrics } from '../core/gateway/metrics.ts'
import { QuotaBook } from '../core/gateway/quota.ts'
import { createGatewayServer } from './http-server.ts'
import { NetworkClient } from './network-client.ts'
import type { HyperspaceServices } from '../net/services.ts'
import type { Libp2p, PrivateKey } from '@libp2p/interface'

export interface GatewayOptions {
  /** The relay's libp2p node: pages are connected to it directly (WebSockets), which jobs need. */
  libp2p: Libp2p<HyperspaceServices>
  privateKey: PrivateKey
  /** The network whose pages it asks (their network id, round length included). */
  networkId: string
  /** Peers the relay counts established on that network: its capability gossip takes everything they forward. */
  established: (peerId: string) => boolean
  host: string
  /** 0 picks a free port. */
  port: number
  keys: ApiKeyEntry[]
  maxBodyBytes: number
  corsOrigin?: string
}

export const GATEWAY_DEFAULTS = { host: '127.0.0.1', port: 4010, maxBodyBytes: 1024 * 1024 } as const

export interface Gateway {
  /** `http://<host>:<port>/v1`: what OPENAI_BASE_URL is set to. */
  baseUrl: string
  stop: () => Promise<void>
}

/** Starts the OpenAI-compatible HTTP gateway on a running libp2p node. */
export async function startGateway (o: GatewayOptions): Promise<Gateway> {
  const client = new NetworkClient(o.libp2p, o.privateKey, o.networkId, o.established)
  await client.start()
  const limits = new Map(o.keys.map(k => [k.key, k]))
  const server = createGatewayServer({
    backend: client,
    keys: new ApiKeyring(o.keys),
    quotas: new QuotaBook(key => limits.get(key) ?? { requestsPerMinute: 0, tokensPerMinute: 0 }),
    metrics: new GatewayMetrics(),
    maxBodyBytes: o.maxBodyBytes,
    ...(o.corsOrigin !== undefined ? { corsOrigin: o.corsOrigin } : {})
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(o.port, o.host, () => { server.off('error', reject); resolve() })
  })
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : o.port
  const host = o.host.includes(':') ? `[${o.host}]` : o.host
  return {
    baseUrl: `http://${host}:${port}/v1`,
    stop: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => { server.close(() => { resolve() }) })
      await client.stop()
    }
  }
}
