/**
 * `npx tsx bench/idle-profile.ts`: where an idle node's page thread spends its CPU (issue 16's
 * idle.cpuShare). Two node pages on a local relay, as bench/idle.ts runs them; after the settling
 * time, a CDP CPU profile of the first page's main thread over PROFILE_SECONDS (default 60), printed
 * as self time by function and by script, heaviest first. Workers are not in it: bench/idle.ts
 * measures them with the page.
 */
import { fileURLToPath } from 'node:url'
import type { Browser, Page } from '@playwright/test'
import { appUrl } from '../tests/e2e/nodes.ts'
import { startRelayProcess } from '../tests/e2e/relay-process.ts'
import { ensureBuild, startPreview } from './procs.ts'
import { launchChromium, openOnlinePage } from './bed.ts'
import { table } from './stats.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const PAGES = 2
const SETTLE_S = 30
const PROFILE_S = Number(process.env.PROFILE_SECONDS ?? 60)
const SHOWN = 30

interface ProfileNode { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, children?: number[] }
interface Profile { nodes: ProfileNode[], samples?: number[], timeDeltas?: number[], startTime: number, endTime: number }

async function profile (page: Page, seconds: number): Promise<Profile> {
  const session = await page.context().newCDPSession(page)
  await session.send('Profiler.enable')
  await session.send('Profiler.setSamplingInterval', { interval: 500 })
  await session.send('Profiler.start')
  await new Promise(resolve => setTimeout(resolve, seconds * 1000))
  const { profile } = await session.send('Profiler.stop') as { profile: Profile }
  await session.detach()
  return profile
}

function report (p: Profile): void {
  const byNode = new Map<number, number>()
  const samples = p.samples ?? []
  const deltas = p.timeDeltas ?? []
  // A sample's time is the delta to the next sample.
  for (let i = 0; i < samples.length; i++) byNode.set(samples[i] as number, (byNode.get(samples[i] as number) ?? 0) + (deltas[i + 1] ?? 0))
  const byFunction = new Map<string, number>()
  const byScript = new Map<string, number>()
  let busy = 0
  for (const node of p.nodes) {
    const us = byNode.get(node.id) ?? 0
    const { functionName, url, lineNumber } = node.callFrame
    if (functionName === '(idle)' || functionName === '(program)' || functionName === '(root)') continue
    busy += us
    const script = url.split('/').pop() ?? url
    const key = `${functionName || '(anonymous)'} ${script}:${lineNumber + 1}`
    byFunction.set(key, (byFunction.get(key) ?? 0) + us)
    byScript.set(script || '(native)', (byScript.get(script || '(native)') ?? 0) + us)
  }
  const wall = (p.endTime - p.startTime) / 1e6
  const ms = (us: number): string => (us / 1000).toFixed(1)
  console.log(`\nmain thread of one node page: ${ms(busy)} ms of JavaScript in ${wall.toFixed(0)} s (${(busy / 1e4 / wall).toFixed(2)}% of a core; GC and rendering not included)\n`)
  const top = (m: Map<string, number>): string[][] => [...m].sort((a, b) => b[1] - a[1]).slice(0, SHOWN).map(([k, v]) => [k, ms(v), `${(100 * v / busy).toFixed(1)}%`])
  console.log(table(['function (self time)', 'ms', 'share'], top(byFunction)))
  console.log()
  console.log(table(['script', 'ms', 'share'], top(byScript)))
  // Inclusive time of named functions (minified names of two letters or less say nothing): who calls the costly natives.
  const nodes = new Map(p.nodes.map(node => [node.id, node]))
  const inclusive = new Map<string, number>()
  const walk = (id: number, onPath: Set<string>): number => {
    const node = nodes.get(id)
    if (node === undefined) return 0
    let total = byNode.get(id) ?? 0
    const name = node.callFrame.functionName
    const named = name.length > 2 && !onPath.has(name) && name !== '(root)' && name !== '(idle)' && name !== '(program)'
    if (named) onPath.add(name)
    for (const child of node.children ?? []) total += walk(child, onPath)
    if (named) {
      onPath.delete(name)
      inclusive.set(name, (inclusive.get(name) ?? 0) + total)
    }
    return total
  }
  for (const node of p.nodes) if (node.callFrame.functionName === '(root)') walk(node.id, new Set())
  console.log()
  console.log(table(['function (inclusive time, named only)', 'ms', 'share'], top(inclusive)))
}

await ensureBuild(ROOT)
const preview = await startPreview(ROOT)
const relay = await startRelayProcess()
let browser: Browser | null = null
try {
  browser = await launchChromium()
  const url = `${preview.url}${appUrl([relay.addr])}`
  const pages: Page[] = []
  for (let i = 0; i < PAGES; i++) pages.push(await openOnlinePage(browser, url))
  await new Promise(resolve => setTimeout(resolve, SETTLE_S * 1000))
  console.error(`bench: profiling for ${PROFILE_S} s`)
  report(await profile(pages[0] as Page, PROFILE_S))
} finally {
  await browser?.close()
  await relay.stop()
  await preview.close()
}
