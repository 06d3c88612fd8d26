import type { ChatMessage } from '../../src/core/inference/chat.ts'
import type { ValidChatRequest } from '../../src/core/inference/request.ts'

/**
 * The prompt for a model without a chat template (stories260K is one: a story continuer, not an
 * assistant). Such a model only continues text, so it gets the last user message as it is: the
 * system prompts and earlier turns of a chat are written for instruction-tuned models and would only
 * derail it. With no user message at all, the last message is continued.
 */
export function plainPrompt (messages: readonly ChatMessage[]): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const message = messages[i]
    if (message?.role === 'user') return message.content
  }
  return messages[messages.length - 1]?.content ?? ''
}

/** llama.cpp's sampling fields (llama-server's JSON) for an OpenAI request. */
export interface LlamaSampling {
  max_tokens: number
  temperature: number
  top_p: number
  top_k?: number
  seed?: number
  stop: string[]
}

/**
 * Temperature 0 means greedy: llama.cpp is told so twice, by temperature and by keeping only the top
 * token, so that no sampler in its chain can pick another and the output is the same on every node.
 */
export function llamaSampling (request: ValidChatRequest): LlamaSampling {
  const sampling: LlamaSampling = {
    max_tokens: request.max_tokens,
    temperature: request.temperature,
    top_p: request.top_p,
    stop: [...request.stop]
  }
  if (request.temperature === 0) sampling.top_k = 1
  if (request.seed !== undefined) sampling.seed = request.seed
  return sampling
}
