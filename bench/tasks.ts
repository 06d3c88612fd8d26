/**
 * `npx tsx bench/tasks.ts`: what orchestration buys on a batch (issue 18).
 *
 * One relay and three pages of the built app on 127.0.0.1: A and B serve model2vec-64d embeddings,
 * C serves none and runs `tasks.run` over TEXTS texts. In the same run, alternating:
 * - reference: A embeds the batch on its own device, 64 texts a request, one after another;
 * - one node: C's task with only A serving (B's embedding switched off), so shards go to A alone;
 * - two nodes: C's task over A and B.
 * The speed-up is one node's time over two nodes' (the same protocol and overheads, one more worker).
 * Each figure is the median of RUNS runs after a warm-up; every task starts with the serving pages'
 * per-peer rate limits refilled (REFILL_MS). On a machine with two cores shared with
 * other work, two pages cannot run twice as fast as one: read the speed-up with the cores in mind.
 */
import { cpus } from 'node:os'
import { fileURLToPath } from 'node:url'
import { startBenchBed } from './bed.ts'
import { figure, recordFigures } from './figures.ts'
import { fmt, fmtRatio, ratio, spread, summarize, table } from './stats.ts'
import type { TaskResult } from '../src/node/api.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const TEXTS = 1536
const RUNS = 5
/**
 * A serving page lets one peer start 30 embed jobs at once and 120 a minute (docs/protocol.md): a
 * task waits this long before it starts so that every run finds the bucket full and its 24 shards
 * are timed, not the rate limit (which caps one client at 7,680 texts a minute per serving peer).
 */
const REFILL_MS = 16_000

const bed = await startBenchBed(ROOT, 4305)

const inputs = Array.from({ length: TEXTS }, (_, i) => `text ${i}: the ${['market', 'river', 'garden', 'engine'][i % 4] ?? ''} of ${i * 7} people, ${['fell', 'rose', 'grew', 'stopped'][i % 3] ?? ''} again`)

try {
  const [a, b, c] = await Promise.all([bed.openNode('embedding'), bed.openNode('embedding'), bed.openNode('storage')])
  for (const node of [a, b]) await node.page.evaluate(async () => { await window.hyperspace?.embed(['warm up'], { route: 'local' }) })
  const serving = async (ids: string[]): Promise<void> => {
    await c.page.waitForFunction(want => {
      const working = window.hyperspace?.peers().filter(p => p.working.includes('embedding')).map(p => p.peerId).sort() ?? []
      return JSON.stringify(working) === JSON.stringify([...want].sort())
    }, ids, { timeout: 60_000 })
  }
  await serving([a.peerId, b.peerId])

  const local = async (): Promise<number> => await a.page.evaluate(async all => {
    const node = window.hyperspace
    if (node === undefined) throw new Error('no node')
    const started = performance.now()
    for (let i = 0; i < all.length; i += 64) await node.embed(all.slice(i, i + 64), { route: 'local' })
    return performance.now() - started
  }, inputs)
  const task = async (): Promise<{ ms: number, result: TaskResult }> => {
    await new Promise(resolve => setTimeout(resolve, REFILL_MS))
    return await timedTask()
  }
  const timedTask = async (): Promise<{ ms: number, result: TaskResult }> => await c.page.evaluate(async all => {
    const node = window.hyperspace
    if (node === undefined) throw new Error('no node')
    const started = performance.now()
    const result = await node.tasks.run({ kind: 'embed', inputs: all })
    return { ms: performance.now() - started, result }
  }, inputs)
  const setB = async (on: boolean): Promise<void> => {
    await b.page.evaluate(async enabled => { await window.hyperspace?.setCapability('embedding', enabled) }, on)
    await serving(on ? [a.peerId, b.peerId] : [a.peerId])
    if (on) await b.page.evaluate(async () => { await window.hyperspace?.embed(['warm up'], { route: 'local' }) })
  }

  const samples = { local: [] as number[], one: [] as number[], two: [] as number[] }
  const peersOfTwo: number[] = []
  await local()
  await task()
  for (let run = 0; run < RUNS; run++) {
    samples.local.push(await local())
    await setB(false)
    const one = await task()
    if (one.result.shards.some(s => s.peer !== a.peerId)) throw new Error('a one-node task ran elsewhere than A')
    samples.one.push(one.ms)
    await setB(true)
    const two = await task()
    peersOfTwo.push(new Set(two.result.shards.map(s => s.peer)).size)
    samples.two.push(two.ms)
  }
  const s = { local: summarize(samples.local), one: summarize(samples.one), two: summarize(samples.two) }
  const rate = (ms: number | null): string => ms === null ? '—' : `${Math.round(TEXTS / (ms / 1000))} texts/s`
  console.log(`\nEmbedding ${TEXTS} texts with model2vec-64d, median of ${RUNS} runs (${cpus().length} cores)\n`)
  console.log(table(['how', 'time', 'rate', 'vs one node'], [
    ['A alone, on its device, 64 a request (reference)', `${fmt(s.local.median, 'ms')} (${spread(s.local, 'ms')})`, rate(s.local.median), fmtRatio(ratio(s.local.median, s.one.median))],
    ['tasks.run on C, shards to A only (one node)', `${fmt(s.one.median, 'ms')} (${spread(s.one, 'ms')})`, rate(s.one.median), '1×'],
    ['tasks.run on C, shards to A and B', `${fmt(s.two.median, 'ms')} (${spread(s.two, 'ms')})`, rate(s.two.median), fmtRatio(ratio(s.two.median, s.one.median))]
  ]))
  const speedup = s.one.median !== null && s.two.median !== null ? s.one.median / s.two.median : null
  recordFigures({ 'tasks.twoNodesVsOne': figure(s.two.median ?? NaN, 'ms', `tasks.run of ${TEXTS} embeddings over two serving pages vs one`, s.one.median) })
  console.log(`\nspeed-up of the batch over one node: ${speedup === null ? '—' : `${speedup.toFixed(2)}×`} (both pages used in ${peersOfTwo.filter(n => n === 2).length} of ${RUNS} runs)`)
} finally {
  await bed.close()
}
