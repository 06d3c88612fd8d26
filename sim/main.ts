import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { parseArgs } from 'node:util'
import { figure, recordFigures } from '../bench/figures.ts'
import { runJobs } from './pool.ts'
import { runReal } from './real.ts'
import { ATTACK_KINDS, isAttackKind, type AttackKind } from './attacks.ts'
import { attackTable, bytesChart, simTable, trafficTable } from './report.ts'
import { COMPUTED_N, contrastConfig, modelConfig } from './scenarios.ts'
import { PULSE_GOSSIPSUB, parseGossipParams } from './gossip.ts'

/**
 * `npm run sim`: the pulse at N = 100, 1,000 and 10,000 on the modelled network, with committees, and
 * without them for contrast; a table on stdout, bench/results/sim.json and bench/results/sim-bytes.svg.
 * `npm run sim -- --validators 0.1` changes the share of validating nodes (default 0.05).
 * `npm run sim -- --gossip D=4,Dlo=3,Dlazy=3,signaturePolicy=StrictNoSign` changes GossipSub's knobs.
 * `npm run sim -- --real`: real libp2p nodes in this process (see real.ts), next to the model of the
 * same network.
 * `npm run sim -- --attack <kind|all> --attackers 0.1`: the same networks with a share of attackers of
 * each kind (attacks.ts); a table of what they got and what honest nodes kept, bench/results/sim-attacks.json.
 */

const { values } = parseArgs({
  options: {
    real: { type: 'boolean', default: false },
    sizes: { type: 'string', default: '100,1000,10000' },
    seed: { type: 'string', default: '1' },
    rounds: { type: 'string' },
    nodes: { type: 'string', default: '100' },
    validators: { type: 'string', default: '0.05' },
    'round-seconds': { type: 'string', default: '45' },
    attack: { type: 'string' },
    attackers: { type: 'string', default: '0.1' },
    gossip: { type: 'string' }
  }
})

const RESULTS = 'bench/results'
const seed = Number(values.seed)
const validatorShare = Number(values.validators)
// 0 is a network of volunteers-free committees: every round rests on its fallback validators.
if (!(validatorShare >= 0 && validatorShare <= 1)) throw new Error('--validators is a share of the nodes, from 0 to 1')
const gossip = values.gossip === undefined ? PULSE_GOSSIPSUB : parseGossipParams(values.gossip, PULSE_GOSSIPSUB)

async function model (): Promise<void> {
  const sizes = (values.sizes ?? '').split(',').map(Number).sort((a, b) => b - a)
  // 10,000 nodes cost about a minute of CPU per round: they run 3 (the epoch's decision round, its
  // last round and the first of the next epoch) on one core, while the smaller sizes run 5 on the other, the
  // third of which starts a new epoch.
  const roundsFor = (n: number): number => values.rounds !== undefined ? Number(values.rounds) : n >= 10_000 ? 3 : 5
  const results = await runJobs([
    ...sizes.map(n => ({ kind: 'sim' as const, config: { ...modelConfig(n, seed, roundsFor(n), validatorShare), gossip } })),
    ...sizes.map(n => ({ kind: 'contrast' as const, config: { ...contrastConfig(n, seed), gossip } }))
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
  const config = { ...modelConfig(sizes[0] ?? 0, seed, 0, validatorShare), gossip }
  console.log(`\nPulse simulation (seed ${seed}): every node runs the real src/core pulse engine on a modelled network`)
  console.log(`T = ${config.roundMs / 1000} s; nodes compute n = ${COMPUTED_N}, reveals travel at n = ${config.wireN}; k = ${config.k}; GossipSub D = ${config.gossip.D};`)
  console.log(`${config.validatorShare * 100}% validators, ${config.cheaterShare * 100}% cheaters; per round ${config.churn.crash * 100}% crash, ${config.churn.leave * 100}% leave, ${config.churn.join * 100}% join; ${config.links.loss * 100}% loss\n`)
  console.log(simTable(sims, contrasts))
  console.log('\nWhere the bytes go, per node and round (in + out; "dup": copies of a message the node had, or had on its way):')
  console.log(trafficTable(sims))
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
  const at10k = sims.find(s => s.nodes === 10_000)
  // The bench's figure is the pulse as it ships: a run with other GossipSub knobs is an experiment.
  if (at10k !== undefined && values.gossip === undefined) {
    const flooded = contrasts.find(c => c.nodes === 10_000)?.bytesPerNodeRound ?? null
    recordFigures({ 'pulse.bytesPerNodeRound10k': figure(at10k.bytesPerNodeRound.median, 'bytes', 'pulse bytes per node per round at 10,000 simulated nodes (median), vs the same network without committees (mean)', flooded) })
  }
}

async function attacks (kinds: AttackKind[]): Promise<void> {
  const share = Number(values.attackers)
  if (!(share > 0 && share < 1)) throw new Error('--attackers is a share of the nodes, above 0 and below 1')
  const sizes = (values.sizes ?? '').split(',').map(Number).sort((a, b) => b - a)
  const rounds = (n: number): number => values.rounds !== undefined ? Number(values.rounds) : n >= 10_000 ? 3 : 5
  const jobs = kinds.flatMap(kind => sizes.map(n => ({ kind, n, job: { kind: 'sim' as const, config: { ...modelConfig(n, seed, rounds(n), validatorShare, { kind, share }), gossip } } })))
  const results = await runJobs(jobs.map(j => j.job), Math.max(1, Math.min(2, cpus().length)))
  const rows = jobs.flatMap((j, i) => {
    const result = results[i]
    return result?.kind === 'sim' ? [{ attack: j.kind, share, summary: result.summary }] : []
  })
  console.log(`\nPulse under attack (seed ${seed}): ${share * 100}% of the starting nodes attack; every attacker but capability liars does no real work`)
  console.log(attackTable(rows))
  mkdirSync(RESULTS, { recursive: true })
  writeFileSync(`${RESULTS}/sim-attacks.json`, JSON.stringify({ seed, share, rows }, null, 2) + '\n')
  console.log(`\nwrote ${RESULTS}/sim-attacks.json`)
}

if (values.attack !== undefined) {
  const kinds = values.attack === 'all' ? [...ATTACK_KINDS] : values.attack.split(',')
  const unknown = kinds.filter(kind => !isAttackKind(kind))
  if (unknown.length > 0) throw new Error(`unknown attack ${unknown.join(', ')}: one of ${ATTACK_KINDS.join(', ')}, or all`)
  await attacks(kinds as AttackKind[])
} else if (values.real) {
  await runReal({ nodes: Number(values.nodes), roundSeconds: Number(values['round-seconds']), rounds: Number(values.rounds ?? 4), seed })
} else {
  await model()
}

