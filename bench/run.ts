/**
 * `npm run bench`: network start-up benchmark of the browser node, all on 127.0.0.1.
 *
 * 1. RUNS × (fresh relay process, NODES fresh browser contexts opened concurrently): in-page times from
 *    navigation start to relay connected (a), reservation (b), first direct WebRTC peer (c) and the full
 *    WebRTC mesh (d), recorded by a 5 ms poller installed with addInitScript.
 * 2. The JavaScript loaded when the node first goes 'online', sized raw and gzip -9 from dist/.
 * 3. Same-run references: a raw WebSocket open to the relay, a local RTCPeerConnection pair and the
 *    pages' own DOMContentLoaded and earlier milestones, so the numbers are read as ratios rather than
 *    absolute claims.
 *
 * Prints a table to stdout and writes every raw sample to bench/results/network.json.
 */
import { existsSync, readFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { chromium, type Browser, type BrowserContext, type Page } from '@playwright/test'
import { CHROMIUM_ARGS } from '../playwright.config.ts'
import { acceptLinkSettingsAhead, appUrl } from '../tests/e2e/nodes.ts'
import { startRelayProcess, type RelayProcess } from '../tests/e2e/relay-process.ts'
import { NAME_SHIM, installProbe, rtcOpenOnce, wsOpenOnce, type BenchProbe, type ScriptEntry } from './probe.ts'
import { ensureBuild, startPreview, withTimeout, type PreviewServer } from './procs.ts'
import { figure, recordFigures } from './figures.ts'
import { fmt, fmtRatio, ratio, spread, summarize, table, type Summary } from './stats.ts'
import { gitRevision, writeResults } from './results.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const RUNS = 5
const NODES = 3
const REFERENCE_SAMPLES = 20
const MESH_TIMEOUT_MS = 45_000
const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const REFERENCE_FILES = ['bootstrap.json', 'icon.svg', 'manifest.webmanifest']

interface PairDial {
  pages: [number, number]
  /** Epoch ms at which either side first listed the other as a webrtc peer. */
  directAt: number | null
  /** Headline estimate: directAt − max(reserved of both pages). */
  dialMs: number | null
  /** Alternative: directAt − max(reserved of the listener (higher id), relay connected of the dialer (lower id)). */
  dialFromDialerMs: number | null
}

interface RunResult {
  run: number
  relayAddr: string
  probes: Array<BenchProbe | null>
  pageErrors: string[]
  /** max over pages of (d); null when some page never saw the full mesh. */
  fullMeshMs: number | null
  pairs: PairDial[]
  error?: string
}

// ---- cleanup: everything started here is registered and torn down in reverse order ----
const cleanups: Array<{ what: string, fn: () => Promise<void> }> = []
function onCleanup (what: string, fn: () => Promise<void>): () => Promise<void> {
  const entry = { what, fn }
  cleanups.push(entry)
  return async () => {
    const i = cleanups.indexOf(entry)
    if (i >= 0) cleanups.splice(i, 1)
    await withTimeout(what, 15_000, fn)
  }
}
async function cleanupAll (): Promise<void> {
  while (cleanups.length > 0) {
    const entry = cleanups.pop()
    if (entry === undefined) break
    try { await withTimeout(entry.what, 15_000, entry.fn) } catch (err) { console.error(`bench: cleanup of ${entry.what} failed: ${String(err).split('\n')[0]}`) }
  }
}
// `on`, not `once`: Ctrl-C reaches this process twice (from the terminal and forwarded by tsx), and a
// second signal without a listener would kill it before the cleanup is done.
let interrupted = false
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) return
    interrupted = true
    console.error(`bench: ${signal}, cleaning up`)
    void cleanupAll().finally(() => process.exit(130))
  })
}
/** Synchronous last resort at exit for what lives in its own process group (vite preview). */
const onExit: Array<() => void> = []
process.on('exit', () => { for (const fn of onExit) fn() })

async function startRelay (): Promise<{ relay: RelayProcess, stop: () => Promise<void> }> {
  const relay = await startRelayProcess()
  const stop = onCleanup(`relay ${relay.port}`, async () => {
    try { await withTimeout('relay stop', 5_000, relay.stop) } catch { await relay.kill() }
  })
  return { relay, stop }
}

async function newContext (browser: Browser, preview: PreviewServer): Promise<{ context: BrowserContext, close: () => Promise<void> }> {
  const context = await browser.newContext({ baseURL: preview.url })
  const close = onCleanup('browser context', async () => { await context.close() })
  await context.addInitScript(NAME_SHIM)
  return { context, close }
}

/**
 * A page for the in-page references that does not start a node: a static file of the app's own server,
 * so it is a secure, cross-origin isolated loopback document like the app. (A page Playwright makes up,
 * about:blank or a routed response, has no loopback address, and Chromium's local network access
 * checks then block WebSockets to 127.0.0.1.)
 */
async function referencePage (context: BrowserContext): Promise<Page> {
  const file = REFERENCE_FILES.find(f => existsSync(join(ROOT, 'dist', f)))
  if (file === undefined) throw new Error(`none of ${REFERENCE_FILES.join(', ')} in dist/ for the reference page`)
  const page = await context.newPage()
  await page.goto(`/${file}`)
  return page
}

function epoch (probe: BenchProbe | null, t: number | null | undefined): number | null {
  return probe === null || t === null || t === undefined ? null : probe.timeOrigin + t
}

function pairDials (probes: Array<BenchProbe | null>): PairDial[] {
  const pairs: PairDial[] = []
  for (let i = 0; i < probes.length; i++) {
    for (let j = i + 1; j < probes.length; j++) {
      const p = probes[i] ?? null
      const q = probes[j] ?? null
      if (p === null || q === null) { pairs.push({ pages: [i, j], directAt: null, dialMs: null, dialFromDialerMs: null }); continue }
      const seen = [epoch(p, p.webrtcPeers[q.peerId]), epoch(q, q.webrtcPeers[p.peerId])].filter((v): v is number => v !== null)
      const directAt = seen.length > 0 ? Math.min(...seen) : null
      const reservedP = epoch(p, p.reserved)
      const reservedQ = epoch(q, q.reserved)
      const bothReserved = reservedP !== null && reservedQ !== null ? Math.max(reservedP, reservedQ) : null
      // The lower peer id dials (src/net/direct-dialer.ts); it needs a relay connection, the listener a reservation.
      const [dialer, listener] = p.peerId < q.peerId ? [p, q] : [q, p]
      const dialerReady = epoch(dialer, dialer.relayConnected)
      const listenerReady = epoch(listener, listener.reserved)
      const fromDialer = dialerReady !== null && listenerReady !== null ? Math.max(dialerReady, listenerReady) : null
      pairs.push({
        pages: [i, j],
        directAt,
        dialMs: directAt !== null && bothReserved !== null ? directAt - bothReserved : null,
        dialFromDialerMs: directAt !== null && fromDialer !== null ? directAt - fromDialer : null
      })
    }
  }
  return pairs
}

async function measureRun (browser: Browser, preview: PreviewServer, run: number, afterMesh?: (relay: RelayProcess) => Promise<void>): Promise<RunResult> {
  const { relay, stop: stopRelay } = await startRelay()
  const result: RunResult = { run, relayAddr: relay.addr, probes: [], pageErrors: [], fullMeshMs: null, pairs: [] }
  const opened: Array<{ context: BrowserContext, close: () => Promise<void> }> = []
  try {
    const pages: Page[] = []
    const url = appUrl([relay.addr])
    for (let i = 0; i < NODES; i++) {
      const ctx = await newContext(browser, preview)
      opened.push(ctx)
      await acceptLinkSettingsAhead(ctx.context, url)
      await ctx.context.addInitScript(installProbe, NODES - 1)
      const page = await ctx.context.newPage()
      page.on('pageerror', err => { result.pageErrors.push(`page ${i}: ${err.message}`) })
      pages.push(page)
    }
    await Promise.all(pages.map(async page => await page.goto(url, { waitUntil: 'commit' })))
    const waits = await Promise.allSettled(pages.map(async page => {
      await page.waitForFunction(() => window.__bench?.done === true, null, { timeout: MESH_TIMEOUT_MS, polling: 100 })
    }))
    result.probes = await Promise.all(pages.map(async page => await page.evaluate(() => window.__bench ?? null).catch(() => null)))
    const failed = waits.map((w, i) => w.status === 'rejected' ? i : -1).filter(i => i >= 0)
    if (failed.length > 0) result.error = `pages ${failed.join(',')} did not reach all milestones in ${MESH_TIMEOUT_MS} ms`
    const meshes = result.probes.map(p => p?.fullMesh ?? null)
    result.fullMeshMs = meshes.every(m => m !== null) ? Math.max(...meshes as number[]) : null
    result.pairs = pairDials(result.probes)
    for (const ctx of opened.splice(0)) await ctx.close()
    if (afterMesh !== undefined) await afterMesh(relay)
  } catch (err) {
    result.error = (err as Error).stack ?? String(err)
  } finally {
    for (const ctx of opened.splice(0)) await ctx.close().catch(() => {})
    await stopRelay()
  }
  return result
}

async function wsReference (browser: Browser, preview: PreviewServer, relay: RelayProcess): Promise<number[]> {
  const { context, close } = await newContext(browser, preview)
  try {
    const page = await referencePage(context)
    const samples: number[] = []
    for (let i = 0; i < REFERENCE_SAMPLES; i++) {
      samples.push(await page.evaluate(wsOpenOnce, `ws://127.0.0.1:${relay.port}`))
      await page.waitForTimeout(50)
    }
    return samples
  } finally {
    await close()
  }
}

async function rtcReference (browser: Browser, preview: PreviewServer): Promise<number[]> {
  const { context, close } = await newContext(browser, preview)
  try {
    const page = await referencePage(context)
    const samples: number[] = []
    for (let i = 0; i < REFERENCE_SAMPLES; i++) {
      samples.push(await page.evaluate(rtcOpenOnce))
      await page.waitForTimeout(50)
    }
    return samples
  } finally {
    await close()
  }
}

interface JsFile { path: string, initiatorType: string, rawBytes: number | null, gzipBytes: number | null }

function sizeScripts (scripts: ScriptEntry[]): { files: JsFile[], rawBytes: number, gzipBytes: number, missing: string[] } {
  const files: JsFile[] = []
  const missing: string[] = []
  for (const script of scripts) {
    const file = join(ROOT, 'dist', decodeURIComponent(script.path))
    let raw: Buffer
    try { raw = readFileSync(file) } catch { missing.push(script.path); files.push({ path: script.path, initiatorType: script.initiatorType, rawBytes: null, gzipBytes: null }); continue }
    files.push({ path: script.path, initiatorType: script.initiatorType, rawBytes: raw.length, gzipBytes: gzipSync(raw, { level: 9 }).length })
  }
  return {
    files,
    rawBytes: files.reduce((sum, f) => sum + (f.rawBytes ?? 0), 0),
    gzipBytes: files.reduce((sum, f) => sum + (f.gzipBytes ?? 0), 0),
    missing
  }
}

async function main (): Promise<number> {
  process.chdir(ROOT) // the relay child is started by relative path
  const started = Date.now()
  const failures: string[] = []
  const built = await ensureBuild(ROOT)
  const preview = await startPreview(ROOT)
  onCleanup('vite preview', preview.close)
  onExit.push(preview.killNow)
  console.error(`bench: app on ${preview.url}`)

  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS })
  onCleanup('chromium', async () => { await browser.close() })

  const runs: RunResult[] = []
  let wsSamples: number[] = []
  for (let run = 0; run < RUNS; run++) {
    const last = run === RUNS - 1
    // The raw WebSocket reference goes to the last run's relay once that run's pages are closed.
    const result = await measureRun(browser, preview, run, last
      ? async relay => { wsSamples = await wsReference(browser, preview, relay) }
      : undefined)
    runs.push(result)
    console.error(`bench: run ${run + 1}/${RUNS}: full mesh ${fmt(result.fullMeshMs, 'ms')}${result.error !== undefined ? ` (${result.error.split('\n')[0]})` : ''}`)
    if (result.error !== undefined) failures.push(`run ${run + 1}: ${result.error}`)
  }
  const rtcSamples = await rtcReference(browser, preview)

  // ---- summaries ----
  const probes = runs.flatMap(r => r.probes)
  const a = summarize(probes.map(p => p?.relayConnected))
  const b = summarize(probes.map(p => p?.reserved))
  const c = summarize(probes.map(p => p?.firstWebrtc))
  const api = summarize(probes.map(p => p?.api))
  const domContentLoaded = summarize(probes.map(p => p?.domContentLoaded))
  const online = summarize(probes.map(p => p?.online))
  const mesh = summarize(runs.map(r => r.fullMeshMs))
  const dial = summarize(runs.flatMap(r => r.pairs.map(p => p.dialMs)))
  const dialFromDialer = summarize(runs.flatMap(r => r.pairs.map(p => p.dialFromDialerMs)))
  const ws = summarize(wsSamples)
  const rtc = summarize(rtcSamples)

  const jsProbe = probes.find(p => p?.onlineScripts !== null && p?.onlineScripts !== undefined) ?? null
  const js = sizeScripts(jsProbe?.onlineScripts ?? [])
  if (jsProbe === null) failures.push('no page reached state online: initial JS not measured')
  if (js.missing.length > 0) failures.push(`scripts not found in dist/: ${js.missing.join(', ')}`)
  if (ws.n < REFERENCE_SAMPLES) failures.push(`WebSocket reference has ${ws.n}/${REFERENCE_SAMPLES} samples`)
  if (rtc.n < REFERENCE_SAMPLES) failures.push(`WebRTC reference has ${rtc.n}/${REFERENCE_SAMPLES} samples`)
  const kb = (bytes: number): number => bytes / 1024

  const row = (metric: string, s: Summary, reference: string, refValue: number | null): string[] =>
    [metric, fmt(s.median, 'ms'), spread(s, 'ms'), reference, fmtRatio(ratio(s.median, refValue))]
  const rows: string[][] = [
    row('window.hyperspace available', api, `its page's DOMContentLoaded ${fmt(domContentLoaded.median, 'ms')}`, domContentLoaded.median),
    row('(a) relay connected', a, `raw WebSocket open ${fmt(ws.median, 'ms', 1)}`, ws.median),
    row('(b) relay reservation', b, `(a) relay connected ${fmt(a.median, 'ms')}`, a.median),
    row("state 'online'", online, `(b) relay reservation ${fmt(b.median, 'ms')}`, b.median),
    row('(c) first direct WebRTC peer', c, `local RTCPeerConnection DC open ${fmt(rtc.median, 'ms', 1)}`, rtc.median),
    row(`full mesh of ${NODES} (max over pages of d)`, mesh, `(c) first direct peer ${fmt(c.median, 'ms')}`, c.median),
    row('libp2p direct WebRTC dial (approx.)', dial, `local RTCPeerConnection DC open ${fmt(rtc.median, 'ms', 1)}`, rtc.median),
    ['initial JS at online, gzip -9', fmt(kb(js.gzipBytes), 'KB', 1), `${js.files.length} files`, `raw ${fmt(kb(js.rawBytes), 'KB', 1)}`, fmtRatio(ratio(js.gzipBytes, js.rawBytes))]
  ]
  const browserVersion = browser.version()
  const elapsedS = (Date.now() - started) / 1000

  console.log(`\nHyperspace browser node: network bench (${RUNS} runs × ${NODES} pages, Chromium ${browserVersion}, ${cpus().length} cores, ${gitRevision()})`)
  console.log('Times are medians, in ms from each page\'s navigation start (performance.now()); (a)-(c) over all pages×runs, full mesh over runs.\n')
  console.log(table(['metric', 'median', 'spread', 'reference (same run, same browser)', 'ratio'], rows))
  console.log(`
Notes:
- window.hyperspace available: against the same pages' DOMContentLoaded (navigation timing: the document
  parsed and its module scripts run), so the ratio is what starting the node adds to loading the app.
- (b) against (a): the reservation follows the relay connection (a) over it (identify, then a HOP reservation); 'online' against
  (b): a page is online once it holds a reservation (or a direct peer), so about 1.0× says the state follows at once
  ('online' is taken at the status event, (b) at the next 5 ms poll, which a busy machine delays: below 1.0× is that).
  Full mesh against (c): what reaching every other page costs beyond reaching the first.
- (c) against a local RTCPeerConnection pair (as bench.json's mesh.firstDirectMs): like (a)/ws an overhead factor, since
  (c) also spans page load, the relay and discovering the other page's address by gossip.
- References: raw WebSocket = median of ${REFERENCE_SAMPLES} × new WebSocket('ws://127.0.0.1:<relay port>') → 'open' in a page
  (TCP + HTTP upgrade only). (a) also includes page load, JS parse, IndexedDB identity, libp2p start,
  Noise + Yamux + identify, so (a)/ws is an overhead factor, not a like-for-like dial comparison.
  (a) − window.hyperspace available: median ${fmt(summarize(probes.map(p => p !== null && p.relayConnected !== null && p.api !== null ? p.relayConnected - p.api : null)).median, 'ms')}.
- There is no dial API, so the libp2p WebRTC dial is approximated per pair of pages as
  (first time either page lists the other as a 'webrtc' peer) − max(reservation time of the two pages),
  on one clock (performance.timeOrigin + performance.now()). It includes capability gossip discovery of the
  other's circuit address, SDP signalling over the relay, ICE/DTLS/SCTP and Noise, so it over-states the dial;
  a negative sample means a page's reserved flag was published after its direct connection already existed.
  Variant from the dialer's view (lower peer id dials; max(listener reserved, dialer relay connected)):
  median ${fmt(dialFromDialer.median, 'ms')} (${spread(dialFromDialer, 'ms')}).
  Reference: median of ${REFERENCE_SAMPLES} local RTCPeerConnection pairs (iceServers: []) signalled in-page until the data channel is open.
- Initial JS: same-origin .js resources (resource timing + module scripts) loaded when status().state first
  became 'online' in one page, sized from dist/ (gzip level 9): ${js.files.map(f => `${f.path} ${fmt(f.rawBytes === null ? null : kb(f.rawBytes), 'KB', 1)}`).join(', ')}.
- Poller resolution 5 ms. Bench took ${elapsedS.toFixed(0)} s${built ? ' (including vite build)' : ''}.`)

  const out = writeResults('network', {
    chromium: browserVersion,
    runs: RUNS,
    nodes: NODES,
    referenceSamples: REFERENCE_SAMPLES,
    builtDist: built,
    elapsedMs: Date.now() - started
  }, {
    summary: {
      apiMs: api,
      domContentLoadedMs: domContentLoaded,
      relayConnectedMs: a,
      reservedMs: b,
      onlineMs: online,
      firstWebrtcMs: c,
      fullMeshMs: mesh,
      webrtcDialApproxMs: dial,
      webrtcDialFromDialerMs: dialFromDialer,
      wsOpenReferenceMs: ws,
      rtcOpenReferenceMs: rtc,
      ratios: {
        apiOverDomContentLoaded: ratio(api.median, domContentLoaded.median),
        relayConnectedOverWs: ratio(a.median, ws.median),
        reservedOverRelayConnected: ratio(b.median, a.median),
        onlineOverReserved: ratio(online.median, b.median),
        fullMeshOverFirstWebrtc: ratio(mesh.median, c.median),
        webrtcDialOverLocalRtc: ratio(dial.median, rtc.median)
      },
      initialJs: { files: js.files.length, rawKB: kb(js.rawBytes), gzipKB: kb(js.gzipBytes) }
    },
    samples: {
      runs,
      wsOpenMs: wsSamples,
      rtcOpenMs: rtcSamples,
      initialJs: js
    },
    failures
  })
  console.log(`\nRaw samples: ${out}`)
  recordFigures({
    'mesh.firstDirectMs': figure(c.median ?? NaN, 'ms', `${NODES} pages opened at once: navigation start to the first direct WebRTC peer (reference: a local RTCPeerConnection pair's data channel opening)`, rtc.median),
    'mesh.apiMs': figure(api.median ?? NaN, 'ms', "navigation start to window.hyperspace (reference: the same pages' DOMContentLoaded)", domContentLoaded.median),
    'mesh.reservedMs': figure(b.median ?? NaN, 'ms', 'navigation start to a relay reservation (reference: the relay connected, (a))', a.median),
    'mesh.onlineMs': figure(online.median ?? NaN, 'ms', `${NODES} pages opened at once: navigation start to state 'online' (reference: the relay reservation, (b))`, b.median),
    'mesh.fullMs': figure(mesh.median ?? NaN, 'ms', `${NODES} pages opened at once: navigation start to the full WebRTC mesh (reference: the first direct peer, (c))`, c.median),
    'mesh.relayConnectedMs': figure(a.median ?? NaN, 'ms', 'navigation start to the relay connected (reference: a raw WebSocket opening to it)', ws.median),
    'js.initialGzipBytes': figure(js.gzipBytes, 'bytes', 'JavaScript loaded by state online, gzip -9 (reference: the same files raw)', js.rawBytes)
  })

  if (failures.length > 0) {
    console.error(`\nbench FAILED:\n- ${failures.join('\n- ')}`)
    return 1
  }
  return 0
}

let code: number
try {
  code = await main()
} catch (err) {
  console.error('bench failed:', err)
  code = 1
} finally {
  await cleanupAll()
}
process.exit(code)
