import { HyperspaceError } from '../errors.ts'

export type ProverErrorKind = 'invalid' | 'timeout' | 'worker' | 'closed' | 'prover'

/** A prove, reveal or recomputation in the pulse worker that failed; `kind` says where. */
export class ProverError extends HyperspaceError {
  override name = 'ProverError'

  constructor (readonly kind: ProverErrorKind, message: string) {
    super(`ERR_PROVER_${kind.toUpperCase()}`, message)
  }
}
