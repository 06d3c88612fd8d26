import { parseArgs } from 'node:util'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { WebSocketsSecure } from '@multiformats/multiaddr-matcher'
import { isValidNetworkName } from '../core/config.ts'
import { GATEWAY_OPTIONS, GATEWAY_USAGE, gatewayArgsOf, withGatewayPort, type GatewayArgs } from '../gateway/args.ts'
import { RELAY_DEFAULTS } from './relay.ts'

export interface RelayArgs {
  host: string
  port: number
  announce: string[]
  keyFile?: string
  /** Keep the pulse histories of the peers the relay watched here across restarts. */
  historyFile?: string
  /** Peer ids of the network's other relays: anchors whose challenges it follows as its browsers do. */
  anchors: string[]
  network: string
  maxReservations: number
  maxReservationsPerHost: number
  maxConnectionsPerHost: number
  /** Write the dialable addresses as a bootstrap.json to this path. */
  bootstrapOut?: string
  /** PEM files that make the relay listen on wss itself (browsers on https pages cannot open ws://). */
  tls?: RelayTlsFiles
  /** Also serve the OpenAI-compatible HTTP gateway (src/gateway). */
  gateway?: GatewayArgs
}

export interface RelayTlsFiles {
  certFile: string
  keyFile: string
}

export const RELAY_USAGE = `npm run relay -- [options]
  --host <ip>               listen address (default ${RELAY_DEFAULTS.host})
  --port <n>                WebSockets port (default ${RELAY_DEFAULTS.port}; 0 picks a free one)
  --announce <multiaddr>    public address to announce, without /p2p (repeatable)
  --key-file <path>         keep the relay's identity in this file (created if missing)
  --history-file <path>     keep the verified rounds of the peers it watched here across restarts
  --anchor <peer-id>        another relay of the same network, which its browsers also bootstrap
                            from (repeatable): both follow one leader in a young network
  --network <name>          network name (default ${RELAY_DEFAULTS.network})
  --max-reservations <n>    circuit relay reservations in all (default ${RELAY_DEFAULTS.maxReservations})
  --max-per-host <n>        reservations from one IPv4 address or IPv6 /64 (default ${RELAY_DEFAULTS.maxReservationsPerHost})
  --max-conns-per-host <n>  connections from one IPv4 address or IPv6 /64 (default ${RELAY_DEFAULTS.maxConnectionsPerHost})
  --bootstrap-out <path>    write a bootstrap.json listing this relay
  --tls-cert <file>         PEM certificate (with its chain): listen on wss instead of ws
  --tls-key <file>          PEM private key of --tls-cert (the two go together)
${GATEWAY_USAGE}`

function positiveInt (value: string | undefined, name: string, fallback: number, min = 1): number {
  if (value === undefined) return fallback
  // Number('') is 0: an unset variable in `--port=$PORT` must not mean "any port".
  if (value.trim() === '') throw new RangeError(`--${name} needs a value`)
  const n = Number(value)
  if (!Number.isInteger(n) || n < min || n > 65_535 * 16) throw new RangeError(`--${name} must be a whole number >= ${min}`)
  return n
}

export function parseRelayArgs (argv: string[]): RelayArgs {
  const { values } = parseArgs({
    args: withGatewayPort(argv),
    strict: true,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      announce: { type: 'string', multiple: true },
      'key-file': { type: 'string' },
      'history-file': { type: 'string' },
      anchor: { type: 'string', multiple: true },
      network: { type: 'string' },
      'max-reservations': { type: 'string' },
      'max-per-host': { type: 'string' },
      'max-conns-per-host': { type: 'string' },
      'bootstrap-out': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      ...GATEWAY_OPTIONS
    }
  })
  const port = positiveInt(values.port, 'port', RELAY_DEFAULTS.port, 0)
  if (port > 65_535) throw new RangeError('--port must be at most 65535')
  const network = values.network ?? RELAY_DEFAULTS.network
  if (!isValidNetworkName(network)) throw new RangeError('--network must be lower-case letters, digits and dashes, not ending in -t<digits>')
  const args: RelayArgs = {
    host: values.host ?? RELAY_DEFAULTS.host,
    port,
    announce: values.announce ?? [],
    anchors: (values.anchor ?? []).map(requirePeerId),
    network,
    maxReservations: positiveInt(values['max-reservations'], 'max-reservations', RELAY_DEFAULTS.maxReservations),
    maxReservationsPerHost: positiveInt(values['max-per-host'], 'max-per-host', RELAY_DEFAULTS.maxReservationsPerHost),
    maxConnectionsPerHost: positiveInt(values['max-conns-per-host'], 'max-conns-per-host', RELAY_DEFAULTS.maxConnectionsPerHost)
  }
  if (values['key-file'] !== undefined) args.keyFile = values['key-file']
  if (values['history-file'] !== undefined) args.historyFile = values['history-file']
  if (values['bootstrap-out'] !== undefined) args.bootstrapOut = values['bootstrap-out']
  const gateway = gatewayArgsOf(values)
  if (gateway !== undefined) args.gateway = gateway
  const tls = tlsFilesOf(values['tls-cert'], values['tls-key'])
  if (tls !== undefined) {
    args.tls = tls
    for (const addr of args.announce) requireSecureWebSocket(addr)
  }
  return args
}

function requirePeerId (text: string): string {
  try {
    return peerIdFromString(text).toString()
  } catch {
    throw new RangeError(`--anchor ${text} is not a peer id`)
  }
}

function tlsFilesOf (certFile: string | undefined, keyFile: string | undefined): RelayTlsFiles | undefined {
  if (certFile === undefined && keyFile === undefined) return undefined
  if (certFile === undefined || keyFile === undefined) {
    throw new RangeError(`--tls-cert and --tls-key go together: ${certFile === undefined ? '--tls-cert' : '--tls-key'} is missing`)
  }
  if (certFile.trim() === '' || keyFile.trim() === '') throw new RangeError('--tls-cert and --tls-key need file paths')
  return { certFile, keyFile }
}

/**
 * A relay with its own TLS listens only on wss: announcing a plain ws address would hand browsers
 * an address that reaches nothing (and that an https page may not open anyway).
 */
function requireSecureWebSocket (addr: string): void {
  let secure: boolean
  try {
    secure = WebSocketsSecure.matches(multiaddr(addr))
  } catch {
    throw new RangeError(`--announce ${addr} is not a multiaddr`)
  }
  if (!secure) throw new RangeError(`--announce ${addr} must be a /tls/ws or /wss address when --tls-cert is given`)
}
