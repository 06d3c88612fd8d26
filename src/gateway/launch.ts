import { loadOrCreateApiKeys } from './api-keys-file.ts'
import { startGateway, type Gateway } from './gateway.ts'
import type { GatewayArgs } from './args.ts'
import type { Relay } from '../relay/relay.ts'
import type { PrivateKey } from '@libp2p/interface'

export interface LaunchedGateway {
  gateway: Gateway
  /** The file's first key: the one made for this machine when the file was created. */
  firstKey: string
  created: boolean
}

/** The gateway beside a relay, in its process and on its libp2p node, with the key file read (or made). */
export async function launchGateway (relay: Relay, privateKey: PrivateKey, networkId: string, args: GatewayArgs): Promise<LaunchedGateway> {
  const { keys, created } = await loadOrCreateApiKeys(args.apiKeysFile)
  const gateway = await startGateway({
    libp2p: relay.libp2p,
    privateKey,
    networkId,
    established: peerId => relay.isEstablished(networkId, peerId),
    host: args.host,
    port: args.port,
    keys,
    maxBodyBytes: args.maxBodyBytes,
    ...(args.corsOrigin !== undefined ? { corsOrigin: args.corsOrigin } : {})
  })
  return { gateway, firstKey: keys[0]?.key ?? '', created }
}

/** The two lines a user pastes into a shell to point OpenAI clients at the gateway. */
export function shellLines (baseUrl: string, key: string): string {
  return `OPENAI_BASE_URL=${baseUrl}\nOPENAI_API_KEY=${key}`
}
