import { defineConfig } from '@playwright/test'

/**
 * Chromium flags that work on a closed network: no background traffic to Google, mDNS host names off
 * so ICE offers real (loopback-reachable) candidates, and WebGPU on (SwiftShader when there is no GPU).
 */
export const CHROMIUM_ARGS = [
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  // One --disable-features counts (the last), so this one also holds what Playwright's own list must keep off here:
  // Chromium's per-window omnibox pop-up pages (two renderers a window) and its calls to Google's services.
  '--disable-features=WebRtcHideLocalIpsWithMdns,WebUIOmniboxPopup,WebUIOmniboxAimPopup,AimEnabled,OptimizationHints,NetworkTimeServiceQuerying,PreconnectToSearch,MediaRouter',
  '--enable-unsafe-webgpu'
]

/**
 * The flags above, and nothing resolves but this machine: a page's default downloads (a model hub) can
 * never leave it from a test, which reaches its own servers on 127.0.0.1. (The lab's pages reach
 * addresses inside its network namespaces, so it launches with CHROMIUM_ARGS.)
 */
export const TEST_CHROMIUM_ARGS = [...CHROMIUM_ARGS, '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost']

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

export const APP_PORT = Number(process.env.E2E_APP_PORT ?? 4173)

export default defineConfig({
  testDir: 'tests/e2e',
  timeout: 120_000,
  expect: { timeout: 30_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [['list']],
  use: {
    baseURL: `http://127.0.0.1:${APP_PORT}`,
    browserName: 'chromium',
    launchOptions: {
      executablePath: CHROMIUM_PATH,
      args: TEST_CHROMIUM_ARGS
    },
    trace: 'off'
  },
  webServer: {
    command: `npx vite preview --host 127.0.0.1 --port ${APP_PORT} --strictPort`,
    url: `http://127.0.0.1:${APP_PORT}/`,
    reuseExistingServer: false,
    timeout: 60_000
  }
})
