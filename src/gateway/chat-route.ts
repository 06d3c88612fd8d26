import { estimateTokens } from '../core/gateway/embeddings.ts'
import { errorBody, gatewayErrorOf, UnknownModelError } from '../core/gateway/errors.ts'
import { openAIChunks, SSE_DONE, sseData } from '../core/gateway/sse.ts'
import { parseChatBody, type GatewayChatRequest } from '../core/gateway/validate.ts'
import { sendJson, write } from './http-io.ts'
import type { ChatCompletion, ChatCompletionChunk } from '../core/inference/chat.ts'
import type { RequestContext } from './request-context.ts'

/** `POST /v1/chat/completions`: routed to a peer that serves the model, streamed or whole. */
export async function chatCompletions (ctx: RequestContext, body: unknown): Promise<void> {
  const parsed = parseChatBody(body)
  ctx.model = parsed.request.model
  // A model no announcement names may still be served unlisted or on request, so the DHT and
  // broadcast tiers are asked; only a model they found nobody for a moment ago is unknown at once.
  if (ctx.backend.firstSeen(ctx.model) === undefined && ctx.backend.missedRecently(ctx.model)) throw new UnknownModelError(ctx.model)
  const input = { ...parsed.request, stream: parsed.stream }
  const answer = await ctx.backend.chat(input, ctx.signal)
  if (!parsed.stream) {
    const completion = answer as ChatCompletion
    ctx.metrics.timeToFirstToken(completion.hyperspace.timeToFirstTokenMs)
    ctx.charge(completion.usage.prompt_tokens, completion.usage.completion_tokens)
    sendJson(ctx.res, 200, completion)
    return
  }
  await stream(ctx, parsed, answer as AsyncIterable<ChatCompletionChunk>)
}

function hasText (chunk: ChatCompletionChunk): boolean {
  const choice = chunk.choices[0]
  return (choice?.delta.content ?? '') !== '' || (choice?.finish_reason ?? null) !== null
}

/**
 * Server-sent events. The status line waits for the first text (or the end of an empty answer): the
 * node sends its first chunk before routing, and a request no peer can serve must still get its 404,
 * 503 or 504 rather than a 200 followed by an error. After that, an error ends the stream with an
 * OpenAI error event, which OpenAI's clients raise as an APIError.
 */
async function stream (ctx: RequestContext, parsed: GatewayChatRequest, chunks: AsyncIterable<ChatCompletionChunk>): Promise<void> {
  const { res } = ctx
  const held: ChatCompletionChunk[] = []
  let open = false
  let text = ''
  let usage: ChatCompletion['usage'] | undefined
  const send = async (chunk: ChatCompletionChunk): Promise<void> => {
    text += chunk.choices[0]?.delta.content ?? ''
    usage = chunk.usage ?? usage
    for (const out of openAIChunks(chunk, parsed.includeUsage)) await write(res, sseData(out))
  }
  const openStream = async (): Promise<void> => {
    open = true
    ctx.metrics.timeToFirstToken(Date.now() - ctx.arrivedAt)
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' })
    for (const chunk of held.splice(0)) await send(chunk)
  }
  try {
    for await (const chunk of chunks) {
      if (!open) {
        held.push(chunk)
        if (hasText(chunk)) await openStream()
        continue
      }
      await send(chunk)
    }
    if (!open) await openStream()
    res.end(SSE_DONE)
  } catch (err) {
    if (!open) throw err
    if (!ctx.signal.aborted) {
      const failure = gatewayErrorOf(err, parsed.request.model, true)
      ctx.metrics.error(failure.status, failure.code)
      await write(res, sseData(errorBody(failure)))
    }
    res.end()
  } finally {
    // What was streamed is charged even when the answer was cut off: the peer generated it.
    if (usage !== undefined) ctx.charge(usage.prompt_tokens, usage.completion_tokens)
    else if (open) ctx.charge(0, estimateTokens([text]))
  }
}
