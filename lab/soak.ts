import { randomUUID } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { parseArgs } from 'node:util'
import { launchInHome, openApp } from './chromium.ts'
import { LabServiceError } from './errors.ts'
import { FAULT_NAMES, runFault, type FaultName, type FaultResult } from './faults.ts'
import { LabCleanup, labPrivilegeError, startLab, type LabEnv } from './lab-env.ts'
import { ROUND_QUERY } from './pairs.ts'
import { pullModel, sleep, timeUntil } from './probes.ts'
import { checkPoints, checkReceipts, closeTo, heapAfterGc, type PointsFigures, type ReceiptFigures, type SoakCheck } from './soak-checks.ts'
import { JOB_KINDS, runJobs, type JobRecord, type SoakPage } from './soak-jobs.ts'
import type { CDPSession } from '@playwright/test'
import type { NatKind } from './nat.ts'
import type { ProfileName } from '../src/core/capabilities.ts'

/**
 * `npm run soak -- --minutes N`: six pages in the lab's homes run for N minutes with jobs flowing
 * between them and a fault every few minutes, then the run checks that no receipt was lost, that
 * each page's points are the formula's over its rounds, that no page's heap grew past the bound and
 * that no page reloaded. Writes bench/results/soak.json; exits 1 when a check fails.
 */
const USAGE = `npm run soak -- [--minutes 60] [--fault-every 3] [--faults a,b] [--cut-seconds 60] [--job-gap-seconds 4] [--round 6] [--heap-growth-mb 48] [--no-delay] [--out bench/results/soak.json]
  --round: the pages' round length in seconds (network dev-t<round>)
  faults rotate in the order given (default ${['relay-restart', 'uplink-cut', 'tab-frozen', 'nat-rebinding', 'tab-hidden'].join(',')}), each on the next page in turn
  (tab-hidden always on the headed page, restricted-2)`

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    minutes: { type: 'string', default: '60' },
    'fault-every': { type: 'string', default: '3' },
    faults: { type: 'string', default: 'relay-restart,uplink-cut,tab-frozen,nat-rebinding,tab-hidden' },
    'cut-seconds': { type: 'string', default: '60' },
    'job-gap-seconds': { type: 'string', default: '4' },
    round: { type: 'string', default: new URLSearchParams(ROUND_QUERY).get('round') ?? '6' },
    'heap-growth-mb': { type: 'string', default: '48' },
    'no-delay': { type: 'boolean', default: false },
    out: { type: 'string', default: 'bench/results/soak.json' },
    help: { type: 'boolean', default: false }
  }
})
if (values.help) {
  console.log(USAGE)
  process.exit(0)
}
const privilege = labPrivilegeError()
if (privilege !== undefined) throw privilege
const minutes = Number(values.minutes)
const faultEveryMs = Number(values['fault-every']) * 60_000
const faults = values.faults.split(',') as FaultName[]
for (const fault of faults) if (!FAULT_NAMES.includes(fault)) throw new RangeError(`unknown fault ${fault}\n${USAGE}`)
const heapBoundBytes = Number(values['heap-growth-mb']) * 1024 * 1024
const roundSeconds = Number(values.round)
const roundMs = roundSeconds * 1000
if (![minutes, faultEveryMs, heapBoundBytes].every(n => Number.isFinite(n) && n > 0) || !Number.isInteger(roundSeconds) || roundSeconds < 1) throw new RangeError(`bad number\n${USAGE}`)

const HOME_KINDS: NatKind[] = ['cone', 'cone', 'restricted', 'restricted', 'symmetric', 'symmetric']
/**
 * One page per home: two serve everything (the chat and embedding models, memory, blocks), so that
 * each of them has a peer to send its own network jobs to; the rest store. One runs headed on an Xvfb
 * in its home: only there can a tab be hidden, so the tab-hidden fault always falls on it.
 */
const PAGES: Array<{ home: string, profile: ProfileName, headed?: true }> = [
  { home: 'cone-1', profile: 'full' },
  { home: 'restricted-1', profile: 'full' },
  { home: 'symmetric-1', profile: 'storage' },
  { home: 'cone-2', profile: 'storage' },
  { home: 'restricted-2', profile: 'storage', headed: true },
  { home: 'symmetric-2', profile: 'storage' }
]
const HIDDEN_PAGE = PAGES.find(p => p.headed === true)?.home
/** Setup (services, six browsers, model pulls), the last fault's recovery and the checks, beyond --minutes. */
const OVERHEAD_MINUTES = 15
const READY_TIMEOUT_MS = 180_000
/** A fault starts only when this much of the run is left for it and its recovery. */
const FAULT_WINDOW_MS = 90_000

/** Sees, on every page, a peer whose inference works and one whose embedding works. */
async function jobsServed (pages: SoakPage[]): Promise<boolean> {
  for (const page of pages) {
    const working = await page.node.page.evaluate(() => window.hyperspace?.peers().flatMap(p => p.working) ?? [])
    if (!working.includes('inference') || !working.includes('embedding')) return false
  }
  return true
}

async function openPages (lab: LabEnv, cleanup: LabCleanup): Promise<SoakPage[]> {
  const pages: SoakPage[] = []
  for (const spec of PAGES) {
    const home = lab.home(spec.home)
    const browser = await launchInHome(home, lab.origin, { headed: spec.headed === true })
    cleanup.push(browser.close)
    const node = await openApp(browser, `${lab.origin}/?round=${roundSeconds}&profile=${spec.profile}`)
    pages.push({ name: spec.home, home, browser, node, profile: spec.profile })
  }
  for (const page of pages.filter(p => p.profile === 'full')) {
    await pullModel(page.node.page)
    await page.node.page.evaluate(async () => { await window.hyperspace?.embed(['warm up'], { route: 'local' }) })
  }
  if (await timeUntil(async () => await jobsServed(pages), READY_TIMEOUT_MS, 2000) === null) {
    const seen = await Promise.all(pages.map(async p => `${p.name}: ${await p.node.page.evaluate(() => window.hyperspace?.peers().map(peer => `${peer.peerId.slice(-4)} ${peer.transport} [${peer.working.join(' ')}]`).join(', '))}`))
    throw new LabServiceError(`not every page saw an inference and an embedding server within ${READY_TIMEOUT_MS / 1000} s; ${seen.join('; ')}`)
  }
  return pages
}

interface PageWatch {
  cdp: CDPSession
  heapStartBytes: number
  marker: string
  loads: number
}

/** A marker on window and a count of page loads (both show a reload), and the heap to start from. */
async function watchPage (page: SoakPage): Promise<PageWatch> {
  const marker = randomUUID()
  await page.node.page.evaluate(m => { (window as unknown as { soakMarker?: string }).soakMarker = m }, marker)
  const cdp = await page.node.page.context().newCDPSession(page.node.page)
  const watch: PageWatch = { cdp, heapStartBytes: await heapAfterGc(cdp), marker, loads: 0 }
  page.node.page.on('load', () => { watch.loads++ })
  return watch
}

/** Faults in rotation, each on the next page in turn (with a cone page as its partner), until `endAt`. */
async function runFaults (lab: LabEnv, pages: SoakPage[], endAt: number, results: Array<FaultResult & { page: string }>): Promise<void> {
  let next = Date.now() + Math.min(faultEveryMs, 60_000)
  for (let i = 0; next + FAULT_WINDOW_MS <= endAt; i++) {
    await sleep(next - Date.now())
    const fault = faults[i % faults.length] as FaultName
    const target = (fault === 'tab-hidden' ? pages.find(p => p.name === HIDDEN_PAGE) : pages[i % pages.length]) as SoakPage
    const partner = pages.find(p => p !== target && p.home.kind === 'cone') as SoakPage
    console.error(`fault ${fault} on ${target.name} (+${Math.round((Date.now() - endAt) / 1000 + minutes * 60)} s)`)
    const result = await runFault(fault, {
      pair: { a: { browser: target.browser, node: target.node }, b: { browser: partner.browser, node: partner.node }, close: async () => {} },
      home: target.home,
      restartRelay: lab.restartRelay,
      cutSeconds: Number(values['cut-seconds']),
      freezeSeconds: 30,
      hiddenSeconds: 60
    })
    console.error(`fault ${fault}: ${JSON.stringify(result)}`)
    results.push({ ...result, page: target.name })
    next = Math.max(next + faultEveryMs, Date.now() + 30_000)
  }
}

/**
 * Every minute until `endAt`, each page's rounds of that minute and how many were verified: when the
 * pulse stalls, and on which pages, shows in the log as it happens rather than only in the totals.
 */
async function logProgress (pages: SoakPage[], endAt: number): Promise<void> {
  const startedAt = Date.now()
  while (Date.now() + 60_000 <= endAt) {
    await sleep(60_000)
    const since = Date.now() - 60_000
    const counts = await Promise.all(pages.map(async page => {
      const rounds = await page.node.page.evaluate(n => window.hyperspace?.pulse.history(n) ?? [], Math.ceil(60_000 / roundMs) + 1)
      const minute = rounds.filter(r => r.round * roundMs >= since)
      return `${page.name} ${minute.filter(r => r.verified).length}/${minute.length}`
    }))
    console.error(`progress +${Math.round((Date.now() - startedAt) / 1000)} s, verified/rounds in the last minute: ${counts.join(', ')}`)
  }
}

interface PageFigures {
  name: string
  nat: NatKind
  profile: ProfileName
  peerId: string
  heapStartBytes: number
  heapEndBytes: number
  heapGrowthBytes: number
  reloaded: boolean
}

const cleanup = new LabCleanup('soak', minutes + OVERHEAD_MINUTES)
const jobs: JobRecord[] = []
const faultResults: Array<FaultResult & { page: string }> = []
const pageFigures: PageFigures[] = []
const points: PointsFigures[] = []
let receipts: ReceiptFigures | undefined
let lab: LabEnv | undefined
const startedAt = Date.now()
try {
  lab = await startLab(HOME_KINDS, !values['no-delay'], cleanup)
  const pages = await openPages(lab, cleanup)
  const watches = await Promise.all(pages.map(watchPage))
  console.error(`soak: ${pages.length} pages up in ${Math.round((Date.now() - startedAt) / 1000)} s, running ${minutes} min`)
  const endAt = Date.now() + minutes * 60_000
  const jobLoop = runJobs(pages, () => Date.now() < endAt, Number(values['job-gap-seconds']) * 1000, jobs)
  const progress = logProgress(pages, endAt)
  await runFaults(lab, pages, endAt, faultResults)
  await jobLoop
  await progress
  receipts = await checkReceipts(pages, jobs)
  for (const [i, page] of pages.entries()) {
    const watch = watches[i] as PageWatch
    const heapEndBytes = await heapAfterGc(watch.cdp)
    const marker = await page.node.page.evaluate(() => (window as unknown as { soakMarker?: string }).soakMarker)
    pageFigures.push({
      name: page.name, nat: page.home.kind, profile: page.profile, peerId: page.node.peerId,
      heapStartBytes: watch.heapStartBytes, heapEndBytes, heapGrowthBytes: heapEndBytes - watch.heapStartBytes,
      reloaded: marker !== watch.marker || watch.loads > 0
    })
    points.push(await checkPoints(page, roundMs))
  }
} finally {
  await cleanup.run()
}

const checks: SoakCheck[] = [
  { name: 'jobs flowed', ok: JOB_KINDS.every(kind => jobs.some(j => j.kind === kind && j.ok)), detail: JOB_KINDS.map(kind => `${kind} ${jobs.filter(j => j.kind === kind && j.ok).length}/${jobs.filter(j => j.kind === kind).length}`).join(', ') },
  { name: 'faults injected', ok: faultResults.length > 0 && faultResults.every(f => f.error === undefined), detail: faultResults.map(f => `${f.fault} on ${f.page}${f.error !== undefined ? ` (${f.error})` : ''}`).join(', ') },
  { name: 'every fault recovered, points counting on', ok: faultResults.every(f => f.recoveredMs !== null && f.pointsContinued), detail: faultResults.map(f => `${f.fault} ${f.recoveredMs ?? 'never'} ms, ${f.roundsLost} rounds lost`).join(', ') },
  { name: 'no receipt lost', ok: receipts !== undefined && receipts.missing.length === 0 && receipts.broken.length === 0, detail: receipts === undefined ? 'not read' : `${receipts.withId} jobs with a receipt id; missing: ${receipts.missing.join('; ') || 'none'}; broken logs: ${receipts.broken.join('; ') || 'none'}` },
  { name: 'points equal the formula', ok: points.length === PAGES.length && points.every(p => closeTo(p.presence, p.recomputed) && p.roundsOff.length === 0 && p.verifiedRounds > 0), detail: points.map(p => `${p.page} ${p.presence.toFixed(4)} vs ${p.recomputed.toFixed(4)} over ${p.verifiedRounds}/${p.rounds} verified rounds${p.roundsOff.length > 0 ? ` (rounds off: ${p.roundsOff.join(' ')})` : ''}`).join('; ') },
  { name: `heap growth under ${values['heap-growth-mb']} MiB`, ok: pageFigures.length === PAGES.length && pageFigures.every(p => p.heapGrowthBytes < heapBoundBytes), detail: pageFigures.map(p => `${p.name} ${(p.heapGrowthBytes / 1048576).toFixed(1)} MiB`).join(', ') },
  { name: 'no page reloaded', ok: pageFigures.length === PAGES.length && pageFigures.every(p => !p.reloaded), detail: pageFigures.filter(p => p.reloaded).map(p => p.name).join(', ') || 'none' }
]
const ok = checks.every(c => c.ok)
const report = {
  minutes, roundMs, startedAt: new Date(startedAt).toISOString(), endedAt: new Date().toISOString(), ok,
  heapGrowthBoundBytes: heapBoundBytes, checks, pages: pageFigures, points, receipts: receipts ?? null,
  faults: faultResults, jobs, links: lab?.links ?? []
}
mkdirSync(dirname(values.out), { recursive: true })
writeFileSync(values.out, JSON.stringify(report, null, 2) + '\n')

const mib = (bytes: number): string => (bytes / 1048576).toFixed(1)
console.log([
  '| page | NAT | profile | heap start / end MiB | growth MiB | presence points | verified rounds | reloaded |', '|---|---|---|---|---|---|---|---|',
  ...pageFigures.map((p, i) => `| ${p.name} | ${p.nat} | ${p.profile} | ${mib(p.heapStartBytes)} / ${mib(p.heapEndBytes)} | ${mib(p.heapGrowthBytes)} | ${points[i]?.presence.toFixed(4) ?? '—'} | ${points[i]?.verifiedRounds ?? '—'}/${points[i]?.rounds ?? '—'} | ${p.reloaded ? 'yes' : 'no'} |`),
  '', '| fault | page | recovered ms | points continued | rounds lost | note |', '|---|---|---|---|---|---|',
  ...faultResults.map(f => `| ${f.fault} | ${f.page} | ${f.recoveredMs ?? '—'} | ${f.pointsContinued ? 'yes' : 'no'} | ${f.roundsLost} | ${[f.note, f.error].filter(s => s !== undefined).join('; ')} |`),
  '', '| check | ok | detail |', '|---|---|---|',
  ...checks.map(c => `| ${c.name} | ${c.ok ? 'yes' : 'NO'} | ${c.detail} |`)
].join('\n'))
process.exit(ok ? 0 : 1)
