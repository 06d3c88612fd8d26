/**
 * Round timing (DESIGN section 5): round r = floor(unix_ms / T); commit [0, 0.4T), the challenge at
 * 0.4T, reveal [0.4T, 0.7T), verify [0.7T, T).
 */
export type PulsePhase = 'commit' | 'reveal' | 'verify'

export const CHALLENGE_AT = 0.4
export const REVEAL_END = 0.7

export interface RoundTiming {
  round: number
  phase: PulsePhase
  start: number
  challengeAt: number
  revealEnd: number
  end: number
}

export function roundOf (now: number, roundMs: number): number {
  return Math.floor(now / roundMs)
}

export function timingOf (round: number, roundMs: number, now = round * roundMs): RoundTiming {
  const start = round * roundMs
  const challengeAt = start + Math.round(CHALLENGE_AT * roundMs)
  const revealEnd = start + Math.round(REVEAL_END * roundMs)
  const phase: PulsePhase = now < challengeAt ? 'commit' : now < revealEnd ? 'reveal' : 'verify'
  return { round, phase, start, challengeAt, revealEnd, end: start + roundMs }
}

export function currentTiming (now: number, roundMs: number): RoundTiming {
  return timingOf(roundOf(now, roundMs), roundMs, now)
}
