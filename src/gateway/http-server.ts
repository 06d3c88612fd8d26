import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { BadApiKeyError, GatewayError, gatewayErrorOf, RouteNotFoundError } from '../core/gateway/errors.ts'
import { chatCompletions } from './chat-route.ts'
import { readJson, sendError, sendJson } from './http-io.ts'
import { embeddings, models } from './other-routes.ts'
import type { ApiKeyring } from '../core/gateway/api-keys.ts'
import type { GatewayMetrics } from '../core/gateway/metrics.ts'
import type { QuotaBook } from '../core/gateway/quota.ts'
import type { GatewayBackend } from './network-client.ts'
import type { RequestContext } from './request-context.ts'

export interface GatewayHttpOptions {
  backend: GatewayBackend
  keys: ApiKeyring
  quotas: QuotaBook
  metrics: GatewayMetrics
  /** Largest request body taken, in bytes. */
  maxBodyBytes: number
  /** An origin browsers may call the API from (`*` for any); none by default, so web pages cannot. */
  corsOrigin?: string
}

type Route = (ctx: RequestContext, body: unknown) => Promise<void>
const POST_ROUTES: Record<string, Route> = { '/v1/chat/completions': chatCompletions, '/v1/embeddings': embeddings }
/** The endpoint label of the metrics: known paths only, so random URLs do not grow the page. */
const ENDPOINTS = new Set(['/v1/chat/completions', '/v1/embeddings', '/v1/models', '/healthz', '/metrics'])

class ClientGoneError extends Error {
  override name = 'ClientGoneError'
  constructor () { super('the client closed the connection') }
}

/**
 * The OpenAI-compatible HTTP API. `/healthz` and `/metrics` are open (the server listens on
 * 127.0.0.1 unless told otherwise); everything under `/v1/` needs a key and counts against its quota.
 */
export function createGatewayServer (o: GatewayHttpOptions): Server {
  const server = createServer((req, res) => {
    handle(req, res, o).catch(err => {
      console.warn('gateway: request failed', err)
      sendError(res, gatewayErrorOf(err, '', true))
    })
  })
  // A body must arrive within this; answers may stream for minutes and are not bound by it.
  server.requestTimeout = 30_000
  return server
}

async function handle (req: IncomingMessage, res: ServerResponse, o: GatewayHttpOptions): Promise<void> {
  const arrivedAt = Date.now()
  const path = (req.url ?? '/').split('?')[0] ?? '/'
  const endpoint = ENDPOINTS.has(path) ? path : 'other'
  res.once('finish', () => { o.metrics.request(endpoint, res.statusCode) })
  if (o.corsOrigin !== undefined) {
    res.setHeader('access-control-allow-origin', o.corsOrigin)
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { 'access-control-allow-methods': 'GET, POST', 'access-control-allow-headers': 'authorization, content-type', 'access-control-max-age': '600' })
      res.end()
      return
    }
  }
  if (req.method === 'GET' && path === '/healthz') {
    sendJson(res, 200, { status: 'ok', models: Object.fromEntries(o.backend.servedModels()) })
    return
  }
  if (req.method === 'GET' && path === '/metrics') {
    const text = o.metrics.render(o.backend.servedModels())
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' })
    res.end(text)
    return
  }
  const fail = (err: GatewayError): void => {
    o.metrics.error(err.status, err.code)
    sendError(res, err)
  }
  const route = req.method === 'POST' ? POST_ROUTES[path] : undefined
  if (route === undefined && !(req.method === 'GET' && path === '/v1/models')) {
    fail(new RouteNotFoundError(req.method ?? '', path))
    return
  }
  const key = o.keys.find(req.headers.authorization)
  if (key === undefined) {
    fail(new BadApiKeyError())
    return
  }
  try {
    o.quotas.admit(key.key, arrivedAt)
  } catch (err) {
    fail(gatewayErrorOf(err, '', true))
    return
  }
  if (route === undefined) {
    models(res, o.backend)
    return
  }
  const aborter = new AbortController()
  // 'close' after the answer was written is the normal end; before it, the client gave up.
  res.once('close', () => {
    if (res.writableFinished) return
    aborter.abort(new ClientGoneError())
    o.metrics.clientAbort()
  })
  const ctx: RequestContext = {
    res, backend: o.backend, metrics: o.metrics, signal: aborter.signal, arrivedAt,
    charge: (prompt, completion) => {
      o.quotas.charge(key.key, prompt + completion, Date.now())
      o.metrics.usage(ctx.model ?? 'unknown', prompt, completion)
    }
  }
  try {
    await route(ctx, await readJson(req, o.maxBodyBytes))
  } catch (err) {
    if (aborter.signal.aborted) {
      res.destroy()
      return
    }
    const model = ctx.model ?? ''
    fail(gatewayErrorOf(err, model, o.backend.firstSeen(model) !== undefined))
  }
}
