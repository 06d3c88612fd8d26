/**
 * `npx tsx bench/inference-network.ts`: what routing a chat request through the network costs.
 *
 * One relay and two pages of the built app on 127.0.0.1: A serves stories260K on wllama, B has no
 * model. The same greedy request (caching off on A, so every run generates) is timed on A with
 * route 'local' (the reference) and from B with route 'network' (registry lookup, the inference
 * protocol over the direct WebRTC connection, streamed deltas, and the receipt exchange). Times come
 * from the node's own ServedInfo; each figure is the median of RUNS runs after a warm-up.
 */
import type { TestNode } from '../tests/e2e/nodes.ts'
import { startBenchBed } from './bed.ts'
import { figure, recordFigures } from './figures.ts'
import { fmt, fmtRatio, ratio, spread, summarize, table } from './stats.ts'
import { fileURLToPath } from 'node:url'
import type { ChatCompletion, NodeChatRequest, ServedInfo } from '../src/core/inference/chat.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const MODEL = 'stories260K'
const RUNS = 10
const MAX_TOKENS = 64

const bed = await startBenchBed(ROOT, 4500)

async function run (node: TestNode, request: NodeChatRequest): Promise<ServedInfo> {
  const result = await node.page.evaluate(async req => await window.hyperspace?.chat.completions.create({ ...req, stream: false }), request) as ChatCompletion
  return result.hyperspace
}

try {
  const a = await bed.openNode('inference')
  const b = await bed.openNode('storage')
  await a.page.evaluate(async model => {
    await window.hyperspace?.models.pull(model)
    await window.hyperspace?.setCapability('caching', false)
  }, MODEL)
  await b.page.waitForFunction(id => window.hyperspace?.peers().some(p => p.peerId === id && p.working.includes('inference')), a.peerId, { timeout: 60_000 })

  const request = (route: NodeChatRequest['route']): NodeChatRequest =>
    ({ model: MODEL, messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: MAX_TOKENS, temperature: 0, route })
  const samples: Record<'local' | 'network', ServedInfo[]> = { local: [], network: [] }
  await run(a, request('local'))
  await run(b, request('network'))
  for (let i = 0; i < RUNS; i++) {
    samples.local.push(await run(a, request('local')))
    samples.network.push(await run(b, request('network')))
  }
  const ttft = { local: summarize(samples.local.map(s => s.timeToFirstTokenMs)), network: summarize(samples.network.map(s => s.timeToFirstTokenMs)) }
  const total = { local: summarize(samples.local.map(s => s.durationMs)), network: summarize(samples.network.map(s => s.durationMs)) }
  if (samples.network.some(s => s.servedBy !== a.peerId)) throw new Error('a network request was not served by A')

  console.log(`\nChat request, ${MAX_TOKENS} greedy tokens of ${MODEL}, median of ${RUNS} runs (A local vs B → A over WebRTC)\n`)
  console.log(table(['route', 'time to first token', 'whole request', 'TTFT vs local', 'total vs local'], [
    ['A, this device (reference)', `${fmt(ttft.local.median, 'ms')} (${spread(ttft.local, 'ms')})`, `${fmt(total.local.median, 'ms')} (${spread(total.local, 'ms')})`, '1×', '1×'],
    ['B → A, the network', `${fmt(ttft.network.median, 'ms')} (${spread(ttft.network, 'ms')})`, `${fmt(total.network.median, 'ms')} (${spread(total.network, 'ms')})`,
      fmtRatio(ratio(ttft.network.median, ttft.local.median)), fmtRatio(ratio(total.network.median, total.local.median))]
  ]))
  const routedMinusLocal = ttft.network.median === null || ttft.local.median === null ? NaN : ttft.network.median - ttft.local.median
  recordFigures({ 'ttft.routedMinusLocalMs': figure(routedMinusLocal, 'ms', 'time to first token over WebRTC to another page minus on the page itself (reference: local TTFT)', ttft.local.median) })
} finally {
  await bed.close()
}
