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
  defaultReplicas: 3
} as const
