import { multiproofLength, verifyMultiproof } from './merkle.ts'
import type { Vote } from './validators.ts'
import type { CapabilityName } from '../capabilities.ts'
import type { RevealMessage, StrikeReason, VerdictResult } from '../wire/pulse.ts'

/** Strikes about the revealed rows themselves, which anyone can settle by recomputing them. */
const ROW_REASONS: ReadonlySet<StrikeReason> = new Set(['wrong-row', 'bad-proof', 'wrong-rows-challenged'])

/** One committer's part of a round, as a validator judges it. */
export interface RevealCase {
  peer: string
  /** The root it committed, as the canonical challenge lists it. */
  root: Uint8Array
  /** The canonical challenge's leader: a reveal answering another leader is no reveal. */
  leader: string
  /** The rows that challenge picked for it. */
  indices: readonly number[]
  /** The leaves of those rows as the validator recomputed them; none when its reveal came too late. */
  leaves: readonly Uint8Array[] | undefined
  reveal: RevealMessage | undefined
  n: number
  /** The capabilities this validator confirms for it. */
  caps: CapabilityName[]
  /** Two commits under its identity were seen this round. */
  duplicateIdentity: boolean
  /** It led a challenge that cannot be canonical. */
  badChallenge: boolean
}

/** The verdict on one committer's reveal: a pass bound to its root, or the first strike that applies. */
export function judgeReveal (c: RevealCase): VerdictResult {
  const { peer, root, caps, reveal, indices, leaves, n } = c
  const strike = (reason: NonNullable<VerdictResult['reason']>): VerdictResult => ({ peer, ok: false, reason, root, caps })
  // Nobody can tell which of two nodes under one identity is the owner: both lose the round.
  if (c.duplicateIdentity) return strike('duplicate-identity')
  if (c.badChallenge) return strike('bad-challenge')
  if (reveal === undefined || reveal.leader !== c.leader || leaves === undefined) return strike('no-reveal')
  if (reveal.rows.length !== indices.length || !indices.every(i => reveal.rows.includes(i))) return strike('wrong-rows-challenged')
  const revealed = reveal.rows.map(i => leaves[indices.indexOf(i)])
  if (revealed.some(leaf => leaf === undefined) || reveal.proof.length !== multiproofLength(reveal.rows, n)) return strike('bad-proof')
  // A well-formed proof that does not lead from the true rows to the root: the committed tree holds other rows there.
  if (!verifyMultiproof(revealed as Uint8Array[], reveal.rows, n, reveal.proof, root)) return strike('wrong-row')
  return { peer, ok: true, root, caps }
}

/**
 * The votes about a committer that its work, as this node checked it (`check`), does not disprove: a
 * strike saying right rows are wrong, or a pass for rows found wrong, is a provable lie and not counted.
 */
export function votesTheWorkAllows (votes: readonly Vote[], check: VerdictResult | undefined): Vote[] {
  const checkedRight = check?.ok === true
  const checkedWrong = check?.reason !== undefined && ROW_REASONS.has(check.reason)
  return votes.filter(({ result }) => result.ok
    ? !checkedWrong
    : !(checkedRight && result.reason !== undefined && ROW_REASONS.has(result.reason)))
}
