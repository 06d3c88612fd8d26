import { presencePoints } from '../src/core/points.ts'
import { timeUntil } from './probes.ts'
import type { CDPSession } from '@playwright/test'
import type { JobRecord, SoakPage } from './soak-jobs.ts'
import type { ReceiptSummary, RoundSummary } from '../src/node/api.ts'

/** One check of the soak's end: its name, whether it held, and what was seen. */
export interface SoakCheck {
  name: string
  ok: boolean
  detail: string
}

/** The JS heap of a page's main thread after a full garbage collection, by CDP. */
export async function heapAfterGc (cdp: CDPSession): Promise<number> {
  await cdp.send('HeapProfiler.collectGarbage')
  const { usedSize } = await cdp.send('Runtime.getHeapUsage')
  return usedSize
}

/** How long the receipts of jobs finished just before the end may take to reach both sides. */
const RECEIPTS_SETTLE_MS = 60_000

async function receiptsOf (page: SoakPage): Promise<ReceiptSummary[]> {
  return await page.node.page.evaluate(() => window.hyperspace?.receipts.recent(1000) ?? [])
}

/**
 * What is missing: every completed job that returned a receipt id has it on the server's page and
 * the client's, and every receipt a page holds with another soak page is held there too, in the
 * other role (storage receipts of block fetches come with no id to the caller).
 */
function missingReceipts (pages: SoakPage[], held: Map<string, ReceiptSummary[]>, jobs: JobRecord[]): string[] {
  const missing: string[] = []
  const byPeer = new Map(pages.map(p => [p.node.peerId, p]))
  const holds = (page: SoakPage, id: string, role: ReceiptSummary['role']): boolean =>
    (held.get(page.name) ?? []).some(r => r.id.startsWith(id) && r.role === role)
  for (const job of jobs) {
    if (!job.ok || job.receipt === undefined) continue
    const server = byPeer.get(job.servedBy ?? '')
    const client = pages.find(p => p.name === job.client)
    if (server === undefined || client === undefined) continue
    if (!holds(server, job.receipt, 'server')) missing.push(`${job.kind} ${job.receipt.slice(0, 8)} not on its server ${server.name}`)
    if (!holds(client, job.receipt, 'client')) missing.push(`${job.kind} ${job.receipt.slice(0, 8)} not on its client ${client.name}`)
  }
  for (const page of pages) {
    for (const receipt of held.get(page.name) ?? []) {
      const other = byPeer.get(receipt.peer)
      if (other !== undefined && !holds(other, receipt.id, receipt.role === 'server' ? 'client' : 'server')) {
        missing.push(`${receipt.kind} ${receipt.id.slice(0, 8)} held by ${page.name} as ${receipt.role}, not by ${other.name}`)
      }
    }
  }
  return missing
}

export interface ReceiptFigures {
  /** Receipts each page holds. */
  held: Record<string, number>
  /** Completed jobs that returned a receipt id. */
  withId: number
  missing: string[]
  /** Pages whose hash-chained log did not verify. */
  broken: string[]
}

/** Waits (bounded) for the receipts of the last jobs to settle, then reports what is still missing. */
export async function checkReceipts (pages: SoakPage[], jobs: JobRecord[]): Promise<ReceiptFigures> {
  let held = new Map<string, ReceiptSummary[]>()
  let missing: string[] = []
  await timeUntil(async () => {
    held = new Map(await Promise.all(pages.map(async p => [p.name, await receiptsOf(p)] as const)))
    missing = missingReceipts(pages, held, jobs)
    return missing.length === 0
  }, RECEIPTS_SETTLE_MS, 2000)
  const broken: string[] = []
  for (const page of pages) {
    const state = await page.node.page.evaluate(() => window.hyperspace?.receipts.state())
    if (state === undefined || state.broken !== null) broken.push(`${page.name}: ${state?.broken ?? 'no node'}`)
  }
  return {
    held: Object.fromEntries([...held].map(([name, list]) => [name, list.length])),
    withId: jobs.filter(j => j.ok && j.receipt !== undefined).length,
    missing,
    broken
  }
}

export interface PointsFigures {
  page: string
  /** What the page reports, and the formula of src/core/points.ts over the rounds it lists. */
  presence: number
  recomputed: number
  rounds: number
  verifiedRounds: number
  /** Rounds whose listed points differ from the formula's. */
  roundsOff: number[]
}

/**
 * The page's presence points against presencePoints over its round history (round, verified,
 * capability factor), read in one evaluate so that no verdict lands between the two.
 */
export async function checkPoints (page: SoakPage, roundMs: number): Promise<PointsFigures> {
  const { history, presence } = await page.node.page.evaluate(() => ({
    history: window.hyperspace?.pulse.history(100_000) ?? [],
    presence: window.hyperspace?.points().presence ?? -1
  })) as { history: RoundSummary[], presence: number }
  const perRound = presencePoints(history.map(r => ({ round: r.round, verified: r.verified, capability: r.capability })), roundMs)
  const byRound = new Map(perRound.map(p => [p.round, p.points]))
  const recomputed = perRound.reduce((sum, p) => sum + p.points, 0)
  return {
    page: page.name,
    presence,
    recomputed,
    rounds: history.length,
    verifiedRounds: history.filter(r => r.verified).length,
    roundsOff: history.filter(r => !closeTo(r.points, byRound.get(r.round) ?? 0)).map(r => r.round)
  }
}

export function closeTo (a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b))
}
