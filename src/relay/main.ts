import './polyfills.ts'
import { writeFile } from 'node:fs/promises'
import { RELAY_DEFAULTS, startRelay } from './relay.ts'
import { RELAY_USAGE, parseRelayArgs, type RelayArgs } from './args.ts'
import { loadOrCreateKey } from './key-file.ts'
import { readRelayTls, RelayTlsError, type RelayTls } from './tls-files.ts'
import { launchGateway, shellLines, type LaunchedGateway } from '../gateway/launch.ts'

let args: RelayArgs
let tls: RelayTls | undefined
try {
  args = parseRelayArgs(process.argv.slice(2))
  if (args.tls !== undefined) tls = await readRelayTls(args.tls)
} catch (err) {
  // A bad file is not a usage mistake: the usage text would bury the one line that matters.
  console.error(err instanceof RelayTlsError ? `relay: ${err.message}` : `relay: ${(err as Error).message}\n\n${RELAY_USAGE}`)
  process.exit(2)
}

const privateKey = await loadOrCreateKey(args.keyFile)
const relay = await startRelay({
  privateKey,
  host: args.host,
  port: args.port,
  announce: args.announce,
  network: args.network,
  maxReservations: args.maxReservations,
  maxReservationsPerHost: args.maxReservationsPerHost,
  maxConnectionsPerHost: args.maxConnectionsPerHost,
  maxProvidersPerPeer: RELAY_DEFAULTS.maxProvidersPerPeer,
  maxProviders: RELAY_DEFAULTS.maxProviders,
  maxTopics: RELAY_DEFAULTS.maxTopics,
  ...(tls !== undefined ? { tls } : {}),
  ...(args.historyFile !== undefined ? { historyFile: args.historyFile } : {}),
  anchors: args.anchors
})

console.log(`relay ${relay.libp2p.peerId.toString()} on network ${args.network}`)
for (const addr of relay.addrs) console.log(`listening ${addr}`)
if (args.bootstrapOut !== undefined) {
  await writeFile(args.bootstrapOut, JSON.stringify({ network: args.network, bootstrap: relay.addrs }, null, 2) + '\n')
  console.log(`wrote ${args.bootstrapOut}`)
}

let gateway: LaunchedGateway | undefined
if (args.gateway !== undefined) {
  try {
    gateway = await launchGateway(relay, privateKey, args.network, args.gateway)
  } catch (err) {
    console.error(`gateway: ${(err as Error).message}`)
    await relay.stop()
    process.exit(2)
  }
  console.log(`gateway ${gateway.gateway.baseUrl} (API keys in ${args.gateway.apiKeysFile})`)
  // The key is printed only when it was just made: an existing file's keys are its owner's to hand out.
  if (gateway.created) console.log(shellLines(gateway.gateway.baseUrl, gateway.firstKey))
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void (gateway?.gateway.stop() ?? Promise.resolve()).finally(() => relay.stop()).finally(() => process.exit(0))
  })
}
