import '../src/relay/polyfills.ts'
import { DEFAULT_API_KEYS_FILE } from '../src/gateway/args.ts'
import { GATEWAY_DEFAULTS } from '../src/gateway/gateway.ts'
import { launchGateway, shellLines } from '../src/gateway/launch.ts'
import { loadOrCreateKey } from '../src/relay/key-file.ts'
import { RELAY_DEFAULTS, startRelay } from '../src/relay/relay.ts'
import { freePort } from './free-port.ts'
import { serveBuiltApp } from './serve-built.ts'
import { defaultModelsDir } from './serve-plugin.ts'

/**
 * `npm start`: starts a bootstrap relay on 127.0.0.1 and serves the app with that relay in its
 * bootstrap.json, so a fresh checkout runs a node with no outside network. The npm script builds the
 * app first with Vite's own command: built from here, under tsx's module hooks, the same build took
 * more than twice as long (23 s against about 10 s on a fresh clone).
 */
const host = '127.0.0.1'
const network = 'dev'

const privateKey = await loadOrCreateKey('.relay-key')
const relay = await startRelay({
  ...RELAY_DEFAULTS,
  privateKey,
  host,
  port: await freePort(Number(process.env.RELAY_PORT ?? RELAY_DEFAULTS.port), host),
  announce: [],
  network,
  historyFile: '.relay-history.json'
})

// The OpenAI-compatible gateway beside the relay, with a key made for this machine and kept.
const { gateway, firstKey } = await launchGateway(relay, privateKey, network, {
  host,
  port: await freePort(Number(process.env.GATEWAY_PORT ?? GATEWAY_DEFAULTS.port), host),
  apiKeysFile: DEFAULT_API_KEYS_FILE,
  maxBodyBytes: GATEWAY_DEFAULTS.maxBodyBytes
})

const modelsDir = defaultModelsDir()
const server = await serveBuiltApp({ host, port: await freePort(Number(process.env.PORT ?? 5173), host), bootstrap: { network, bootstrap: relay.addrs } })

console.log(`\nHyperspace node: ${server.resolvedUrls?.local[0] ?? `http://${host}`}`)
console.log(`Bootstrap relay: ${relay.addrs.join(', ')}`)
console.log(modelsDir !== undefined ? `Local models:    ${modelsDir} at /models/` : 'Local models:    none (set HYPERSPACE_MODELS_DIR)')
console.log('Open the URL in Chrome or Edge; each browser profile is its own node. Ctrl-C stops.')
console.log(`\nOpenAI-compatible gateway (API key kept in ${DEFAULT_API_KEYS_FILE}); paste into a shell:\n${shellLines(gateway.baseUrl, firstKey)}`)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void gateway.stop().finally(() => Promise.allSettled([relay.stop(), server.close()])).finally(() => process.exit(0))
  })
}
