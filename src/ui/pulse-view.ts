/** Pure helpers behind the pulse, points and earning panels: what a round means, what to do. */
import { DAY_MS } from '../core/points.ts'
import type { NodeStatus, PulseCurrent, RoundSummary } from '../node/api.ts'
import { shortPeerId } from './format.ts'

export type RoundOutcome = 'verified' | 'struck' | 'missed'

export function outcomeOf (round: RoundSummary): RoundOutcome {
  if (round.verified) return 'verified'
  return round.strike !== undefined ? 'struck' : 'missed'
}

/** Whether a validator may still judge the round: it is in progress and nothing has been said yet. */
function undecided (round: RoundSummary, current: PulseCurrent | null): boolean {
  return current !== null && round.round >= current.round && !round.verified && round.strike === undefined
}

/** The decided rounds of the history, oldest first, at most `count` of them. */
export function decidedRounds (history: readonly RoundSummary[], current: PulseCurrent | null, count: number): RoundSummary[] {
  return history.filter(r => !undecided(r, current)).slice(0, count).reverse()
}

export const STRIKE_TEXT: Record<NonNullable<RoundSummary['strike']>['reason'], string> = {
  'no-reveal': 'no reveal arrived in time',
  'wrong-row': 'a revealed row did not match the commitment',
  'bad-proof': 'a revealed row had a bad proof',
  'wrong-rows-challenged': 'rows other than the challenged ones were revealed',
  'duplicate-identity': 'this identity also committed from another place',
  'bad-challenge': 'as leader it published an invalid challenge'
}

const STRIKE_ADVICE: Record<NonNullable<RoundSummary['strike']>['reason'], string> = {
  'no-reveal': 'keep this tab open and the connection steady so reveals go out in time',
  'wrong-row': 'reload the page so the prover starts afresh, and report it if it happens again',
  'bad-proof': 'reload the page so the prover starts afresh, and report it if it happens again',
  'wrong-rows-challenged': 'reload the page, and report it if it happens again',
  'duplicate-identity': 'run this identity in one browser only: close the other one, or give it its own identity',
  'bad-challenge': 'reload the page; a challenge must list every commit heard early in the round with its own root'
}

/** Why a round earned or did not, in a few words (the strip's tooltip). */
export function roundReason (round: RoundSummary): string {
  const strike = round.strike
  if (round.verified) return strike === undefined ? 'verified' : `verified (one validator struck it: ${STRIKE_TEXT[strike.reason]})`
  if (strike !== undefined) return `struck by ${shortPeerId(strike.validator)}: ${STRIKE_TEXT[strike.reason]} (${strike.reason})`
  if (round.skipped !== undefined) return `skipped: ${round.skipped}`
  if (!round.committed) return 'did not commit'
  if (!round.revealed) return 'committed, did not reveal'
  return 'revealed, no validator verdict arrived'
}

export interface DayPoints {
  /** UTC day number since the epoch. */
  day: number
  /** YYYY-MM-DD. */
  label: string
  points: number
}

/** The history's points grouped by the UTC day each round started in, oldest first, the last `days` days that have rounds. */
export function pointsPerDay (history: readonly RoundSummary[], roundMs: number, days: number): DayPoints[] {
  const byDay = new Map<number, number>()
  for (const round of history) {
    const day = Math.floor(round.round * roundMs / DAY_MS)
    byDay.set(day, (byDay.get(day) ?? 0) + round.points)
  }
  return [...byDay.entries()]
    .sort((a, b) => a[0] - b[0])
    .slice(-days)
    .map(([day, points]) => ({ day, label: new Date(day * DAY_MS).toISOString().slice(0, 10), points }))
}

export interface EarningCheck {
  id: string
  label: string
  ok: boolean
  /** What is fine, or what is wrong and what to do about it, in one sentence. */
  detail: string
}

/** Rounds in which a commit counts as "committing lately". */
const RECENT_ROUNDS = 3

export function earningChecks (status: NodeStatus, current: PulseCurrent | null, history: readonly RoundSummary[], shown: number): EarningCheck[] {
  const recent = history.slice(0, shown)
  const checks: EarningCheck[] = []

  checks.push(status.peers > 0
    ? { id: 'peers', label: 'Connected to peers', ok: true, detail: `${status.peers} connected.` }
    : { id: 'peers', label: 'Connected to peers', ok: false, detail: 'No peer is connected: check the internet connection and that a bootstrap relay is configured.' })

  const reserved = status.relays.filter(r => r.reserved)
  checks.push(reserved.length > 0
    ? { id: 'relay', label: 'Relay reservation', ok: true, detail: `Reserved on ${reserved.map(r => shortPeerId(r.peerId)).join(', ')}.` }
    : {
        id: 'relay',
        label: 'Relay reservation',
        ok: false,
        detail: status.relays.length === 0
          ? 'No bootstrap relay is configured: open the page with a ?bootstrap= relay address or deploy a bootstrap.json.'
          : 'No relay has reserved a slot yet: wait for the retry shown in the Relays panel, or check that the relay is up.'
      })

  checks.push(current?.seedKnown === true
    ? { id: 'beacon', label: 'Network beacon known', ok: true, detail: `Round ${current.round} seed known.` }
    : { id: 'beacon', label: 'Network beacon known', ok: false, detail: 'The beacon of this round is not known yet: stay online for one full round so the node learns it.' })

  const latest = recent.slice(0, RECENT_ROUNDS)
  const committedRound = latest.find(r => r.committed)
  const skipped = latest.find(r => r.skipped !== undefined)?.skipped
  checks.push(committedRound !== undefined
    ? { id: 'committing', label: 'Committing', ok: true, detail: `Committed in round ${committedRound.round}.` }
    : {
        id: 'committing',
        label: 'Committing',
        ok: false,
        detail: skipped !== undefined
          ? `No commit in the last ${RECENT_ROUNDS} rounds (${skipped}): keep this tab open and online until the next round.`
          : `No commit in the last ${RECENT_ROUNDS} rounds: keep this tab open and online, and enable a capability if every one is off.`
      })

  const verifiedRound = recent.find(r => r.verified)
  const validators = current?.validators ?? 0
  checks.push(verifiedRound !== undefined || validators > 0
    ? {
        id: 'verifier',
        label: 'A verifier seen',
        ok: true,
        detail: verifiedRound !== undefined ? `Round ${verifiedRound.round} was verified.` : `${validators} validator${validators === 1 ? '' : 's'} this round.`
      }
    : { id: 'verifier', label: 'A verifier seen', ok: false, detail: 'No validator has judged a round yet: stay connected to a relay, since relays validate rounds.' })

  const struck = recent.find(r => r.strike !== undefined)
  checks.push(struck?.strike === undefined
    ? { id: 'strike', label: 'No recent strike', ok: true, detail: `No strike in the last ${shown} rounds.` }
    : {
        id: 'strike',
        label: 'No recent strike',
        ok: false,
        detail: `Struck in round ${struck.round} for ${struck.strike.reason} (${STRIKE_TEXT[struck.strike.reason]}): ${STRIKE_ADVICE[struck.strike.reason]}.`
      })

  const conflict = status.identityConflictRound
  checks.push(conflict === undefined
    ? { id: 'identity', label: 'Identity live in one place', ok: true, detail: 'No other node commits with this identity.' }
    : { id: 'identity', label: 'Identity live in one place', ok: false, detail: `This identity committed from another place in round ${conflict}: run it in one place only.` })

  return checks
}
