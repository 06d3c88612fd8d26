/**
 * `npx tsx bench/points-proof.ts`: a day's points proof (issue 12): its bytes, and how long a checker
 * takes to verify it in Chromium, against the targets (256 KB, 250 ms).
 *
 * The proof is made with real keys and signatures: 960 rounds at T = 90 s, each passed by 3 voters
 * whose verdicts cover a committee of 64, and 200 served receipts; the checker samples 48 rounds and
 * 16 receipts. Bytes are the summary and evidence frames as sent. The check (decode both frames, every
 * signature, every Merkle path) runs in a page of Chromium on a bundle of the same core code, and in
 * Node for comparison; the reference is the same number of bare WebCrypto Ed25519 verifications in
 * the same page. Medians of RUNS runs after a warm-up.
 */
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { chromium } from '@playwright/test'
import { CHROMIUM_ARGS } from '../playwright.config.ts'
import { checkProof } from '../src/core/points-proof/check.ts'
import { encodeProofFrame, PROOF_MAX_BYTES, SAMPLE_RECEIPTS, SAMPLE_ROUNDS, SHOWN_ATTESTATIONS } from '../src/core/wire/points.ts'
import { prepareProof } from '../src/core/points-proof/prove.ts'
import { pickSamples } from '../src/core/points-proof/sample.ts'
import { verifyPulseSignature } from '../src/net/pulse-keys.ts'
import { FIRST_ROUND, NET, ROUND_MS, makeWorld } from '../tests/unit/points-world.ts'
import { figure, recordFigures } from './figures.ts'
import { fmt, fmtRatio, ratio, summarize, table } from './stats.ts'
import type { PageInput } from './points-proof-page.ts'
import type { PointsCheck } from '../src/core/points-proof/check.ts'

const RUNS = 7
const DAY_ROUNDS = 960
const COMMITTEE = 64
const RECEIPTS = 200
const TARGET_MS = 250

const made = performance.now()
const world = await makeWorld({ rounds: DAY_ROUNDS, committee: COMMITTEE, voters: SHOWN_ATTESTATIONS, receipts: RECEIPTS })
console.log(`made a day of history in ${((performance.now() - made) / 1000).toFixed(1)} s`)
const ask = { t: 'ask' as const, net: NET, from: FIRST_ROUND, to: FIRST_ROUND + DAY_ROUNDS - 1 }
const proof = await prepareProof(world.history, ask.from, ask.to)
const pick = pickSamples(proof.summary)
const summaryBytes = encodeProofFrame(proof.summary)
const evidenceBytes = encodeProofFrame(proof.evidence(pick))
const proofBytes = summaryBytes.byteLength + evidenceBytes.byteLength
const signatures = pick.rounds.length * (1 + SHOWN_ATTESTATIONS) + pick.receipts.length * 2
const validators = world.validators.map(v => v.peerId)

async function nodeCheck (): Promise<number> {
  const start = performance.now()
  const result = await checkProof({ subject: world.subject.peerId, networkId: NET, roundMs: ROUND_MS, verify: verifyPulseSignature, counts: v => validators.includes(v) }, ask, proof.summary, pick, proof.evidence(pick))
  if (!result.checked) throw new Error(`the day's proof did not check: ${result.detail}`)
  return performance.now() - start
}
const nodeMs: number[] = []
await nodeCheck()
for (let i = 0; i < RUNS; i++) nodeMs.push(await nodeCheck())

const bundle = await build({ entryPoints: [fileURLToPath(new URL('points-proof-page.ts', import.meta.url))], bundle: true, format: 'iife', platform: 'browser', write: false, logLevel: 'error' })
const script = bundle.outputFiles[0]?.text ?? ''
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: CHROMIUM_ARGS })
const pageMs: number[] = []
const bareMs: number[] = []
let checked: PointsCheck | undefined
try {
  const page = await browser.newPage()
  // A loopback origin is a secure context (WebCrypto's Ed25519); the route answers without a server.
  await page.route('http://127.0.0.1:9/**', async route => { await route.fulfill({ contentType: 'text/html', body: `<!doctype html><script>${script.replace(/<\/script/g, '<\\/script')}</script>` }) })
  await page.goto('http://127.0.0.1:9/bench')
  const input: PageInput = { subject: world.subject.peerId, networkId: NET, roundMs: ROUND_MS, validators, ask, pick, summary: [...summaryBytes], evidence: [...evidenceBytes] }
  type Bench = { check: (i: PageInput) => Promise<{ ms: number, result: PointsCheck }>, bareVerifies: (n: number) => Promise<number> }
  for (let run = -1; run < RUNS; run++) {
    const { ms, result } = await page.evaluate(async i => await (globalThis as unknown as { pointsBench: Bench }).pointsBench.check(i), input)
    const bare = await page.evaluate(async n => await (globalThis as unknown as { pointsBench: Bench }).pointsBench.bareVerifies(n), signatures)
    checked = result
    if (run < 0) continue
    pageMs.push(ms)
    bareMs.push(bare)
  }
} finally {
  await browser.close()
}
if (checked?.checked !== true) throw new Error(`the day's proof did not check in Chromium: ${JSON.stringify(checked)}`)

const page = summarize(pageMs)
const bare = summarize(bareMs)
const node = summarize(nodeMs)
console.log(`\nA day's points proof: ${DAY_ROUNDS} rounds claimed (T = 90 s), committee ${COMMITTEE}, ${SHOWN_ATTESTATIONS} attestations per sampled round, ${RECEIPTS} receipts; ${SAMPLE_ROUNDS} rounds and ${SAMPLE_RECEIPTS} receipts sampled (${signatures} signatures)\n`)
console.log(table(['figure', 'measured', 'target', 'within'], [
  ['summary frame', fmt(summaryBytes.byteLength / 1024, 'KiB', 1), '', ''],
  ['evidence frame', fmt(evidenceBytes.byteLength / 1024, 'KiB', 1), '', ''],
  ['proof bytes (both)', fmt(proofBytes / 1024, 'KiB', 1), fmt(PROOF_MAX_BYTES / 1024, 'KiB'), proofBytes <= PROOF_MAX_BYTES ? 'yes' : 'NO'],
  ['verify, Chromium (median)', fmt(page.median, 'ms', 1), fmt(TARGET_MS, 'ms'), (page.median ?? Infinity) <= TARGET_MS ? 'yes' : 'NO'],
  [`reference: ${signatures} bare Ed25519 verifies, Chromium`, fmt(bare.median, 'ms', 1), '', `check = ${fmtRatio(ratio(page.median, bare.median))} reference`],
  ['verify, Node (median)', fmt(node.median, 'ms', 1), '', '']
]))
recordFigures({
  'pointsProof.bytes': figure(proofBytes, 'bytes', `a day's points proof (summary and evidence frames), ${DAY_ROUNDS} rounds claimed`),
  'pointsProof.verifyMs': figure(page.median ?? NaN, 'ms', `checking a day's points proof in Chromium vs its ${signatures} bare Ed25519 verifies`, bare.median)
})
