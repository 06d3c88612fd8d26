import '../src/relay/polyfills.ts'
import { build, preview } from 'vite'
import { loadOrCreateKey } from '../src/relay/key-file.ts'
import { RELAY_DEFAULTS, startRelay } from '../src/relay/relay.ts'
import { freePort } from './free-port.ts'
import { defaultModelsDir, hyperspaceServe } from './serve-plugin.ts'

/**
 * `npm start`: builds the app, starts a bootstrap relay on 127.0.0.1 and serves the app with that
 * relay in its bootstrap.json, so a fresh checkout runs a node with no outside network.
 */
const host = '127.0.0.1'
const network = 'dev'

await build({ logLevel: 'error' })

const relay = await startRelay({
  ...RELAY_DEFAULTS,
  privateKey: await loadOrCreateKey('.relay-key'),
  host,
  port: await freePort(Number(process.env.RELAY_PORT ?? RELAY_DEFAULTS.port), host),
  announce: [],
  network
})

const modelsDir = defaultModelsDir()
const server = await preview({
  preview: { host, port: await freePort(Number(process.env.PORT ?? 5173), host), strictPort: true },
  plugins: [hyperspaceServe({ bootstrap: { network, bootstrap: relay.addrs } })]
})

console.log(`\nHyperspace node: ${server.resolvedUrls?.local[0] ?? `http://${host}`}`)
console.log(`Bootstrap relay: ${relay.addrs.join(', ')}`)
console.log(modelsDir !== undefined ? `Local models:    ${modelsDir} at /models/` : 'Local models:    none (set HYPERSPACE_MODELS_DIR)')
console.log('Open the URL in Chrome or Edge; each browser profile is its own node. Ctrl-C stops.')

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void Promise.allSettled([relay.stop(), server.close()]).finally(() => process.exit(0))
  })
}
