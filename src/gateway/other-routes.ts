import { embeddingsResponse, estimateTokens } from '../core/gateway/embeddings.ts'
import { parseEmbeddingsBody } from '../core/gateway/validate.ts'
import { sendJson } from './http-io.ts'
import type { GatewayBackend } from './network-client.ts'
import type { RequestContext } from './request-context.ts'
import type { ServerResponse } from 'node:http'

/** `POST /v1/embeddings`: a peer whose embedding capability works computes the vectors. */
export async function embeddings (ctx: RequestContext, body: unknown): Promise<void> {
  const { model, texts, encoding } = parseEmbeddingsBody(body)
  ctx.model = model
  const result = await ctx.backend.embed(model, texts, ctx.signal)
  const tokens = estimateTokens(texts)
  ctx.charge(tokens, 0)
  sendJson(ctx.res, 200, embeddingsResponse(model, result.vectors, encoding, tokens))
}

/** `GET /v1/models`: the chat models some peer announces it serves now, from the capability registry. */
export function models (res: ServerResponse, backend: GatewayBackend): void {
  const data = [...backend.servedModels()].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0).map(([id, peers]) => ({
    id,
    object: 'model',
    created: Math.floor((backend.firstSeen(id) ?? Date.now()) / 1000),
    owned_by: 'hyperspace',
    peers
  }))
  sendJson(res, 200, { object: 'list', data })
}
