/** What a call that can be cancelled but reports nothing takes. */
export interface CancelOptions {
  signal?: AbortSignal
}

/**
 * The options every long call takes: a signal that cancels it and a callback for its progress.
 * Each call names its own event type, so a caller knows what it is shown.
 */
export interface LongCallOptions<Progress> extends CancelOptions {
  onProgress?: (progress: Progress) => void
}

/** Bytes done out of a total; total is 0 while the size is not known yet. */
export interface ByteProgress {
  loaded: number
  total: number
}

/** blocks.put hashes the content into blocks, then stores them; blocks.get fetches (or reads) them. */
export type BlockPhase = 'hashing' | 'storing' | 'fetching'

export interface BlockProgress extends ByteProgress {
  phase: BlockPhase
}
