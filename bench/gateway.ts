/**
 * `npx tsx bench/gateway.ts`: what the OpenAI-compatible gateway adds to a chat request.
 *
 * One relay with the gateway and one page of the built app on 127.0.0.1, serving stories260K on
 * wllama (caching off, so every run generates). The same greedy request is timed on the page with
 * route 'local' (the reference: the engine alone, from the node's ServedInfo) and through the gateway
 * with the official `openai` client, streamed, from sending the request to the first text received
 * (HTTP, key and quota checks, routing, the inference protocol over the page's WebSocket connection
 * to the relay, server-sent events). Each figure is the median of RUNS runs after a warm-up; the
 * headline is gateway TTFT minus local TTFT.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import OpenAI from 'openai'
import { startBenchBed } from './bed.ts'
import { figure, recordFigures } from './figures.ts'
import { fmt, spread, summarize, table } from './stats.ts'
import type { ChatCompletion } from '../src/core/inference/chat.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const MODEL = 'stories260K'
const RUNS = 10
const MAX_TOKENS = 64
const KEY = 'hs-bench-key-0123456789abcdef'
const messages = [{ role: 'user' as const, content: 'Once upon a time' }]

const apiKeysFile = join(mkdtempSync(join(tmpdir(), 'hs-bench-gateway-')), 'keys.json')
writeFileSync(apiKeysFile, JSON.stringify({ keys: [{ key: KEY, requestsPerMinute: 10_000, tokensPerMinute: 10_000_000 }] }))
const bed = await startBenchBed(ROOT, 4304, { gateway: { apiKeysFile } })
const client = new OpenAI({ baseURL: bed.relay.gatewayUrl, apiKey: KEY, maxRetries: 0 })

try {
  const { page } = await bed.openNode('inference')
  await page.evaluate(async model => {
    await window.hyperspace?.setCapability('caching', false)
    await window.hyperspace?.models.pull(model)
  }, MODEL)
  while (!(await client.models.list()).data.some(m => m.id === MODEL)) await new Promise(resolve => setTimeout(resolve, 250))

  const local = async (): Promise<number> => {
    const done = await page.evaluate(async req => await window.hyperspace?.chat.completions.create({ ...req, stream: false }), {
      model: MODEL, messages, max_tokens: MAX_TOKENS, temperature: 0, route: 'local' as const
    }) as ChatCompletion
    return done.hyperspace.timeToFirstTokenMs
  }
  const viaGateway = async (): Promise<number> => {
    const started = performance.now()
    let first: number | undefined
    const stream = await client.chat.completions.create({ model: MODEL, messages, max_tokens: MAX_TOKENS, temperature: 0, stream: true })
    for await (const chunk of stream) if ((chunk.choices[0]?.delta.content ?? '') !== '') first ??= performance.now()
    return (first ?? performance.now()) - started
  }
  await local()
  await viaGateway()
  const samples = { local: [] as number[], gateway: [] as number[] }
  for (let i = 0; i < RUNS; i++) {
    samples.local.push(await local())
    samples.gateway.push(await viaGateway())
  }
  const l = summarize(samples.local)
  const g = summarize(samples.gateway)
  const added = summarize(samples.gateway.map((v, i) => v - (samples.local[i] ?? 0)))
  console.log(`\nTime to first token, ${MAX_TOKENS} greedy tokens of ${MODEL}, median of ${RUNS} runs\n`)
  console.log(table(['path', 'time to first token'], [
    ['the page, local engine (reference)', `${fmt(l.median, 'ms', 1)} (${spread(l, 'ms', 1)})`],
    ['openai client → gateway → page', `${fmt(g.median, 'ms', 1)} (${spread(g, 'ms', 1)})`],
    ['gateway minus local, per run', `${fmt(added.median, 'ms', 1)} (${spread(added, 'ms', 1)})`]
  ]))
  recordFigures({ 'gateway.ttftMinusLocalMs': figure(added.median ?? NaN, 'ms', 'time to first token through the openai client and the gateway minus the page\'s own (reference: the page\'s TTFT)', l.median) })
} finally {
  await bed.close()
}
