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

/** Points for each verified round of the history (unverified rounds earn nothing and are left out). */
export function presencePoints (history: readonly AttestedRound[], roundMs: number): RoundPoints[] {
  const rounds = [...history].sort((a, b) => a.round - b.round)
  const perRound = POINTS_PER_DAY * roundMs / DAY_MS
  const verifiedDays = new Set<number>()
  const result: RoundPoints[] = []
  let streakStart: number | undefined
  let lastVerified: number | undefined
  for (const entry of rounds) {
    if (!entry.verified) continue
    if (lastVerified === undefined || entry.round - lastVerified - 1 > GRACE_ROUNDS) streakStart = entry.round
    lastVerified = entry.round
    const day = Math.floor(entry.round * roundMs / DAY_MS)
    const earlierDays = [...verifiedDays].filter(d => d < day).length
    verifiedDays.add(day)
    const uptimeHours = (entry.round - (streakStart as number)) * roundMs / 3_600_000
    const uptime = uptimeFactor(uptimeHours)
    const liveness = livenessFactor(earlierDays)
    const capability = Math.min(1.49, Math.max(1, entry.capability))
    result.push({ round: entry.round, points: perRound * uptime * liveness * capability, uptimeHours, uptime, liveness, capability })
  }
  return result
}

export interface PointsSummary {
  presence: number
  work: number
  total: number
  /** Points earned since the start of the current UTC day. */
  today: number
}

export function summarize (points: readonly RoundPoints[], roundMs: number, now: number, work = 0): PointsSummary {
  const presence = points.reduce((sum, p) => sum + p.points, 0)
  const todayStart = Math.floor(now / DAY_MS) * DAY_MS
  const today = points.filter(p => p.round * roundMs >= todayStart).reduce((sum, p) => sum + p.points, 0)
  return { presence, work, total: presence + work, today }
}
