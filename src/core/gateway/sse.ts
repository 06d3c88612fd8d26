import type { ChatCompletionChunk } from '../inference/chat.ts'

/**
 * Server-sent events as OpenAI streams them: each chunk is one `data:` line of JSON and a blank line,
 * and the stream ends with `data: [DONE]`. JSON.stringify escapes every line break inside strings,
 * so one chunk is always exactly one line, whatever text the model wrote.
 */
export function sseData (value: unknown): string {
  return `data: ${JSON.stringify(value)}\n\n`
}

export const SSE_DONE = 'data: [DONE]\n\n'

/**
 * What the gateway sends for one chunk of the node's stream. The node puts the usage on its last
 * chunk; OpenAI sends it only when asked (`stream_options.include_usage`), in a chunk of its own with
 * no choices after the last one, and every chunk of such a stream carries `usage: null`.
 */
export function openAIChunks (chunk: ChatCompletionChunk, includeUsage: boolean): object[] {
  const { usage, ...rest } = chunk
  if (!includeUsage) return [rest]
  const out: object[] = [{ ...rest, usage: null }]
  if (usage !== undefined) out.push({ id: chunk.id, object: chunk.object, created: chunk.created, model: chunk.model, choices: [], usage })
  return out
}
