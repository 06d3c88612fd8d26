import { utf8 } from '../crypto/bytes.ts'
import type { ValidChatRequest } from './request.ts'

/**
 * Tokens an engine can spend without adding a byte to the text the client receives: the end-of-text
 * token, and up to three bytes of a character cut off when the token limit falls inside it (each
 * byte can be its own token; an incomplete character is never sent).
 */
export const UNSEEN_TOKENS = 4

/**
 * The most completion tokens a server can have generated for `text`, counted by the client from what
 * it received, without the model's tokenizer: every token decodes to at least one byte of text, apart
 * from the UNSEEN_TOKENS and a matched stop string, which the engine cuts from the text. The client
 * signs for no more than this, whatever count the server claims, so a server cannot be paid for
 * tokens it did not send.
 */
export function completionTokenBound (text: string, request: ValidChatRequest): number {
  const stopBytes = Math.max(0, ...request.stop.map(stop => utf8(stop).byteLength))
  return Math.min(request.max_tokens, utf8(text).byteLength + UNSEEN_TOKENS + stopBytes)
}
