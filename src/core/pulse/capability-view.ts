import { CAPABILITY_CHECKS, type CapabilityName } from '../capabilities.ts'

/**
 * One node's view of which peers' capability claims have been seen to work (docs/protocol.md,
 * "Capability spot-checks"): a claim is confirmed for a number of rounds after a check passed, this
 * node's own or one a checker's verdict reported, and a check this node saw fail itself strikes the
 * claim for a while whatever others report. Bounded (docs/internals.md, "Budgets").
 */

export interface ClaimParams {
  /** Rounds a passed check keeps a claim confirmed: several times the interval between checks. */
  confirmRounds: number
  /** Rounds a check this node saw fail keeps it from confirming the claim. */
  strikeRounds: number
  /** (peer, capability) entries kept; past it, the one that expires first is forgotten. */
  maxEntries: number
}

export const CLAIM_DEFAULTS: ClaimParams = { confirmRounds: 96, strikeRounds: 16, maxEntries: 8192 }

/**
 * Claims confirmed before this view existed, until a check or report says otherwise: the simulator
 * starts a network as it would be after days of rounds (as ValidatorHistory's preAged does).
 */
export type ConfirmedBefore = (peer: string, capability: CapabilityName) => boolean

interface Claim { confirmedUntil: number, struckUntil: number }

const NEVER = -Infinity

export class CapabilityView {
  private readonly claims = new Map<string, Claim>()

  constructor (private readonly params: ClaimParams = CLAIM_DEFAULTS, private readonly confirmedBefore: ConfirmedBefore = () => false) {}

  get size (): number { return this.claims.size }

  /** This node's own check of a claim, started for `round`, came back. */
  probed (peer: string, capability: CapabilityName, round: number, outcome: 'ok' | 'failed'): void {
    const claim = this.claim(peer, capability)
    if (outcome === 'ok') {
      claim.confirmedUntil = Math.max(claim.confirmedUntil, round + this.params.confirmRounds)
      claim.struckUntil = NEVER
    } else {
      claim.confirmedUntil = NEVER
      claim.struckUntil = round + this.params.strikeRounds
    }
  }

  /**
   * A checker's counted verdict in `round` reported its check of the claim: confirmed, or not (failed,
   * or no answer in time). A report never lifts a strike of this node's own: its own sight beats hearsay.
   */
  reported (peer: string, capability: CapabilityName, round: number, confirmed: boolean): void {
    const claim = this.claim(peer, capability)
    claim.confirmedUntil = confirmed ? Math.max(claim.confirmedUntil, round + this.params.confirmRounds) : NEVER
  }

  isConfirmed (peer: string, capability: CapabilityName, round: number): boolean {
    const claim = this.claims.get(key(peer, capability))
    if (claim === undefined) return this.confirmedBefore(peer, capability)
    return claim.confirmedUntil >= round && claim.struckUntil < round
  }

  /**
   * The capabilities of `committed` this node confirms for `peer` in `round`: probed ones it holds a
   * confirmation of, caching with a confirmed inference, validation when the peer was seen publishing
   * a verdict, and nothing that cannot be checked (CAPABILITY_CHECKS).
   */
  confirmed (peer: string, committed: readonly CapabilityName[], round: number, publishedVerdict: boolean): CapabilityName[] {
    return committed.filter(capability => {
      switch (CAPABILITY_CHECKS[capability]) {
        case 'probe': return this.isConfirmed(peer, capability, round)
        case 'with-inference': return committed.includes('inference') && this.isConfirmed(peer, 'inference', round)
        case 'verdicts': return publishedVerdict
        case 'none': return false
      }
    })
  }

  /** Forgets what has expired by `round`. */
  forgetBefore (round: number): void {
    for (const [k, claim] of this.claims) if (expiry(claim) < round) this.claims.delete(k)
  }

  private claim (peer: string, capability: CapabilityName): Claim {
    const k = key(peer, capability)
    let claim = this.claims.get(k)
    if (claim === undefined) {
      if (this.claims.size >= this.params.maxEntries) this.evictOne()
      claim = { confirmedUntil: NEVER, struckUntil: NEVER }
      this.claims.set(k, claim)
    }
    return claim
  }

  private evictOne (): void {
    let first: string | undefined
    let at = Infinity
    for (const [k, claim] of this.claims) {
      if (expiry(claim) < at) { first = k; at = expiry(claim) }
    }
    if (first !== undefined) this.claims.delete(first)
  }
}

function key (peer: string, capability: CapabilityName): string {
  return `${peer} ${capability}`
}

function expiry (claim: Claim): number {
  return Math.max(claim.confirmedUntil, claim.struckUntil)
}
