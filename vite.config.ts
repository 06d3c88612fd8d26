import { svelte } from '@sveltejs/vite-plugin-svelte'
import { defineConfig } from 'vite'
import { VitePWA } from 'vite-plugin-pwa'
import { proverWasm } from './scripts/build-prover.ts'
import { ISOLATION_HEADERS, defaultModelsDir, hyperspaceServe } from './scripts/serve-plugin.ts'
import { webLlmRecords } from './scripts/webllm-records.ts'
import { webRtcInitChannel, webRtcInitChannelDeps } from './scripts/webrtc-init-channel.ts'

const ENGINE_ASSETS = ['assets/wllama-*.wasm', 'assets/webllm-engine-*.js', 'assets/ort-wasm*.wasm']
const ENGINE_ASSET_URL = /\/assets\/(wllama-[^/]*\.wasm|webllm-engine-[^/]*\.js|ort-wasm[^/]*\.wasm)$/

export default defineConfig({
  plugins: [
    proverWasm(),
    webLlmRecords(),
    webRtcInitChannel(),
    svelte(),
    hyperspaceServe({ modelsDir: defaultModelsDir() }),
    VitePWA({
      registerType: 'prompt',
      injectRegister: false,
      includeAssets: ['icon.svg'],
      manifest: {
        name: 'Hyperspace node',
        short_name: 'Hyperspace',
        description: 'Your browser as a peer of the Hyperspace AI inference network',
        theme_color: '#0b1020',
        background_color: '#0b1020',
        display: 'standalone',
        start_url: '.',
        scope: '.',
        icons: [
          { src: 'icon-192.png', sizes: '192x192', type: 'image/png' },
          { src: 'icon-512.png', sizes: '512x512', type: 'image/png' },
          { src: 'icon-512-maskable.png', sizes: '512x512', type: 'image/png', purpose: 'maskable' }
        ]
      },
      workbox: {
        globPatterns: ['**/*.{js,css,html,svg,png,webmanifest,wasm}'],
        // The relay list changes with the deployment: always ask the network, fall back to the last copy.
        // Engines (web-llm, llama.cpp and ONNX Runtime builds, 6–27 MB each) are cached when first used,
        // not at install: most users run one of them, and the app shell must install fast.
        globIgnores: ['bootstrap.json', ...ENGINE_ASSETS],
        navigateFallback: 'index.html',
        navigateFallbackDenylist: [/^\/models\//],
        runtimeCaching: [
          { urlPattern: /\/bootstrap\.json$/, handler: 'NetworkFirst', options: { cacheName: 'bootstrap', networkTimeoutSeconds: 3 } },
          { urlPattern: ENGINE_ASSET_URL, handler: 'CacheFirst', options: { cacheName: 'engines', expiration: { maxEntries: 16 } } }
        ],
        cleanupOutdatedCaches: true
      }
    })
  ],
  build: {
    target: 'es2022',
    // ORT's thread workers would re-run the app through the polyfill (see docs/internals.md).
    modulePreload: { polyfill: false },
    rolldownOptions: {
      output: {
        // What the page needs before it is online in one chunk: left alone, Rolldown cuts what the
        // lazy chunks (jobs, DHT, lower panels) share with it into a dozen small chunks, which the
        // page loads all the same and which gzip 4 KB worse (docs/internals.md, "Initial JS").
        // The group takes main.ts's imports and everything they import statically.
        codeSplitting: { groups: [{ name: 'app', test: /\/src\/(ui\/App\.svelte|node\/boot\.ts)$/ }] }
      }
    }
  },
  // Worker bundles get their own plugin instances: only the records module is needed there.
  worker: { format: 'es', plugins: () => [webLlmRecords()] },
  optimizeDeps: { rolldownOptions: { plugins: [webRtcInitChannelDeps] } },
  server: { headers: ISOLATION_HEADERS },
  preview: { headers: ISOLATION_HEADERS }
})
