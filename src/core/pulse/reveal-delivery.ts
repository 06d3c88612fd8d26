import { REVEAL_SEND_SHARE } from './params.ts'
import { hasDraw, mayBeDrawn, revealRecipients, revealVolunteers } from './reveal-recipients.ts'
import type { LeafRecomputer } from './recompute.ts'
import type { VerdictResult } from '../wire/pulse.ts'
import type { Scheduler } from '../scheduler.ts'
import type { PulseTransport } from './ports.ts'
import type { RoundState } from './round-state.ts'

/** What delivering a reveal needs of the engine's components. */
export interface RevealPorts {
  transport: PulseTransport
  scheduler: Scheduler
  roundMs: number
}

/**
 * Sends a committer's signed reveal (`data`) to the peers that judge it (reveal-recipients.ts), and
 * calls `publish` (the committee topic) when there is no draw to go by or any of them did not take
 * it within REVEAL_SEND_SHARE of the round: a judge this node cannot reach, or one that refuses,
 * must not strike it for a reveal it never got. So the worst a refusing judge can do is make one
 * reveal travel as it did before v7.
 */
export async function deliverReveal (state: RoundState, self: string, data: Uint8Array, ports: RevealPorts, publish: () => Promise<void>): Promise<void> {
  const round = state.revealRound()
  const recipients = round === undefined ? undefined : revealRecipients(round, self)
  if (recipients === undefined) {
    await publish()
    return
  }
  const sent = await Promise.allSettled(recipients.map(async peer => { await withinShare(ports, ports.transport.sendReveal(peer, data)) }))
  if (sent.some(outcome => outcome.status === 'rejected')) await publish()
}

async function withinShare (ports: RevealPorts, send: Promise<void>): Promise<void> {
  let cancel = (): void => {}
  const late = new Promise<never>((_resolve, reject) => {
    cancel = ports.scheduler.after(REVEAL_SEND_SHARE * ports.roundMs, () => { reject(new Error('the reveal was not taken in time')) })
  })
  try {
    await Promise.race([send, late])
  } finally {
    cancel()
  }
}

/**
 * Whether a node judges the round, given what reaches it: a drawn validator always; a volunteer
 * (`validating`) only where reveals reach it: as a validator-only node (an anchor, which every
 * committer sends its reveal to), as one of the round's volunteers, or when there is no draw and
 * reveals travel on the topic. A volunteer without reveals would strike every committer `no-reveal`.
 */
export function judgesRound (state: RoundState, self: string, validating: boolean, validatorOnly: boolean): boolean {
  if (state.drawnValidators().includes(self)) return true
  if (!validating) return false
  const round = state.revealRound()
  return round === undefined || validatorOnly || !hasDraw(round) || revealVolunteers(round).includes(self)
}

/**
 * The results of the verdict a node publishes for the round; none when it does not judge it. A node
 * that judges only because another view may draw it (mayBeDrawn) leaves out the committers whose
 * reveal did not reach it: committers that do not count it aged do not send it theirs, so a missing
 * reveal proves nothing there.
 */
export async function verdictResults (state: RoundState, self: string, validating: boolean, validatorOnly: boolean, recompute: LeafRecomputer): Promise<VerdictResult[]> {
  if (judgesRound(state, self, validating, validatorOnly)) return await state.judgeAll(self, recompute)
  const round = state.revealRound()
  if (round === undefined || !mayBeDrawn(round, self)) return []
  return (await state.judgeAll(self, recompute)).filter(result => result.reason !== 'no-reveal')
}
