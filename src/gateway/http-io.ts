import { BadRequestError, BodyTooLargeError, errorBody, QuotaExceededError, type GatewayError } from '../core/gateway/errors.ts'
import type { IncomingMessage, ServerResponse } from 'node:http'

/** Reads a JSON body of at most `limit` bytes; a larger one is refused before it is all read. */
export async function readJson (req: IncomingMessage, limit: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'])
  if (Number.isFinite(declared) && declared > limit) throw new BodyTooLargeError(limit)
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.byteLength
    if (size > limit) throw new BodyTooLargeError(limit)
    chunks.push(chunk)
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    throw new BadRequestError('The request body is not valid JSON')
  }
}

export function sendJson (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers })
  res.end(text)
}

export function sendError (res: ServerResponse, err: GatewayError): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const headers: Record<string, string> = err instanceof QuotaExceededError ? { 'retry-after': String(err.retryAfterS) } : {}
  sendJson(res, err.status, errorBody(err), headers)
}

/**
 * Writes and waits while the socket's buffer is full, so a client that reads slowly holds the
 * answer in the gateway's memory no longer than one chunk; resolves false once the client is gone.
 */
export async function write (res: ServerResponse, text: string): Promise<boolean> {
  if (res.destroyed || res.writableEnded) return false
  if (res.write(text)) return true
  return await new Promise<boolean>(resolve => {
    const done = (ok: boolean) => () => {
      res.off('drain', onDrain)
      res.off('close', onClose)
      resolve(ok)
    }
    const onDrain = done(true)
    const onClose = done(false)
    res.once('drain', onDrain)
    res.once('close', onClose)
  })
}
