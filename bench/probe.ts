/**
 * Code that runs inside the benchmarked pages. Every function here is serialised by Playwright
 * (Function.prototype.toString) and must not reach anything outside its own body.
 *
 * tsx (esbuild keepNames) wraps inner named functions in `__name(fn, "name")`, a helper that does
 * not exist in the page; NAME_SHIM is installed first in every context so those calls are no-ops.
 */
export const NAME_SHIM = 'globalThis.__name = globalThis.__name || ((fn) => fn);'

export interface ScriptEntry {
  path: string
  initiatorType: string
  transferSize: number
  decodedBodySize: number
}

/** First performance.now() (ms since this page's navigation start) at which each condition held. */
export interface BenchProbe {
  timeOrigin: number
  expectedPeers: number
  peerId: string
  /** window.hyperspace exists. */
  api: number | null
  /** The page's own DOMContentLoaded (navigation timing): its document parsed and module scripts run. */
  domContentLoaded: number | null
  /** (a) a bootstrap relay reports connected. */
  relayConnected: number | null
  /** (b) a relay reservation is held. */
  reserved: number | null
  /** status().state === 'online' (at the 'status' event that says so, or the poll that sees it first). */
  online: number | null
  /** Same-origin scripts loaded when the node first went online. */
  onlineScripts: ScriptEntry[] | null
  /** (c) the first peer with transport 'webrtc'. */
  firstWebrtc: number | null
  /** (d) every other node is a webrtc peer at once. */
  fullMesh: number | null
  /** Per remote peer id: first time it was seen as a webrtc peer. */
  webrtcPeers: Record<string, number>
  ticks: number
  done: boolean
}

declare global {
  interface Window {
    __bench?: BenchProbe
  }
}

/** Init script: a 5 ms poller that records when each milestone first holds into window.__bench. */
export function installProbe (expectedPeers: number): void {
  const probe: BenchProbe = {
    timeOrigin: performance.timeOrigin,
    expectedPeers,
    peerId: '',
    api: null,
    domContentLoaded: null,
    relayConnected: null,
    reserved: null,
    online: null,
    onlineScripts: null,
    firstWebrtc: null,
    fullMesh: null,
    webrtcPeers: {},
    ticks: 0,
    done: false
  }
  window.__bench = probe

  function loadedScripts (): ScriptEntry[] {
    const byPath = new Map<string, ScriptEntry>()
    for (const entry of performance.getEntriesByType('resource') as PerformanceResourceTiming[]) {
      const url = new URL(entry.name, location.href)
      if (url.origin !== location.origin || !url.pathname.endsWith('.js')) continue
      byPath.set(url.pathname, { path: url.pathname, initiatorType: entry.initiatorType, transferSize: entry.transferSize, decodedBodySize: entry.decodedBodySize })
    }
    // Module scripts and preloads in the document, in case one is missing from the timing buffer.
    const elements = [...document.querySelectorAll<HTMLScriptElement>('script[src]')].map(s => s.src)
      .concat([...document.querySelectorAll<HTMLLinkElement>('link[rel="modulepreload"]')].map(l => l.href))
    for (const src of elements) {
      const url = new URL(src, location.href)
      if (url.origin !== location.origin || byPath.has(url.pathname)) continue
      byPath.set(url.pathname, { path: url.pathname, initiatorType: 'element', transferSize: -1, decodedBodySize: -1 })
    }
    return [...byPath.values()]
  }

  function onlineNow (): void {
    if (probe.online !== null) return
    probe.online = performance.now()
    probe.onlineScripts = loadedScripts()
  }

  const timer = setInterval(() => {
    probe.ticks++
    if (probe.domContentLoaded === null) {
      const navigation = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming | undefined
      if (navigation !== undefined && navigation.domContentLoadedEventEnd > 0) probe.domContentLoaded = navigation.domContentLoadedEventEnd
    }
    const api = window.hyperspace
    if (api === undefined) return
    const now = performance.now()
    if (probe.api === null) {
      probe.api = now
      // The scripts are listed in the task that reports 'online': a poll up to 5 ms later would also
      // count what going online starts loading (the DHT, the lower panels).
      api.addEventListener('status', evt => { if (evt.detail.state === 'online') onlineNow() })
    }
    const status = api.status()
    probe.peerId = status.peerId
    if (probe.relayConnected === null && status.relays.some(r => r.connected)) probe.relayConnected = now
    if (probe.reserved === null && status.relays.some(r => r.reserved)) probe.reserved = now
    if (status.state === 'online') onlineNow()
    let direct = 0
    for (const peer of api.peers()) {
      if (peer.transport !== 'webrtc') continue
      direct++
      if (!(peer.peerId in probe.webrtcPeers)) probe.webrtcPeers[peer.peerId] = now
    }
    if (direct > 0) probe.firstWebrtc ??= now
    if (direct >= expectedPeers) probe.fullMesh ??= now
    if (probe.relayConnected !== null && probe.reserved !== null && probe.online !== null && probe.fullMesh !== null) {
      probe.done = true
      clearInterval(timer)
    }
  }, 5)
}

/** Raw WebSocket reference: ms from `new WebSocket(url)` to 'open' (TCP + HTTP upgrade), then close. */
export async function wsOpenOnce (url: string): Promise<number> {
  const start = performance.now()
  const ws = new WebSocket(url)
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`WebSocket to ${url} did not open in 10 s`)) }, 10_000)
    ws.onopen = () => { clearTimeout(timer); resolve() }
    ws.onerror = () => { clearTimeout(timer); reject(new Error(`WebSocket to ${url} failed`)) }
  })
  const elapsed = performance.now() - start
  ws.close()
  return elapsed
}

/**
 * Raw WebRTC reference: two RTCPeerConnections in this page (no ICE servers) signalled in-page;
 * ms from creating them to the data channel being open on both sides.
 */
export async function rtcOpenOnce (): Promise<number> {
  const start = performance.now()
  const a = new RTCPeerConnection({ iceServers: [] })
  const b = new RTCPeerConnection({ iceServers: [] })
  try {
    // Candidates may arrive before the other side has its remote description: queue them.
    function relay (from: RTCPeerConnection, to: RTCPeerConnection): () => void {
      const queued: RTCIceCandidate[] = []
      let ready = false
      from.onicecandidate = evt => {
        if (evt.candidate === null) return
        if (ready) void to.addIceCandidate(evt.candidate).catch(() => {})
        else queued.push(evt.candidate)
      }
      return () => {
        ready = true
        for (const c of queued.splice(0)) void to.addIceCandidate(c).catch(() => {})
      }
    }
    const flushToB = relay(a, b)
    const flushToA = relay(b, a)
    const channel = a.createDataChannel('bench')
    const opened = Promise.all([
      new Promise<void>(resolve => { channel.onopen = () => { resolve() } }),
      new Promise<void>(resolve => {
        b.ondatachannel = evt => {
          if (evt.channel.readyState === 'open') resolve()
          else evt.channel.onopen = () => { resolve() }
        }
      })
    ])
    const offer = await a.createOffer()
    await a.setLocalDescription(offer)
    await b.setRemoteDescription(offer)
    flushToB()
    const answer = await b.createAnswer()
    await b.setLocalDescription(answer)
    await a.setRemoteDescription(answer)
    flushToA()
    let timer: ReturnType<typeof setTimeout> | undefined
    await Promise.race([opened, new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => { reject(new Error('local data channel did not open in 10 s')) }, 10_000)
    })])
    clearTimeout(timer)
    return performance.now() - start
  } finally {
    a.close()
    b.close()
  }
}
