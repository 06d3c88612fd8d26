import { MAX_DELTA_CHARS } from '../wire/inference.ts'

/**
 * The most UTF-8 bytes one token of any vocabulary decodes to. Real vocabularies stay well under it
 * (their longest pieces are runs of spaces or punctuation of a few dozen bytes), so an honest answer
 * never comes near max_tokens × this.
 */
export const MAX_TOKEN_BYTES = 256

/** From the `accept` to the first delta: loading the model and reading a long prompt. */
export const FIRST_TOKEN_ALLOWANCE_MS = 30_000

/**
 * The slowest average pace a whole answer may keep: two tokens a second, what a small model on a
 * slow CPU still manages.
 */
export const PER_TOKEN_ALLOWANCE_MS = 500

/** What one streamed answer may hold and how long it may take, as `max_tokens` allows it. */
export interface AnswerBudget {
  /** UTF-8 bytes of text over every delta. */
  bytes: number
  /** Delta frames: one per engine piece (at most one per token), plus the splits of long pieces. */
  frames: number
  /** From the `accept` to the `done`. */
  deadlineMs: number
}

export function answerBudget (maxTokens: number): AnswerBudget {
  const bytes = maxTokens * MAX_TOKEN_BYTES
  return {
    bytes,
    // A piece longer than MAX_DELTA_CHARS is split; a character is at least one byte, so the splits
    // add at most bytes / MAX_DELTA_CHARS frames to the one per token.
    frames: maxTokens + Math.ceil(bytes / MAX_DELTA_CHARS),
    deadlineMs: FIRST_TOKEN_ALLOWANCE_MS + maxTokens * PER_TOKEN_ALLOWANCE_MS
  }
}
