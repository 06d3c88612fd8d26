import type { Page } from '@playwright/test'
import { cutUplink, restoreUplink } from './nat.ts'
import { currentRound, history, oldestLinkOpenedAt, points, reconnected, sleep, timeUntil, verifiedSince, watchRecovery, type RecoverySteps } from './probes.ts'
import { rebind, type Home } from './topology.ts'
import type { OpenPair } from './pairs.ts'

export type FaultName = 'relay-restart' | 'uplink-cut' | 'nat-rebinding' | 'tab-frozen' | 'tab-hidden'
export const FAULT_NAMES: readonly FaultName[] = ['tab-frozen', 'tab-hidden', 'relay-restart', 'nat-rebinding', 'uplink-cut']

/** One fault's outcome; the first three fields are the issue's lab.json format. */
export interface FaultResult {
  fault: FaultName
  /**
   * From the end of the fault to both pages connected as before (relay reserved, WebRTC to each
   * other). A connection that looks open but was opened before the fault counts only once page A has
   * a round verified after the fault: a dead one looks open until a probe fails or ICE gives up.
   */
  recoveredMs: number | null
  /** Page A had a round verified after recovering, and its presence points grew. */
  pointsContinued: boolean
  /** Rounds of page A that ended struck or unverified between the fault's start and recovery. */
  roundsLost: number
  /** When each step of the recovery was first seen, from the fault's end. */
  steps?: RecoverySteps
  /** tab-hidden: what page A reported while its tab was in the background. */
  hidden?: HiddenFigures
  note?: string
  error?: string
}

export interface HiddenFigures {
  /** `document.visibilityState` once the other tab was in front, and again just before page A came back. */
  visibilityState: string
  /** Page A's rounds that ended while it was hidden, and how many of them were verified. */
  rounds: number
  verified: number
  /**
   * How often a 100 ms `setInterval` on page A's main thread fired per second while hidden: 10
   * unthrottled, about 1 under Chromium's background timer throttling.
   */
  timerHz: number
}

/** What injecting a fault reports beside its timing. */
interface Injected {
  note?: string
  hidden?: HiddenFigures
}

export interface FaultContext {
  pair: OpenPair
  /** The home of page A, the page each fault hits. */
  home: Home
  restartRelay(): Promise<void>
  cutSeconds: number
  freezeSeconds: number
  hiddenSeconds: number
}

const RECOVERY_TIMEOUT_MS = 240_000
const POINTS_TIMEOUT_MS = 90_000
/** How long a page may take to report itself hidden once another tab is in front (a loaded machine). */
const HIDE_TIMEOUT_MS = 15_000

async function visibility (page: Page): Promise<string> {
  return await page.evaluate(() => document.visibilityState)
}

/**
 * Another tab of page A's window brought to the front, as when its user switches tabs, with
 * Chromium's background throttling on (the lab drops Playwright's switches that turn it off). The
 * page is hidden only in a headed browser without focus emulation (launchInHome's `headed`); in
 * any other, `hidden.visibilityState` says `visible`.
 */
async function hideTab (page: Page, seconds: number): Promise<Injected> {
  const other = await page.context().newPage()
  const ticks = async (): Promise<number> => await page.evaluate(() => (window as unknown as { labTicks?: number }).labTicks ?? 0)
  try {
    await other.bringToFront()
    await timeUntil(async () => await visibility(page) === 'hidden', HIDE_TIMEOUT_MS, 250)
    const first = await visibility(page)
    const before = await currentRound(page)
    await page.evaluate(() => {
      const counted = window as unknown as { labTicks?: number }
      counted.labTicks = 0
      setInterval(() => { counted.labTicks = (counted.labTicks ?? 0) + 1 }, 100)
    })
    const start = Date.now()
    await sleep(seconds * 1000)
    const timerHz = Math.round(await ticks() / ((Date.now() - start) / 1000) * 10) / 10
    const last = await visibility(page)
    const rounds = (await history(page)).filter(r => r.round > before)
    const hidden = { visibilityState: first === last ? first : `${first}, then ${last}`, rounds: rounds.length, verified: rounds.filter(r => r.verified).length, timerHz }
    return { hidden, note: `visibilityState ${hidden.visibilityState}, main-thread timer ${timerHz}/s; ${hidden.verified} of ${hidden.rounds} rounds verified while hidden` }
  } finally {
    await page.bringToFront()
    await other.close()
  }
}

/** Runs the fault; resolves when it is over (the link restored, the tab resumed). */
async function inject (name: FaultName, ctx: FaultContext): Promise<Injected> {
  const page = ctx.pair.a.node.page
  switch (name) {
    case 'relay-restart':
      await ctx.restartRelay()
      return {}
    case 'uplink-cut':
      await cutUplink(ctx.home.router)
      try { await sleep(ctx.cutSeconds * 1000) } finally { await restoreUplink(ctx.home.router) }
      return { note: `${ctx.cutSeconds} s without uplink` }
    case 'nat-rebinding':
      await rebind(ctx.home)
      return { note: `public address now ${ctx.home.publicAddr}` }
    case 'tab-frozen': {
      const cdp = await page.context().newCDPSession(page)
      await cdp.send('Page.setWebLifecycleState', { state: 'frozen' })
      try { await sleep(ctx.freezeSeconds * 1000) } finally { await cdp.send('Page.setWebLifecycleState', { state: 'active' }) }
      return { note: `${ctx.freezeSeconds} s frozen` }
    }
    case 'tab-hidden':
      return await hideTab(page, ctx.hiddenSeconds)
  }
}

export async function runFault (name: FaultName, ctx: FaultContext): Promise<FaultResult> {
  const { a, b } = ctx.pair
  const result: FaultResult = { fault: name, recoveredMs: null, pointsContinued: false, roundsLost: 0 }
  try {
    const startRound = await currentRound(a.node.page)
    const faultStart = Date.now()
    const { note, hidden } = await inject(name, ctx)
    if (note !== undefined) result.note = note
    if (hidden !== undefined) result.hidden = hidden
    const endRound = await currentRound(a.node.page)
    const watch = watchRecovery(a.node, b.node, endRound)
    try {
      await measureRecovery(result, ctx.pair, { faultStart, startRound, endRound })
    } finally {
      result.steps = await watch.stop()
    }
  } catch (err) {
    result.error = (err as Error).message.split('\n')[0] ?? String(err)
  }
  return result
}

/** Fills in the recovery time, whether points went on counting and the rounds lost. */
async function measureRecovery (result: FaultResult, { a, b }: OpenPair, fault: { faultStart: number, startRound: number, endRound: number }): Promise<void> {
  result.recoveredMs = await timeUntil(async () => {
    if (!(await reconnected(a.node.page, b.node.peerId) && await reconnected(b.node.page, a.node.peerId))) return false
    const renewed = await oldestLinkOpenedAt(a.node.page, b.node.peerId) >= fault.faultStart && await oldestLinkOpenedAt(b.node.page, a.node.peerId) >= fault.faultStart
    return renewed || await verifiedSince(a.node.page, fault.endRound)
  }, RECOVERY_TIMEOUT_MS)
  if (result.recoveredMs === null) return
  const recoveredRound = await currentRound(a.node.page)
  const before = (await points(a.node.page)).presence
  result.pointsContinued = await timeUntil(async () => {
    const rounds = await history(a.node.page)
    return rounds.some(r => r.round > recoveredRound && r.verified) && (await points(a.node.page)).presence > before
  }, POINTS_TIMEOUT_MS, 1000) !== null
  const rounds = await history(a.node.page)
  if (!result.pointsContinued) {
    // Why not: what page A recorded for the rounds since it recovered.
    const since = rounds.filter(r => r.round >= recoveredRound).sort((x, y) => x.round - y.round).slice(0, 6)
    result.note = [result.note, `after recovery: ${since.map(r => `${r.round % 1000} ${r.committed ? 'c' : '-'}${r.revealed ? 'r' : '-'}${r.verified ? 'v' : '-'}${r.skipped !== undefined ? ` skipped ${r.skipped}` : ''}${r.strike !== undefined ? ` struck ${r.strike.reason}` : ''}`).join(', ') || 'no rounds recorded'}`].filter(s => s !== undefined).join('; ')
  }
  result.roundsLost = recoveredRound - fault.startRound + 1 - rounds.filter(r => r.round >= fault.startRound && r.round <= recoveredRound && r.verified).length
}
