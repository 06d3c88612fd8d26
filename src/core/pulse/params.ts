/** Network-wide pulse parameters: every node of a network must use the same. */
export const PULSE_N = 256
export const PULSE_K = 8

/** Committers after the leader that stand in for it in turn when no valid challenge has arrived. */
export const LEADER_BACKUPS = 2

/**
 * A reveal sent straight to a judge must be taken within this share of the round (0.08T: 7 s at
 * T = 90 s, a dial through a relay included); otherwise the committer publishes it on the topic,
 * which still reaches every judge before judging starts at 0.72T.
 */
export const REVEAL_SEND_SHARE = 0.08

/** Seeds a node without the previous beacon keeps track of in a round it watches. */
export const MAX_CANDIDATE_SEEDS = 8

/**
 * Challenges a round keeps: it has one leader and two backups, besides its anchors. Past it a
 * challenge takes the place of the one whose leader ranks last (RoundState.addChallenge): every
 * committer may lead, and a flood of fresh keys, each committing and then challenging with 512
 * listed commits, made every member of the committee keep one of 230 kB decoded per key.
 */
export const MAX_CHALLENGES = 8
/**
 * Challenges a watched round keeps from leaders whose commit this node missed (it came back
 * mid-round); a round has one leader and two backups.
 */
export const MAX_UNKNOWN_LEADER_CHALLENGES = 8

/** Offsets inside a round, as fractions of T, at which a node acts. */
/**
 * The omission cutoff is never closer to the challenge than this: a commit must have had this long to
 * reach the leader before leaving it out can be held against it (short dev rounds get no omission rule).
 */
export const OMIT_SLACK_MS = 2_000

export const ACT_AT = {
  /**
   * A commit that reached a node before this is well inside the commit phase: a challenge that omits
   * it is invalid. Later commits are the leader's to take or leave, so a leader can bias its challenge
   * only by commits that arrive in the last tenth of the commit phase.
   */
  omitCutoff: 0.3,
  /** The leader publishes the challenge a moment after the commit deadline, letting late commits land. */
  challenge: 0.42,
  /**
   * An anchor leading a young round publishes a moment before the committers' leader, so that the
   * committer ranked first sees a challenge that outranks its own and publishes none.
   */
  anchorChallenge: 0.41,
  /** Each backup leader's turn comes this much after the one before. */
  backupStep: 0.03,
  /** Committers reveal once the challenge has had time to spread; a challenge heard after this is ignored. */
  reveal: 0.52,
  /** Validators judge once the reveal window has closed. */
  verify: 0.72,
  /**
   * In the last round of an epoch, a node joins its next committee's topic once its own round's
   * traffic is over (the same topic still carries the old committee's round until then), early enough
   * for its mesh there to form before the epoch starts.
   */
  prejoin: 0.85
} as const
