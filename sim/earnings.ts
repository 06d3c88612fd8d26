import type { PulseLedger } from '../src/core/pulse/ledger.ts'
import type { NodeKind } from './provers.ts'

/** What simulated nodes earned in the measured rounds [first, last), from their own ledgers. */

export interface Earner {
  kind: NodeKind
  book: PulseLedger
  /** Up for every measured round (joined before the first, never left). */
  throughout: boolean
}

export interface Earnings {
  /** Presence points each honest node up for all measured rounds earned per verified measured round. */
  pointsPerVerifiedRound: number[]
  /** Presence points the attackers earned in the measured rounds, all of them together. */
  attackerPoints: number
  /** Mean capability bonus (multiplier − 1) of verified measured rounds: honest nodes up throughout, attackers. */
  bonus: { honest: number, attackers: number }
}

export function earnings (nodes: readonly Earner[], first: number, last: number): Earnings {
  const measured = (node: Earner) => node.book.points().filter(p => p.round >= first && p.round < last)
  const pointsPerVerifiedRound: number[] = []
  const bonuses = { honest: [] as number[], attackers: [] as number[] }
  let attackerPoints = 0
  for (const node of nodes) {
    const earned = measured(node)
    if (node.kind === 'attacker') {
      attackerPoints += earned.reduce((sum, p) => sum + p.points, 0)
      bonuses.attackers.push(...earned.filter(p => p.points > 0).map(p => p.capability - 1))
    }
    if (node.kind !== 'honest' || !node.throughout || earned.length === 0) continue
    pointsPerVerifiedRound.push(earned.reduce((sum, p) => sum + p.points, 0) / earned.length)
    bonuses.honest.push(...earned.filter(p => p.points > 0).map(p => p.capability - 1))
  }
  const mean = (values: number[]): number => values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length
  return { pointsPerVerifiedRound, attackerPoints, bonus: { honest: mean(bonuses.honest), attackers: mean(bonuses.attackers) } }
}
