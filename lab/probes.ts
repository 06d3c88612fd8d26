import type { Page } from '@playwright/test'
import type { LabPage } from './chromium.ts'
import type { ChatCompletion } from '../src/core/inference/chat.ts'
import type { PointsSummary, RoundSummary } from '../src/node/api.ts'

export const MODEL = 'stories260K'

export async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

/** Polls `check` every `intervalMs` until it holds; the elapsed time, or null past `timeoutMs`. */
export async function timeUntil (check: () => Promise<boolean>, timeoutMs: number, intervalMs = 250): Promise<number | null> {
  const start = Date.now()
  while (Date.now() - start < timeoutMs) {
    if (await check().catch(() => false)) return Date.now() - start
    await sleep(intervalMs)
  }
  return null
}

/** The page has a direct WebRTC connection to `peerId` (over a NAT path or a TURN relay). */
export async function hasWebRtcPeer (page: Page, peerId: string): Promise<boolean> {
  return await page.evaluate(id => window.hyperspace?.peers().some(p => p.peerId === id && p.transport === 'webrtc') ?? false, peerId)
}

/** Every bootstrap relay is connected and holds this node's reservation. */
export async function relaysReserved (page: Page): Promise<boolean> {
  return await page.evaluate(() => {
    const relays = window.hyperspace?.status().relays ?? []
    return relays.length > 0 && relays.every(r => r.connected && r.reserved)
  })
}

/** Connected as before a fault: the relay reservation back and the direct connection to the other page. */
export async function reconnected (page: Page, peerId: string): Promise<boolean> {
  return await relaysReserved(page) && await hasWebRtcPeer(page, peerId)
}

export async function points (page: Page): Promise<PointsSummary> {
  return await page.evaluate(() => window.hyperspace?.points() as PointsSummary)
}

export async function history (page: Page, n = 100): Promise<RoundSummary[]> {
  return await page.evaluate(k => window.hyperspace?.pulse.history(k) ?? [], n)
}

/** A round verified by the network's voters after `sinceRound`: the pulse works across this page's path. */
export async function verifiedSince (page: Page, sinceRound: number): Promise<boolean> {
  return (await history(page)).some(r => r.round > sinceRound && r.verified)
}

export async function currentRound (page: Page): Promise<number> {
  return await page.evaluate(() => window.hyperspace?.pulse.current()?.round ?? 0)
}

/** Pulls the test model on the page, so it serves it to the network. */
export async function pullModel (page: Page): Promise<void> {
  await page.evaluate(async model => { await window.hyperspace?.models.pull(model) }, MODEL)
}

export async function announcesInference (page: Page, peerId: string): Promise<boolean> {
  return await page.evaluate(id => window.hyperspace?.peers().find(p => p.peerId === id)?.working.includes('inference') ?? false, peerId)
}

/** A short greedy request sent over the network; who served it. */
export async function networkChat (page: Page): Promise<string> {
  const completion = await page.evaluate(async model => await window.hyperspace?.chat.completions.create({
    model, messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 16, temperature: 0, route: 'network', stream: false
  }), MODEL) as ChatCompletion
  return completion.hyperspace.servedBy
}

/** The oldest of the page's connections to `peerId` and to its relays: when the current links were opened. */
export async function oldestLinkOpenedAt (page: Page, peerId: string): Promise<number> {
  return await page.evaluate(id => {
    const links = window.hyperspace?.peers().filter(p => p.peerId === id || p.relay) ?? []
    return Math.min(...links.map(p => p.connectedAt))
  }, peerId)
}

/** When, counted from a fault's end, page A first showed each step of its recovery: where the time goes. */
export interface RecoverySteps {
  /** Every bootstrap relay connected and reserved again. */
  relayMs: number | null
  /** A WebRTC connection to page B, seen from A and from B. */
  webrtcMs: number | null
  /** A round after the fault verified on page A. */
  verifiedMs: number | null
}

/** Page A's view of its recovery in one line: relays, direct peers and its pulse (LAB_TIMELINE). */
async function stateLine (a: LabPage): Promise<string> {
  return await a.page.evaluate(() => {
    const api = window.hyperspace
    const relays = (api?.status().relays ?? []).map(r => `relay ${r.connected ? 'up' : 'down'}${r.reserved ? '+reserved' : ''} tries ${r.attempts}${r.lastError !== undefined ? ` (${r.lastError.slice(0, 60)})` : ''}`)
    const direct = api?.peers().filter(p => p.transport === 'webrtc').length ?? 0
    const now = api?.pulse.current()
    const last = api?.pulse.history(1)[0]
    const pulse = now === null || now === undefined ? 'no pulse' : `round ${now.round % 1000} ${now.phase} committee ${now.committee}/${now.committees ?? '?'} seed ${now.seedKnown ? 'known' : 'unknown'} commits ${now.commits} validators ${now.validators}${now.committed ? ' committed' : ''}${now.verified ? ' verified' : ''}`
    const previous = last === undefined ? '' : `; last ${last.round % 1000} ${last.committed ? 'c' : '-'}${last.revealed ? 'r' : '-'}${last.verified ? 'v' : '-'}${last.skipped !== undefined ? ` skipped ${last.skipped}` : ''}`
    return [...relays, `webrtc ${direct}`, pulse + previous].join(', ')
  })
}

/**
 * Polls both pages every half second from the fault's end until `stop`, noting the first time each
 * recovery step held. Runs beside the recovery check, whose condition mixes the steps. With
 * LAB_TIMELINE set it also prints page A's state whenever it changes.
 */
export function watchRecovery (a: LabPage, b: LabPage, sinceRound: number): { stop(): Promise<RecoverySteps> } {
  const start = Date.now()
  const steps: RecoverySteps = { relayMs: null, webrtcMs: null, verifiedMs: null }
  let running = true
  const note = (key: keyof RecoverySteps, ok: boolean): void => { if (ok && steps[key] === null) steps[key] = Date.now() - start }
  let lastLine = ''
  const poll = async (): Promise<void> => {
    if (process.env.LAB_TIMELINE !== undefined) {
      const line = await stateLine(a)
      if (line !== lastLine) console.error(`[+${((Date.now() - start) / 1000).toFixed(1)} s] ${line}`)
      lastLine = line
    }
    note('relayMs', await relaysReserved(a.page))
    note('webrtcMs', await hasWebRtcPeer(a.page, b.peerId) && await hasWebRtcPeer(b.page, a.peerId))
    note('verifiedMs', await verifiedSince(a.page, sinceRound))
  }
  const loop = (async () => {
    while (running) {
      await poll().catch(() => undefined)
      await sleep(500)
    }
  })()
  // A last look: the measurement may have seen a step (a verified round) between two polls and ended.
  return { stop: async () => { running = false; await loop; await poll().catch(() => undefined); return steps } }
}
