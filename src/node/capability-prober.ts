import { cidForBlock, type BlockCid } from '../core/blocks/cid.ts'
import { HyperspaceError, PeerBusyError, UnservedClaimError } from '../core/errors.ts'
import { validateChatRequest, type ValidChatRequest } from '../core/inference/request.ts'
import type { CapabilityName } from '../core/capabilities.ts'
import type { CancelOptions } from '../core/progress.ts'
import type { CapabilityProber, ProbeOutcome } from '../core/pulse/ports.ts'

/**
 * The real jobs behind capability spot-checks (docs/protocol.md, "Capability spot-checks"): each is
 * sent to the checked peer alone, over the protocol a client uses, so the peer cannot tell a check
 * from a user's job, and its server limits apply as to any job.
 */
export interface ProbeJobs {
  /** The chat models the peer announces (capability registry). */
  announcedModels: (peer: string) => readonly string[]
  /** Runs the request on that peer; resolves with the text once its answer is done. */
  complete: (peer: string, request: ValidChatRequest, options: CancelOptions) => Promise<string>
  /** Embeds on that peer with this node's embedding model; resolves with the number of vectors. */
  embed: (peer: string, texts: string[], options: CancelOptions) => Promise<number>
  fetchBlock: (peer: string, cid: BlockCid, options: CancelOptions) => Promise<void>
  queryMemory: (peer: string, space: string, vector: Float32Array, options: CancelOptions) => Promise<void>
}

/** At most this many tokens: a check costs the peer a few tokens of generation, no more. */
export const PROBE_MAX_TOKENS = 4
const PROMPT = 'Once upon a time'
const PROBE_TEXT = 'hyperspace spot-check'
const MEMORY_SPACE = 'raw-8'

export class NetworkCapabilityProber implements CapabilityProber {
  constructor (private readonly jobs: ProbeJobs) {}

  async probe (peer: string, capability: CapabilityName, _round: number, { signal }: Required<CancelOptions>): Promise<ProbeOutcome> {
    try {
      return await this.run(peer, capability, signal)
    } catch (err) {
      return outcomeOf(capability, err)
    }
  }

  private async run (peer: string, capability: CapabilityName, signal: AbortSignal): Promise<ProbeOutcome> {
    switch (capability) {
      case 'inference': {
        // A model the peer itself says it serves: a claim of inference with none is a claim of nothing.
        const models = this.jobs.announcedModels(peer)
        const model = models[randomIndex(models.length)]
        if (model === undefined) throw new UnservedClaimError(peer, capability, 'no chat model')
        // Sampled with a fresh seed, so that no cache can answer for a model the peer does not run.
        const request = validateChatRequest({ model, messages: [{ role: 'user', content: PROMPT }], max_tokens: PROBE_MAX_TOKENS, temperature: 1, seed: randomU32() })
        await this.jobs.complete(peer, request, { signal })
        return 'ok'
      }
      case 'embedding':
        return await this.jobs.embed(peer, [PROBE_TEXT], { signal }) === 1 ? 'ok' : 'failed'
      case 'storage':
        // Nobody holds a block of fresh random bytes: a peer that stores answers `not-found`, one
        // whose storage is off refuses. This shows the store runs, not what it holds.
        await this.jobs.fetchBlock(peer, await cidForBlock(crypto.getRandomValues(new Uint8Array(32))), { signal })
        return 'failed'
      case 'memory': {
        const vector = new Float32Array(8).map(() => Math.random() + 0.1)
        await this.jobs.queryMemory(peer, MEMORY_SPACE, vector, { signal })
        return 'ok'
      }
      default:
        return 'inconclusive'
    }
  }
}

/**
 * What an error from a probe job means. Busy is no verdict on the peer (its queue is full of others'
 * jobs); a refusal of the checker's embedding model is none either (the peer may serve another).
 */
function outcomeOf (capability: CapabilityName, err: unknown): ProbeOutcome {
  if (err instanceof PeerBusyError) return 'inconclusive'
  if (!(err instanceof HyperspaceError)) return 'failed'
  if (capability === 'storage' && err.code === 'ERR_PEER_LACKS_BLOCK') return 'ok'
  if (capability === 'embedding' && err.code === 'ERR_MODEL_NOT_SERVED') return 'inconclusive'
  return 'failed'
}

function randomU32 (): number {
  return crypto.getRandomValues(new Uint32Array(1))[0] as number
}

function randomIndex (length: number): number {
  return length === 0 ? 0 : randomU32() % length
}
