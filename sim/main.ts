import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { parseArgs } from 'node:util'
import { runJobs } from './pool.ts'
import { runReal } from './real.ts'
import { bytesChart, simTable } from './report.ts'
import { COMPUTED_N, contrastConfig, modelConfig } from './scenarios.ts'

/**
 * `npm run sim`: the pulse at N = 100, 1,000 and 10,000 on the modelled network, with committees, and
 * without them for contrast; a table on stdout, bench/results/sim.json and bench/results/sim-bytes.svg.
 * `npm run sim -- --validators 0.1` changes the share of validating nodes (default 0.05).
 * `npm run sim -- --real`: real libp2p nodes in this process (see real.ts), next to the model of the
 * same network.
 */

const { values } = parseArgs({
  options: {
    real: { type: 'boolean', default: false },
    sizes: { type: 'string', default: '100,1000,10000' },
    seed: { type: 'string', default: '1' },
    rounds: { type: 'string' },
    nodes: { type: 'string', default: '100' },
    validators: { type: 'string', default: '0.05' },
    'round-seconds': { type: 'string', default: '45' }
  }
})

const RESULTS = 'bench/results'
const seed = Number(values.seed)
const validatorShare = Number(values.validators)
// 0 is a network of volunteers-free committees: every round rests on its fallback validators.
if (!(validatorShare >= 0 && validatorShare <= 1)) throw new Error('--validators is a share of the nodes, from 0 to 1')

async function model (): Promise<void> {
  const sizes = (values.sizes ?? '').split(',').map(Number).sort((a, b) => b - a)
  // 10,000 nodes cost about a minute of CPU per round: they run 3 (the epoch's decision round, its
  // last round and the first of the next epoch) on one core, while the smaller sizes run 5 on the other, the
  // third of which starts a new epoch.
  const roundsFor = (n: number): number => values.rounds !== undefined ? Number(values.rounds) : n >= 10_000 ? 3 : 5
  const results = await runJobs([
    ...sizes.map(n => ({ kind: 'sim' as const, config: modelConfig(n, seed, roundsFor(n), validatorShare) })),
    ...sizes.map(n => ({ kind: 'contrast' as const, config: contrastConfig(n, seed) }))
  ], Math.max(1, Math.min(2, cpus().length)))
  const sims = results.flatMap(r => r.kind === 'sim' ? [r.summary] : []).sort((a, b) => a.nodes - b.nodes)
  const contrasts = results.flatMap(r => r.kind === 'contrast' ? [r.result] : []).sort((a, b) => a.nodes - b.nodes)
  const ratio = (series: Array<{ nodes: number, bytes: number }>): number | null => {
    const low = series[0]
    const high = series.at(-1)
    return low === undefined || high === undefined || low === high ? null : high.bytes / low.bytes
  }
  const withCommittees = sims.map(s => ({ nodes: s.nodes, bytes: s.bytesPerNodeRound.median }))
  const without = contrasts.map(c => ({ nodes: c.nodes, bytes: c.bytesPerNodeRound }))
  // The contrast is a per-node mean, so the chart compares means.
  const withMeans = sims.map(s => ({ nodes: s.nodes, bytes: s.bytesPerNodeRound.mean }))
  const config = modelConfig(sizes[0] ?? 0, seed, 0, validatorShare)
  console.log(`\nPulse simulation (seed ${seed}): every node runs the real src/core pulse engine on a modelled network`)
  console.log(`T = ${config.roundMs / 1000} s; nodes compute n = ${COMPUTED_N}, reveals travel at n = ${config.wireN}; k = ${config.k}; GossipSub D = ${config.gossip.D};`)
  console.log(`${config.validatorShare * 100}% validators, ${config.cheaterShare * 100}% cheaters; per round ${config.churn.crash * 100}% crash, ${config.churn.leave * 100}% leave, ${config.churn.join * 100}% join; ${config.links.loss * 100}% loss\n`)
  console.log(simTable(sims, contrasts))
  const withRatio = ratio(withCommittees)
  const withoutRatio = ratio(without)
  if (withRatio !== null && withoutRatio !== null) {
    console.log(`\nbytes/node/round at N = ${withCommittees.at(-1)?.nodes} / at N = ${withCommittees[0]?.nodes}: ${withRatio.toFixed(2)} with committees (medians), ${withoutRatio.toFixed(1)} without`)
  }
  console.log(`presence points per verified round (mean over honest nodes): ${sims.map(s => `N = ${s.nodes}: ${s.pointsPerVerifiedRound.toFixed(5)}`).join(', ')}`)
  mkdirSync(RESULTS, { recursive: true })
  writeFileSync(`${RESULTS}/sim.json`, JSON.stringify({ seed, config, sizes: sims, withoutCommittees: contrasts, bytesRatio: { withCommittees: withRatio, withoutCommittees: withoutRatio } }, null, 2) + '\n')
  writeFileSync(`${RESULTS}/sim-bytes.svg`, bytesChart([
    { name: 'with committees (simulated, mean)', color: '#1f77b4', points: withMeans },
    { name: 'without committees (flooded samples, mean)', color: '#d62728', points: without }
  ]))
  console.log(`\nwrote ${RESULTS}/sim.json and ${RESULTS}/sim-bytes.svg`)
}

if (values.real) {
  await runReal({ nodes: Number(values.nodes), roundSeconds: Number(values['round-seconds']), rounds: Number(values.rounds ?? 4), seed })
} else {
  await model()
}

