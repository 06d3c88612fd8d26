/**
 * Bounds of the replicated vector store, shared by the wire codecs, the local index and the merge:
 * one put or one answer always fits in a single stream message.
 */
export const MEMORY_LIMITS = {
  /** UTF-8 bytes of a key. */
  keyBytes: 256,
  /** UTF-8 bytes of the metadata stored with a vector (the API layer's JSON, say). */
  metaBytes: 1024,
  /** UTF-8 bytes of a vector space's name (the embedding model id). */
  spaceBytes: 128,
  /** Dimensions of a vector. */
  dims: 4096,
  /** Results of one query. */
  k: 100,
  /** Replicas of each vector unless configured otherwise. */
  defaultReplicas: 3,
  /**
   * How far ahead of a holder's clock a put's version may be: versions are writers' clocks, which
   * drift by seconds, and a version far in the future would keep its owner's next puts out.
   */
  versionAheadMs: 10 * 60_000
} as const

/**
 * How much a holder serves at once and how fast (src/net/memory-service.ts holds peers to it), beside
 * the sizes above: the memory protocol's limits in one place, as docs/protocol.md lists them.
 */
export const MEMORY_SERVING = {
  /** A peer that does not answer in this time is counted as failed; a put or query is one small frame each way. */
  requestTimeoutMs: 5_000,
  /**
   * Requests answered at once, from all peers together: each holds its frame (up to 17 KiB) and a
   * place in the store's write line. A place is taken only once the frame has arrived, so streams that
   * send nothing cannot take them; past it a request is answered busy.
   */
  maxInFlight: 64,
  /**
   * Of those, what senders without a verified history (newcomers in this node's view) may hold
   * together: the rest stay free for established peers, whose re-replication pushes a flood of fresh
   * keys' puts would otherwise turn away until they give up.
   */
  newcomersInFlight: 48,
  /**
   * Streams one peer may have open at once, counted before the frame is read: what a peer that opens
   * streams and sends nothing (or stops reading) holds is these few places of its own.
   */
  maxStreamsPerPeer: 4,
  /** A client asks every memory peer once per query of its own: a person's use is far below this. */
  queriesPerMinute: 60,
  /** Some queries at once (a page that loads and asks a few things) before the rate applies. */
  queryBurst: 20,
  /**
   * Main-thread time a minute the node spends answering peers' queries (10%): each scans a whole space
   * synchronously (9–34 ms for 1,000 × 4,096 or 40,000 × 384 vectors), and identities cost nothing,
   * so the per-peer rate alone does not bound it. Past it, queries are answered busy.
   */
  queryMsPerMinute: 6_000
} as const

export interface BudgetLimits {
  vectors: number
  /** What the vectors cost in memory, as heldBytes counts it. */
  bytes: number
  spaces: number
}

/**
 * A holder's budgets: for all it holds, for what one owner (the signer of puts) has there, and for
 * what all newcomers together have: owners without a verified pulse history in the holder's view.
 */
export interface MemoryBudgetLimits {
  holder: BudgetLimits
  owner: BudgetLimits
  newcomers: BudgetLimits
}

const MiB = 1024 * 1024

/**
 * The default budgets (docs/internals.md, "Memory budgets"). 64 MiB is what a tab can give its
 * memory next to a model: with short keys and metadata, about 30,000 vectors of all-MiniLM-L6-v2
 * (384 dimensions), 75,000 of model2vec-64d or 3,900 of 4,096 dimensions. Eight owners at their
 * budget fill a holder; past that new keys are refused. Identities are free, so owners without a
 * verified history share a quarter of it: a crowd of fresh keys fills that quarter, not the holder.
 */
export const MEMORY_BUDGET: MemoryBudgetLimits = {
  holder: { vectors: 100_000, bytes: 64 * MiB, spaces: 32 },
  owner: { vectors: 20_000, bytes: 8 * MiB, spaces: 4 },
  newcomers: { vectors: 25_000, bytes: 16 * MiB, spaces: 8 }
}

/** Peers asked by one query: the holders of matches are unknown, so every memory peer is, up to this. */
export const MAX_QUERY_PEERS = 64
/**
 * What one query's answers may total, read at their largest: 64 peers answering the largest query
 * (100 hits of 4,096 dimensions, 1.8 MB each) would make a querier hold 114 MB.
 */
export const QUERY_ANSWERS_MAX_BYTES = 16 * MiB

/**
 * The peers one query asks when each answer may be `answerMaxBytes` long: all MAX_QUERY_PEERS for the
 * common queries (10 hits of 384 dimensions are 30 KB), fewer for the largest (9 at 1.8 MB), never none.
 */
export function queryPeerLimit (answerMaxBytes: number): number {
  return Math.max(1, Math.min(MAX_QUERY_PEERS, Math.floor(QUERY_ANSWERS_MAX_BYTES / answerMaxBytes)))
}
