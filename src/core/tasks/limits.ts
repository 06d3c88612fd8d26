import { EMBED_LIMITS } from '../embedding/limits.ts'

/**
 * Bounds on one orchestrated task. A module of their own: receipts cap an orchestration's units by
 * them, and a page loads the receipts before it is online, the task rules only with the job services.
 */
export const TASK_LIMITS = {
  /** Texts in one embed task. */
  embedInputs: 4096,
  /** Prompts in one chat task. */
  chatInputs: 256,
  /** UTF-8 bytes of every input together (a prompt's messages, and stop strings, count). */
  inputBytes: 2 * 1024 * 1024,
  /** Texts per embed shard: one request of the embed protocol. */
  embedShard: EMBED_LIMITS.batch,
  /** Prompts per chat shard: one request of the inference protocol. */
  chatShard: 1
} as const
