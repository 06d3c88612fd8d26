/**
 * `npm run bench` (idle cost, issue 16): what an open tab costs in CPU while its node is online and
 * serves no jobs. Two node pages run on a local relay (so each has a peer, pulse rounds and gossip)
 * in one Chromium; the reference is the same app in a second Chromium, its page loaded but its node
 * never started (the link-settings question left unanswered), measured over the same window. CPU is
 * each browser's processes' own CPU time from CDP `SystemInfo.getProcessInfo`, so other load on the
 * machine does not count; workers run in their page's renderer process.
 *
 * `IDLE_SECONDS` sets the window (default 300: the issue's five minutes), after 30 s of settling.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Browser } from '@playwright/test'
import { appUrl } from '../tests/e2e/nodes.ts'
import { startRelayProcess } from '../tests/e2e/relay-process.ts'
import { ensureBuild, startPreview } from './procs.ts'
import { launchChromium, openOnlinePage } from './bed.ts'
import { figure, recordFigures } from './figures.ts'
import { fmtRatio, ratio, table } from './stats.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const PAGES = 2
const WINDOW_S = Number(process.env.IDLE_SECONDS ?? 300)
const TARGET_PERCENT = 2
/** Start-up work (first dials, the first round's proof) is over by then; the window measures what follows. */
const SETTLE_S = 30

interface ProcessInfo { type: string, id: number, cpuTime: number }

/** CPU seconds so far of each kind of process of one browser (renderer, gpu, utility, browser). */
async function cpuByType (browser: Browser): Promise<Record<string, number>> {
  const session = await browser.newBrowserCDPSession()
  const { processInfo } = await session.send('SystemInfo.getProcessInfo') as { processInfo: ProcessInfo[] }
  await session.detach()
  const byType: Record<string, number> = {}
  for (const p of processInfo) byType[p.type] = (byType[p.type] ?? 0) + p.cpuTime
  return byType
}

function percentOfCore (before: Record<string, number>, after: Record<string, number>, types: string[], seconds: number): number {
  const used = types.reduce((sum, type) => sum + (after[type] ?? 0) - (before[type] ?? 0), 0)
  return 100 * used / seconds / PAGES
}

await ensureBuild(ROOT)
const preview = await startPreview(ROOT)
const relay = await startRelayProcess()
const [nodes, reference] = await Promise.all([launchChromium(), launchChromium()])
try {
  const url = `${preview.url}${appUrl([relay.addr])}`
  for (let i = 0; i < PAGES; i++) {
    await openOnlinePage(nodes, url)
    const idle = await reference.newContext()
    const still = await idle.newPage()
    await still.goto(url)
    await still.getByTestId('link-settings').waitFor()
  }
  await new Promise(resolve => setTimeout(resolve, SETTLE_S * 1000))
  const [nodesBefore, referenceBefore] = await Promise.all([cpuByType(nodes), cpuByType(reference)])
  console.error(`bench: idle window of ${WINDOW_S} s`)
  await new Promise(resolve => setTimeout(resolve, WINDOW_S * 1000))
  const [nodesAfter, referenceAfter] = await Promise.all([cpuByType(nodes), cpuByType(reference)])
  const renderer = percentOfCore(nodesBefore, nodesAfter, ['renderer'], WINDOW_S)
  const all = percentOfCore(nodesBefore, nodesAfter, Object.keys(nodesAfter), WINDOW_S)
  const referenceRenderer = percentOfCore(referenceBefore, referenceAfter, ['renderer'], WINDOW_S)
  const referenceAll = percentOfCore(referenceBefore, referenceAfter, Object.keys(referenceAfter), WINDOW_S)
  console.log(`\nIdle cost of an open tab, online with no jobs, over ${WINDOW_S} s (${PAGES} pages; % of one core per page)\n`)
  console.log(table(['processes', 'node online', 'reference: app, node not started', 'ratio', `target`], [
    ['renderer (page and its workers)', `${renderer.toFixed(2)}%`, `${referenceRenderer.toFixed(2)}%`, fmtRatio(ratio(renderer, referenceRenderer)), `≤ ${TARGET_PERCENT}%`],
    ['all of the browser, shared by the pages', `${all.toFixed(2)}%`, `${referenceAll.toFixed(2)}%`, fmtRatio(ratio(all, referenceAll)), '']
  ]))
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true })
  recordFigures({ 'idle.cpuShare': figure(renderer / 100, 'of a core', `renderer (page and workers) of an open tab online with no jobs, over ${WINDOW_S} s (reference: the app with the node not started)`, referenceRenderer / 100) })
  writeFileSync(join(ROOT, 'bench', 'results', 'idle.json'), JSON.stringify({ windowSeconds: WINDOW_S, pages: PAGES, nodesBefore, nodesAfter, referenceBefore, referenceAfter, renderer, all, referenceRenderer, referenceAll }, null, 2))
} finally {
  await Promise.allSettled([nodes.close(), reference.close()])
  await relay.stop()
  await preview.close()
}
