import { ReferenceProver, type ProvedRound, type Prover, type RevealedRowData } from '../src/core/pulse/reference-prover.ts'
import type { WorkKey } from '../src/core/pulse/work.ts'
import type { Rng } from './rng.ts'

/** How a simulated node behaves in the pulse. */
/** `attacker`: does no work (the wrong-work prover) and attacks the pulse itself (attacks.ts). */
export type NodeKind = 'honest' | 'wrong-work' | 'forged-root' | 'attacker'

/** Does its work with another key: rows consistent with its root, but not the rows the seed asks for (struck: wrong-row). */
class WrongWorkProver implements Prover {
  private readonly inner = new ReferenceProver()
  async prove (round: number, key: WorkKey, n: number): Promise<ProvedRound> { return await this.inner.prove(round, { k0: key.k0 ^ 1, k1: key.k1 }, n) }
  async reveal (round: number, indices: readonly number[]): Promise<RevealedRowData[]> { return await this.inner.reveal(round, indices) }
}

/** Computes the right rows but commits a made-up root (struck: wrong-row, as no true row leads to that root). */
class ForgedRootProver implements Prover {
  private readonly inner = new ReferenceProver()
  constructor (private readonly rng: Rng) {}
  async prove (round: number, key: WorkKey, n: number): Promise<ProvedRound> {
    await this.inner.prove(round, key, n)
    return { root: this.rng.bytes(32) }
  }

  async reveal (round: number, indices: readonly number[]): Promise<RevealedRowData[]> { return await this.inner.reveal(round, indices) }
}

export function proverFor (kind: NodeKind, rng: Rng): Prover {
  if (kind === 'wrong-work' || kind === 'attacker') return new WrongWorkProver()
  if (kind === 'forged-root') return new ForgedRootProver(rng)
  return new ReferenceProver()
}

/** A prover that takes `ms` of virtual time per proof, as a device computing n = 256 would. */
export function timedProver (inner: Prover, ms: number, sleep: (ms: number) => Promise<void>): Prover {
  return {
    prove: async (round, key, n) => {
      const proved = await inner.prove(round, key, n)
      await sleep(ms)
      return proved
    },
    reveal: async (round, indices) => await inner.reveal(round, indices)
  }
}
