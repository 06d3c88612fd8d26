/**
 * `npm run bench`: every benchmark in turn, each in its own process, then the table of named figures
 * from bench/results/bench.json against the goals of issue 16 (met or not: goals live here, never in
 * timed tests). `npm run bench -- --quick` runs the subset that takes a few minutes; `--only a,b` runs
 * the named scripts. A script that fails is reported and the others still run; the exit code says so.
 */
import { spawnSync } from 'node:child_process'
import { parseArgs } from 'node:util'
import { readFigures, type Figure } from './figures.ts'
import { table } from './stats.ts'

interface Bench { name: string, args: string[], quick: boolean }

const BENCHES: Bench[] = [
  { name: 'prover', args: ['bench/prover.ts'], quick: true },
  { name: 'pulse-traffic', args: ['bench/pulse-traffic.ts'], quick: false },
  { name: 'pulse-sim', args: ['sim/main.ts', '--sizes', '10000'], quick: false },
  { name: 'points-proof', args: ['bench/points-proof.ts'], quick: true },
  { name: 'run', args: ['bench/run.ts'], quick: false },
  { name: 'idle', args: ['bench/idle.ts'], quick: false },
  { name: 'inference', args: ['bench/inference.ts'], quick: true },
  { name: 'inference-network', args: ['bench/inference-network.ts'], quick: true },
  { name: 'receipts', args: ['bench/receipts.ts'], quick: true },
  { name: 'embedding', args: ['bench/embedding.ts'], quick: false },
  { name: 'blocks', args: ['bench/blocks.ts'], quick: false },
  { name: 'gateway', args: ['bench/gateway.ts'], quick: false },
  { name: 'tasks', args: ['bench/tasks.ts'], quick: false }
]

interface Goal { label: string, on: 'value' | 'ratio', atMost?: number, atLeast?: number }

/** Issue 16's goals, by figure name. */
const GOALS: Record<string, Goal> = {
  'pulse.bytesPerNodeRound10k': { label: '≤ 100 KB', on: 'value', atMost: 100_000 },
  'idle.cpuShare': { label: '≤ 2% of a core', on: 'value', atMost: 0.02 },
  'decode.vsNative': { label: '≥ 0.8× native', on: 'ratio', atLeast: 0.8 },
  'embed.vsOrtNode': { label: '≥ 0.9× onnxruntime-node', on: 'ratio', atLeast: 0.9 },
  'embed.sessionRunVsOrtNode': { label: '≥ 0.8× onnxruntime-node', on: 'ratio', atLeast: 0.8 },
  'mesh.firstDirectMs': { label: '≤ 2 s', on: 'value', atMost: 2000 },
  'blocks.vsFetch': { label: '≤ 3× fetch()', on: 'ratio', atMost: 3 },
  'prove.vsNative': { label: '≤ 1.5× native C', on: 'ratio', atMost: 1.5 },
  'ttft.routedMinusLocalMs': { label: '≤ 30 ms', on: 'value', atMost: 30 },
  'js.initialGzipBytes': { label: '≤ 250 KB', on: 'value', atMost: 250 * 1024 },
  'pointsProof.bytes': { label: '≤ 256 KiB', on: 'value', atMost: 256 * 1024 },
  'pointsProof.verifyMs': { label: '≤ 250 ms', on: 'value', atMost: 250 }
}

function verdict (f: Figure, goal: Goal | undefined): string {
  if (goal === undefined) return ''
  const x = goal.on === 'value' ? f.value : f.ratio
  if (x === null) return `${goal.label}: no reference`
  const met = (goal.atMost === undefined || x <= goal.atMost) && (goal.atLeast === undefined || x >= goal.atLeast)
  return `${goal.label}: ${met ? 'met' : 'NOT met'}`
}

const number = (x: number): string => Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 1 ? x.toFixed(2) : x.toPrecision(3)

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, only: { type: 'string' } } })
const only = values.only?.split(',')
const unknown = only?.filter(name => !BENCHES.some(b => b.name === name)) ?? []
if (unknown.length > 0) throw new Error(`unknown bench ${unknown.join(', ')}: one of ${BENCHES.map(b => b.name).join(', ')}`)
const chosen = BENCHES.filter(b => only !== undefined ? only.includes(b.name) : !values.quick || b.quick)

const started = new Date().toISOString()
const failed: string[] = []
for (const bench of chosen) {
  console.log(`\n=== bench ${bench.name}: tsx ${bench.args.join(' ')}`)
  const run = spawnSync('npx', ['tsx', ...bench.args], { stdio: 'inherit' })
  if (run.status !== 0) failed.push(`${bench.name} (exit ${run.status ?? run.signal})`)
}

const figures = Object.entries(readFigures())
console.log(`\nNamed figures (bench/results/bench.json; * = measured in this run, others kept from an earlier one)\n`)
console.log(table(['figure', 'value', 'reference (same run)', 'ratio', 'goal', 'what'], figures.map(([name, f]) => [
  `${f.at >= started ? '*' : ' '} ${name}`, `${number(f.value)} ${f.unit}`, f.reference === null ? '–' : `${number(f.reference)} ${f.unit}`,
  f.ratio === null ? '–' : `${number(f.ratio)}×`, verdict(f, GOALS[name]), f.what
])))
if (failed.length > 0) {
  console.log(`\nfailed: ${failed.join(', ')}`)
  process.exitCode = 1
}
