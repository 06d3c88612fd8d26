import type { CapabilityName } from '../src/core/capabilities.ts'
import type { CapabilityProber, ProbeOutcome } from '../src/core/pulse/ports.ts'
import type { SpotCheckOptions } from '../src/core/pulse/spot-checks.ts'
import type { Rng } from './rng.ts'

/**
 * Capabilities in the simulator. In a run with capability liars (attacks.ts) every node claims the
 * capabilities a full-profile browser node serves; honest nodes serve them, liars serve none. Spot-
 * checks go through the real SpotChecks of every engine; only the job itself is simulated here: it
 * takes a log-normal time of virtual time and comes back `ok` from a node that serves the capability,
 * `failed` from one that does not. Without liars, nodes claim what they did before (validation).
 */

export const SERVED_CAPS: CapabilityName[] = ['inference', 'embedding', 'storage', 'memory', 'caching']

/** Median time of a probe job: a few tokens, one embedding, one block request. */
const PROBE_MEDIAN_MS = 1_500

export class SimCapabilities {
  private readonly serving = new Map<string, ReadonlySet<CapabilityName>>()

  constructor (private readonly withClaims: boolean, private readonly rng: Rng, private readonly sleep: (ms: number) => Promise<void>) {}

  /** What a new node claims; `serves` is whether it really serves its claims. */
  claims (peer: string, validator: boolean, serves: boolean): CapabilityName[] {
    const caps: CapabilityName[] = this.withClaims ? [...SERVED_CAPS] : []
    if (validator) caps.push('validation')
    this.serving.set(peer, new Set(serves ? caps : caps.filter(c => c === 'validation')))
    return caps
  }

  /** The jobs a node's spot-checks send, as they would come back. */
  prober (): CapabilityProber {
    return {
      probe: async (peer: string, capability: CapabilityName): Promise<ProbeOutcome> => {
        await this.sleep(this.rng.lognormal(PROBE_MEDIAN_MS, 0.5))
        return this.serving.get(peer)?.has(capability) === true ? 'ok' : 'failed'
      }
    }
  }

  /**
   * The run starts as after days of rounds: the claims of the starting network's honest nodes have
   * passed checks before and are confirmed in every view; liars' claims failed theirs. A node that
   * joins during the run is confirmed only by the checks it meets.
   */
  spotChecks (founder: (peer: string) => boolean): Partial<SpotCheckOptions> {
    return { confirmedBefore: (peer, capability) => founder(peer) && this.serving.get(peer)?.has(capability) === true }
  }
}
