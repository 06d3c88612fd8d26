/**
 * `npx tsx bench/trace-startup.ts [runs]`: where a page's way to its first direct WebRTC peer goes.
 * Opens 3 pages at once against a fresh relay (as bench/run.ts does) and records, in each page, when
 * the browser calls that start-up makes begin and end (bootstrap.json, IndexedDB opens, WebGPU probe,
 * workers, WebSockets, peer connections) and the node's libp2p events, then prints a merged timeline
 * per page and merged across pages (ms since navigation start). A profiling aid: no figures are recorded.
 * TRACE_BUILD=0 skips the build; TRACE_DEBUG=<namespaces> turns libp2p's debug log on in page 0;
 * TRACE_PROFILE=1 writes page 0's CPU profile and TRACE_RELAY_PROF=<dir> the relay's, both to files.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium, type Page } from '@playwright/test'
import { CHROMIUM_ARGS } from '../playwright.config.ts'
import { acceptLinkSettingsAhead, appUrl } from '../tests/e2e/nodes.ts'
import { startRelayProcess } from '../tests/e2e/relay-process.ts'
import { NAME_SHIM } from './probe.ts'
import { ensureBuild, startPreview } from './procs.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const NODES = 3
const RUNS = Number(process.argv[2] ?? 1)

declare global {
  interface Window { __trace?: Array<[number, string]> }
}

/** Init script: wraps the browser calls start-up makes and follows libp2p's events once the node exists. */
function installTrace (): void {
  const trace: Array<[number, string]> = []
  window.__trace = trace
  const mark = (what: string): void => { trace.push([Math.round(performance.now()), what]) }
  const NativeWebSocket = window.WebSocket
  window.WebSocket = class extends NativeWebSocket {
    constructor (url: string | URL, protocols?: string | string[]) {
      super(url, protocols)
      mark(`ws new ${String(url)}`)
      this.addEventListener('open', () => { mark('ws open') })
    }
  }
  const NativePc = window.RTCPeerConnection
  let pcs = 0
  window.RTCPeerConnection = class extends NativePc {
    constructor (config?: RTCConfiguration) {
      super(config)
      const n = ++pcs
      mark(`pc${n} new`)
      this.addEventListener('connectionstatechange', () => { mark(`pc${n} ${this.connectionState}`) })
    }
  }
  const NativeWorker = window.Worker
  window.Worker = class extends NativeWorker {
    constructor (url: string | URL, options?: WorkerOptions) {
      super(url, options)
      mark(`worker new ${options?.name ?? String(url).split('/').pop() ?? ''}`)
    }
  }
  const open = indexedDB.open.bind(indexedDB)
  indexedDB.open = (name: string, version?: number) => {
    mark(`idb open ${name}`)
    const request = open(name, version)
    request.addEventListener('success', () => { mark(`idb opened ${name}`) })
    return request
  }
  const nativeFetch = window.fetch.bind(window)
  window.fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = input instanceof Request ? input.url : String(input)
    mark(`fetch ${url.split('/').pop() ?? url}`)
    const response = await nativeFetch(input, init)
    mark(`fetched ${url.split('/').pop() ?? url}`)
    return response
  }
  const gpu = (navigator as unknown as { gpu?: { requestAdapter: (o?: unknown) => Promise<unknown> } }).gpu
  if (gpu !== undefined) {
    const request = gpu.requestAdapter.bind(gpu)
    gpu.requestAdapter = async (o?: unknown) => {
      mark('gpu requestAdapter')
      const adapter = await request(o)
      mark('gpu adapter')
      return adapter
    }
  }
  for (const level of ['debug', 'log', 'info'] as const) {
    const native = console[level].bind(console)
    console[level] = (...args: unknown[]) => {
      const text = args.map(a => String(a)).join(' ')
      if (text.includes('libp2p')) mark(text.replace(/%c/g, '').slice(0, 160))
      else native(...args)
    }
  }
  document.addEventListener('DOMContentLoaded', () => { mark('DOMContentLoaded') })
  let hooked = false
  const timer = setInterval(() => {
    const api = window.hyperspace as (typeof window.hyperspace & { libp2p?: EventTarget & { getMultiaddrs: () => unknown[] } }) | undefined
    if (api === undefined || hooked) return
    hooked = true
    clearInterval(timer)
    mark('api')
    setTimeout(() => { for (const m of performance.getEntriesByType('mark')) trace.push([Math.round(m.startTime), `mark ${m.name}`]) }, 8000)
    for (const entry of performance.getEntriesByType('resource') as PerformanceResourceTiming[]) {
      if (entry.name.endsWith('.js')) trace.push([Math.round(entry.responseEnd), `script loaded ${entry.name.split('/').pop() ?? ''}`])
    }
    let lastState = ''
    api.addEventListener('status', evt => {
      const s = evt.detail
      const state = `${s.state} relays=${s.relays.map(r => `${r.connected ? 'c' : '-'}${r.reserved ? 'r' : '-'}`).join(',')}`
      if (state !== lastState) mark(`status ${state}`)
      lastState = state
    })
    const libp2p = api.libp2p as (EventTarget & { dial?: (addr: unknown, o?: unknown) => Promise<unknown>, services?: { pubsub?: EventTarget } }) | undefined
    if (libp2p === undefined) return
    const dial = libp2p.dial?.bind(libp2p)
    if (dial !== undefined) {
      libp2p.dial = async (addr: unknown, o?: unknown) => {
        const what = String(addr).slice(-6)
        mark(`dial ${String(addr).includes('webrtc') ? 'webrtc' : 'other'} ${what}`)
        try { const c = await dial(addr, o); mark(`dialled ${what}`); return c } catch (err) { mark(`dial failed ${what} ${String(err).slice(0, 60)}`); throw err }
      }
    }
    libp2p.services?.pubsub?.addEventListener('message', (evt: Event) => {
      const m = (evt as CustomEvent<{ topic: string, from?: unknown }>).detail
      if (m.topic.includes('capabilities')) mark(`gossip from ${String(m.from).slice(-6)}`)
    })
    libp2p.services?.pubsub?.addEventListener('subscription-change', (evt: Event) => {
      const d = (evt as CustomEvent<{ peerId: unknown, subscriptions: Array<{ topic: string, subscribe: boolean }> }>).detail
      mark(`subscriptions of ${String(d.peerId).slice(-6)}: ${d.subscriptions.filter(x => x.topic.includes('capabilities')).length} capabilities`)
    })
    for (const event of ['connection:open', 'peer:identify', 'transport:listening', 'self:peer:update', 'peer:discovery', 'peer:update', 'connection:close']) {
      libp2p.addEventListener(event, (evt: Event) => {
        const detail = (evt as CustomEvent<Record<string, unknown> & { remotePeer?: unknown, peerId?: unknown, id?: unknown, peer?: { id?: unknown }, direct?: boolean, remoteAddr?: unknown }>).detail
        const who = String(detail?.remotePeer ?? detail?.peerId ?? detail?.peer?.id ?? detail?.id ?? '').slice(-6)
        const extra = event === 'connection:open' || event === 'connection:close' ? ` ${String(detail?.remoteAddr ?? '').includes('/webrtc') ? 'webrtc' : 'other'}` : ''
        mark(`${event} ${who}${extra}`)
      })
    }
  }, 1)
}

if (process.env.TRACE_BUILD !== '0') await ensureBuild(ROOT)
/** The relay with V8's CPU profiler on, written to `dir` when it stops. */
async function profiledRelay (dir: string): Promise<{ addr: string, stop: () => Promise<void> }> {
  const child = spawn(process.execPath, ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', '500', '--import', 'tsx', 'src/relay/main.ts', '--host', '127.0.0.1', '--port', '0', '--key-file', join(mkdtempSync(join(tmpdir(), 'hs-relay-')), 'relay.key')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
  const addr = await new Promise<string>(resolve => {
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); const m = /listening (\S+)/.exec(out); if (m?.[1] !== undefined) resolve(m[1]) })
  })
  return { addr, stop: async () => { child.kill('SIGINT'); await new Promise(resolve => child.once('exit', resolve)) } }
}

const preview = await startPreview(ROOT, 4420)
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: CHROMIUM_ARGS })
try {
  for (let run = 0; run < RUNS; run++) {
    const relay = process.env.TRACE_RELAY_PROF !== undefined ? await profiledRelay(process.env.TRACE_RELAY_PROF) : await startRelayProcess()
    const url = appUrl([relay.addr])
    const pages: Page[] = []
    try {
      for (let i = 0; i < NODES; i++) {
        const context = await browser.newContext({ baseURL: preview.url })
        await context.addInitScript(NAME_SHIM)
        await acceptLinkSettingsAhead(context, url)
        await context.addInitScript(installTrace)
        if (process.env.TRACE_DEBUG !== undefined && i === 0) await context.addInitScript(ns => { localStorage.setItem('debug', ns) }, process.env.TRACE_DEBUG)
        pages.push(await context.newPage())
      }
      const first = pages[0]
      const cdp = process.env.TRACE_PROFILE === '1' && first !== undefined ? await first.context().newCDPSession(first) : undefined
      if (cdp !== undefined) { await cdp.send('Profiler.enable'); await cdp.send('Profiler.setSamplingInterval', { interval: 200 }); await cdp.send('Profiler.start') }
      await Promise.all(pages.map(async page => await page.goto(url, { waitUntil: 'commit' })))
      await Promise.all(pages.map(async page => {
        await page.waitForFunction(n => (window.hyperspace?.peers() ?? []).filter(p => p.transport === 'webrtc').length >= n, NODES - 1, { timeout: 45_000, polling: 50 })
      }))
      if (cdp !== undefined) {
        const { profile } = await cdp.send('Profiler.stop')
        writeFileSync(join(tmpdir(), `hs-trace-page0-run${run}.cpuprofile`), JSON.stringify(profile))
      }
      const merged: Array<[number, string]> = []
      const origins = await Promise.all(pages.map(async page => await page.evaluate(() => performance.timeOrigin)))
      const origin = Math.min(...origins)
      for (const [i, page] of pages.entries()) {
        const trace = await page.evaluate(() => window.__trace ?? [])
        const peerId = await page.evaluate(() => window.hyperspace?.status().peerId ?? '')
        console.log(`\n--- run ${run + 1} page ${i} (${peerId.slice(-6)})`)
        for (const [t, what] of trace.sort((x, y) => x[0] - y[0])) {
          console.log(`${String(t).padStart(6)}  ${what}`)
          merged.push([Math.round(t + (origins[i] ?? origin) - origin), `p${i} ${what}`])
        }
      }
      console.log(`\n--- run ${run + 1} merged (ms since the first page's navigation)`)
      for (const [t, what] of merged.sort((x, y) => x[0] - y[0])) console.log(`${String(t).padStart(6)}  ${what}`)
    } finally {
      for (const page of pages) await page.context().close()
      await relay.stop()
    }
  }
} finally {
  await browser.close()
  await preview.close()
}
