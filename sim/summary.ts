import { ACT_AT } from '../src/core/pulse/params.ts'
import { mean, median, quantile, share } from './stats.ts'
import { TRAFFIC_LINES, type TrafficLine } from './traffic.ts'
import type { RoundObservation, SimRun } from './simulation.ts'

export interface Spread {
  median: number
  p99: number
  mean: number
}

/** The figures of one simulated network size. */
export interface SimSummary {
  nodes: number
  committees: number
  /** K the nodes decided for the epoch after the first measured round's (median over nodes), when the run reached the decision. */
  nextCommittees: number | null
  rounds: number
  /** Committee-rounds in which every honest committer up for the round was verified before the round ended. */
  roundsCompletedInTime: number
  /** Honest nodes up for the whole round that committed. */
  honestCommitted: number
  /** Of those, verified by a validator other than themselves before the round ended. */
  honestVerified: number
  cheaterRounds: number
  /** Cheater rounds struck and not verified. */
  cheatersCaught: number
  cheatersVerified: number
  /** Rounds attackers committed in, and those of them verified (points they did not earn). */
  attackerRounds: number
  attackersVerified: number
  attackerPoints: number
  /** Mean capability bonus (multiplier − 1) of verified rounds: honest nodes up for the whole run, and attackers. */
  honestBonus: number
  attackerBonus: number
  bytesPerNodeRound: Spread
  messagesPerNodeRound: Spread
  /**
   * Per node and round, by what the bytes carried (traffic.ts): mean and median bytes, mean RPCs, in
   * and out together. Means add up to the total's mean; medians do not add up.
   */
  traffic: Record<TrafficLine, { mean: number, median: number, rpcs: number }> | null
  /** Ms after the round start until every member of a committee had every commit published on it. */
  commitAgreementMs: Spread
  commitAgreedBeforeChallenge: number
  /** Members whose canonical challenge came from another leader than their committee's majority. */
  leaderDisagreement: number
  pointsPerVerifiedRound: number
  churn: { crashed: number, left: number, joined: number }
  wallSeconds: number
}

function spread (values: number[]): Spread {
  return { median: median(values), p99: quantile(values, 0.99), mean: mean(values) }
}

function committeeRounds (observation: RoundObservation): Map<string, RoundObservation['nodes']> {
  const groups = new Map<string, RoundObservation['nodes']>()
  for (const n of observation.nodes) {
    const group = groups.get(n.topic) ?? []
    groups.set(n.topic, group)
    group.push(n)
  }
  return groups
}

function trafficLines (nodes: RoundObservation['nodes']): SimSummary['traffic'] {
  const measured = nodes.flatMap(n => n.lines === undefined ? [] : [n.lines])
  if (measured.length === 0) return null
  const out = {} as NonNullable<SimSummary['traffic']>
  for (const line of TRAFFIC_LINES) {
    const bytes = measured.map(lines => lines[line].bytes)
    out[line] = { mean: mean(bytes), median: median(bytes), rpcs: mean(measured.map(lines => lines[line].rpcs)) }
  }
  return out
}

export function summarize (run: SimRun): SimSummary {
  const { observations, config } = run
  const all = observations.flatMap(o => o.nodes)
  const honest = all.filter(n => n.kind === 'honest')
  const committed = honest.filter(n => n.committed)
  const cheating = all.filter(n => n.kind !== 'honest' && n.committed)
  const attacking = all.filter(n => n.kind === 'attacker' && n.committed)
  let completed = 0
  let committeeCount = 0
  let disagreeing = 0
  let led = 0
  for (const observation of observations) {
    for (const members of committeeRounds(observation).values()) {
      const committers = members.filter(n => n.kind === 'honest' && n.committed)
      if (committers.length > 0) {
        committeeCount++
        if (committers.every(n => n.verified)) completed++
      }
      const leaders = members.filter(n => n.kind === 'honest' && n.leader !== undefined).map(n => n.leader as string)
      const votes = new Map<string, number>()
      for (const leader of leaders) votes.set(leader, (votes.get(leader) ?? 0) + 1)
      const majority = Math.max(0, ...votes.values())
      led += leaders.length
      disagreeing += leaders.length - majority
    }
  }
  const agreement = observations.flatMap(o => [...o.agreementMs.values()])
  return {
    nodes: config.nodes,
    committees: run.committees,
    nextCommittees: run.nextCommittees,
    rounds: observations.length,
    roundsCompletedInTime: share(completed, committeeCount),
    honestCommitted: share(committed.length, honest.length),
    honestVerified: share(committed.filter(n => n.verified).length, committed.length),
    cheaterRounds: cheating.length,
    cheatersCaught: share(cheating.filter(n => n.struck && !n.verified).length, cheating.length),
    cheatersVerified: cheating.filter(n => n.verified).length,
    attackerRounds: attacking.length,
    attackersVerified: attacking.filter(n => n.verified).length,
    attackerPoints: run.attackerPoints,
    honestBonus: run.bonus.honest,
    attackerBonus: run.bonus.attackers,
    bytesPerNodeRound: spread(all.map(n => n.bytes)),
    messagesPerNodeRound: spread(all.map(n => n.rpcs)),
    traffic: trafficLines(all),
    commitAgreementMs: spread(agreement.filter(Number.isFinite)),
    commitAgreedBeforeChallenge: share(agreement.filter(ms => ms <= ACT_AT.challenge * config.roundMs).length, agreement.length),
    leaderDisagreement: share(disagreeing, led),
    pointsPerVerifiedRound: mean(run.pointsPerVerifiedRound),
    churn: run.churn,
    wallSeconds: run.wallMs / 1000
  }
}
