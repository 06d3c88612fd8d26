import type { PulsePhase } from './clock.ts'
import type { BeaconProver, BeaconVerifier, StrikeReason } from '../wire/pulse.ts'
import type { PulseSigner } from '../crypto/signing.ts'
import type { LeafRecomputer } from './recompute.ts'
import type { Prover } from './reference-prover.ts'
import type { ValidatorHistory } from './validators.ts'
import type { CapabilityName } from '../capabilities.ts'
import type { Scheduler } from '../scheduler.ts'
import type { SpotCheckOptions } from './spot-checks.ts'
import type { CancelOptions } from '../progress.ts'

/**
 * What the pulse engine (engine.ts) needs from the node it runs on, and what it offers: its
 * components are passed in, so the same engine runs in a browser, in the relay and in the simulator.
 */

/** How the engine reaches the network: gossip topics it joins, leaves and publishes on, and single peers. */
export interface PulseTransport {
  publish(topic: string, data: Uint8Array): Promise<void>
  join(topic: string): void
  leave(topic: string): void
  /**
   * Sends a signed reveal envelope to one peer alone (PULSE_REVEAL_PROTOCOL); resolves once that
   * peer's engine kept it, rejects when the peer cannot be reached or did not keep it.
   */
  sendReveal(peer: string, data: Uint8Array): Promise<void>
}

/**
 * What a spot-check found (docs/protocol.md, "Capability spot-checks"): the peer did the job (`ok`),
 * failed it or refused it (`failed`), or nothing can be concluded (`inconclusive`: it was busy with
 * other jobs, or serves another embedding model than the checker knows).
 */
export type ProbeOutcome = 'ok' | 'failed' | 'inconclusive'

/**
 * Runs one small real job on `peer` over the protocol of `capability`, to that peer alone. The engine
 * bounds it (a timeout aborts `options.signal` and counts as `failed`) and runs only a few at once.
 */
export interface CapabilityProber {
  probe(peer: string, capability: CapabilityName, round: number, options: Required<CancelOptions>): Promise<ProbeOutcome>
}

/** What this node did in a round and what validators said about it. */
export interface OwnRound {
  committed: boolean
  revealed: boolean
  verified: boolean
  strikes: Array<{ validator: string, reason: StrikeReason }>
  caps: CapabilityName[]
  /**
   * The capabilities the verdicts that verified the round confirm (the intersection of what each
   * counted pass confirms, within `caps`): the round's points bonus. Absent in records from before
   * spot-checks, whose bonus is their committed `caps`.
   */
  confirmedCaps?: CapabilityName[]
  skipped?: string
  /** This node's signed commit of the round (its envelope): what a points proof shows for the round. */
  commit?: Uint8Array
  /**
   * The round's drawn validators in this node's view, and the seed they were drawn from: whose word
   * it counts for the round when it checks another node's points (validators.ts, countsInRound).
   */
  drawn?: DrawnValidators
}

export interface DrawnValidators { seed: Uint8Array, validators: string[] }

/** This node's own round records (PulseLedger, ledger.ts; in IndexedDB in browsers). */
export interface RoundBook {
  get(round: number): OwnRound
  update(round: number, change: (record: OwnRound) => void): Promise<void>
}

export interface Attestation {
  round: number
  validator: string
  /** The validator's signed verdict header, this node's result and its Merkle path (attestation.ts): anyone can re-check it later. */
  attestation: Uint8Array
}

export interface PulseEngineOptions {
  networkId: string
  roundMs: number
  signer: PulseSigner
  scheduler: Scheduler
  transport: PulseTransport
  book: RoundBook
  /** Absent on a validator-only node (the relay). */
  prover?: Prover
  /** Proves this node's VRF when it leads: needed by every node that commits. */
  beaconKey?: BeaconProver
  /** Checks leaders' VRF proofs. */
  verifyBeacon: BeaconVerifier
  /** Where a validator recomputes the challenged rows it checks (default: on this thread). */
  recompute?: LeafRecomputer
  validating: () => boolean
  workingCaps: () => CapabilityName[]
  /** Runs this node's spot-checks of others' claimed capabilities when it is drawn; none without it. */
  prober?: CapabilityProber
  /** Spot-check rates and bounds (spot-checks.ts); the defaults unless given. */
  spotChecks?: Partial<SpotCheckOptions>
  n?: number
  k?: number
  /** Serve this one committee whatever the epoch (a relay, on each committee topic it carries). */
  committee?: number
  /** K in the starting epoch when known already; otherwise the node learns it from the lobby. */
  committees?: number
  /** The verified history this node has watched, and the anchors it trusts (validators.ts); empty unless given. */
  history?: ValidatorHistory
  /** This running instance's id in commits (see CommitMessage.sid); random unless given. */
  sid?: Uint8Array
  keepAttestation?: (attestation: Attestation) => Promise<void>
  /** The validator history changed at a round's end: keep it, so a reload does not start from nothing. */
  keepHistory?: (history: ValidatorHistory) => Promise<void>
  onUpdate?: () => void
  /** Another node committed with this node's identity. */
  onIdentityConflict?: (round: number) => void
  /**
   * Committers answered a leader whose challenge this validator-only node does not hold: most often
   * another relay of the deployment that it was not told of (`--anchor`), so it judges another challenge.
   */
  onUnknownLeaders?: (round: number, leaders: string[]) => void
}

export interface PulseCurrent {
  round: number
  phase: PulsePhase
  phaseEndsAt: number
  leader: string | null
  /** The leader is one of this node's anchors (a bootstrap relay), which lead a young network's rounds. */
  leaderIsAnchor: boolean
  committed: boolean
  revealed: boolean
  verified: boolean
  /** The seed of this round is known first-hand, so this node can take part. */
  seedKnown: boolean
  commits: number
  validators: number
  /** This node's committee in the current epoch. */
  committee: number
  /** K in the current epoch; null while the node is still learning it. */
  committees: number | null
}
