/**
 * Presence points (DESIGN section 6), as a pure function of a node's attested round history, so that
 * anyone holding the attestations can recompute anyone's points.
 *
 * Per verified round: B * (T / 1 day) * uptime * liveness * capability, B = 100 points per day.
 * - uptime = 1 + 0.5 * ln(1 + h) / ln(1 + 720), h = hours of continuous uptime (capped at 30 days).
 *   The streak starts at its first verified round; up to 3 missed rounds in a row keep it, a 4th
 *   ends it and the next verified round starts a new one.
 * - liveness = 0.5 + 0.5 * min(1, d / 14), d = earlier UTC days that had a verified round.
 * - capability = 1 + the weights of the capabilities the round's verifying verdicts confirmed (what
 *   every counted pass saw working, within what the node committed; docs/protocol.md, "Capability
 *   spot-checks"), at most 1.49.
 */

export const POINTS_PER_DAY = 100
export const DAY_MS = 86_400_000
export const GRACE_ROUNDS = 3
const UPTIME_CAP_HOURS = 720
const LIVENESS_DAYS = 14

export interface AttestedRound {
  round: number
  verified: boolean
  /** 1 + weights of the capabilities the node committed as enabled and working, capped at 1.49. */
  capability: number
}

export interface RoundPoints {
  round: number
  points: number
  uptimeHours: number
  uptime: number
  liveness: number
  capability: number
}

export function uptimeFactor (hours: number): number {
  const h = Math.min(Math.max(hours, 0), UPTIME_CAP_HOURS)
  return 1 + 0.5 * Math.log1p(h) / Math.log1p(UPTIME_CAP_HOURS)
}

export function livenessFactor (earlierDays: number): number {
  return 0.5 + 0.5 * Math.min(1, earlierDays / LIVENESS_DAYS)
}

/**
 * What points need of rounds no longer kept (a node keeps a bounded window of round records): their
 * total, and the state the next rounds' factors continue from. Folding rounds into it, then computing
 * the rest after it, gives exactly the points of the whole history.
 */
export interface PointsFold {
  /** Rounds up to this one are folded in. */
  throughRound: number
  /** Their presence points. */
  points: number
  /** UTC days that had a verified round among them. */
  verifiedDays: number
  /** The last of those days, and the points earned on it (kept rounds may earn more that day). */
  lastDay?: number
  lastDayPoints: number
  /** The uptime streak kept rounds may go on with: its first round and the last verified one. */
  streakStart?: number
  lastVerified?: number
}

export const EMPTY_FOLD: Readonly<PointsFold> = Object.freeze({ throughRound: -1, points: 0, verifiedDays: 0, lastDayPoints: 0 })

/** Points for each verified round of the history (unverified rounds earn nothing and are left out). */
export function presencePoints (history: readonly AttestedRound[], roundMs: number, after: PointsFold = EMPTY_FOLD): RoundPoints[] {
  return accumulate(history, roundMs, after).points
}

/** `fold` with `history` folded in too (its rounds must all come after `fold.throughRound`). */
export function foldPoints (fold: PointsFold, history: readonly AttestedRound[], roundMs: number): PointsFold {
  return accumulate(history, roundMs, fold).fold
}

function accumulate (history: readonly AttestedRound[], roundMs: number, after: PointsFold): { points: RoundPoints[], fold: PointsFold } {
  const rounds = [...history].sort((a, b) => a.round - b.round)
  const perRound = POINTS_PER_DAY * roundMs / DAY_MS
  // Days of these rounds; the fold's days are counted, its last one may be one of these too.
  const verifiedDays = new Set<number>()
  const foldedDaysBefore = (day: number): number => after.verifiedDays - (after.lastDay === day ? 1 : 0)
  const result: RoundPoints[] = []
  let { streakStart, lastVerified, lastDay, lastDayPoints, points: total } = after
  for (const entry of rounds) {
    if (!entry.verified) continue
    if (lastVerified === undefined || entry.round - lastVerified - 1 > GRACE_ROUNDS) streakStart = entry.round
    lastVerified = entry.round
    const day = Math.floor(entry.round * roundMs / DAY_MS)
    const earlierDays = foldedDaysBefore(day) + [...verifiedDays].filter(d => d < day && d !== after.lastDay).length
    verifiedDays.add(day)
    const uptimeHours = (entry.round - (streakStart as number)) * roundMs / 3_600_000
    const uptime = uptimeFactor(uptimeHours)
    const liveness = livenessFactor(earlierDays)
    const capability = Math.min(1.49, Math.max(1, entry.capability))
    const points = perRound * uptime * liveness * capability
    result.push({ round: entry.round, points, uptimeHours, uptime, liveness, capability })
    total += points
    lastDayPoints = day === lastDay ? lastDayPoints + points : points
    lastDay = day
  }
  if (after.lastDay !== undefined) verifiedDays.delete(after.lastDay)
  const fold: PointsFold = {
    throughRound: Math.max(after.throughRound, rounds.at(-1)?.round ?? -1),
    points: total,
    verifiedDays: after.verifiedDays + verifiedDays.size,
    lastDayPoints,
    ...(lastDay !== undefined ? { lastDay } : {}),
    ...(streakStart !== undefined ? { streakStart } : {}),
    ...(lastVerified !== undefined ? { lastVerified } : {})
  }
  return { points: result, fold }
}

export interface PointsSummary {
  presence: number
  work: number
  total: number
  /** Points earned since the start of the current UTC day. */
  today: number
}

/** Sums a history's points; `after` holds the points of rounds folded away (see PointsFold). */
export function summarize (points: readonly RoundPoints[], roundMs: number, now: number, work = 0, after: PointsFold = EMPTY_FOLD): PointsSummary {
  // Summed in round order from the fold's total, as the fold summed them: pruning changes no bit.
  const presence = points.reduce((sum, p) => sum + p.points, after.points)
  const today = Math.floor(now / DAY_MS)
  const todayStart = today * DAY_MS
  const foldedToday = after.lastDay === today ? after.lastDayPoints : 0
  const todayPoints = points.filter(p => p.round * roundMs >= todayStart).reduce((sum, p) => sum + p.points, foldedToday)
  return { presence, work, total: presence + work, today: todayPoints }
}
