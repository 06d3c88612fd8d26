/** Network-wide pulse parameters: every node of a network must use the same. */
export const PULSE_N = 256
export const PULSE_K = 8

/**
 * A round whose commits show fewer than FEW_VALIDATORS nodes with the validation capability is
 * validated also by its FALLBACK_VALIDATORS committers with the lowest leader score. Checking a
 * reveal costs n² per row, so any node can afford it; without this, a small committee that happens
 * to hold no validator leaves its honest members unverified for the round.
 */
export const FEW_VALIDATORS = 2
export const FALLBACK_VALIDATORS = 3

/** Offsets inside a round, as fractions of T, at which a node acts. */
export const ACT_AT = {
  /** The leader publishes the challenge a moment after the commit deadline, letting late commits land. */
  challenge: 0.42,
  /** Committers reveal once the challenge has had time to spread. */
  reveal: 0.5,
  /** Validators judge once the reveal window has closed. */
  verify: 0.72,
  /**
   * In the last round of an epoch, a node joins its next committee's topic once its own round's
   * traffic is over (the same topic still carries the old committee's round until then), early enough
   * for its mesh there to form before the epoch starts.
   */
  prejoin: 0.85
} as const
