import { cpSync, mkdtempSync, readFileSync, statSync } from 'node:fs'
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { tmpdir } from 'node:os'
import { extname, join, normalize, resolve, sep } from 'node:path'
import { ISOLATION_HEADERS } from '../../scripts/serve-plugin.ts'

const TYPES: Record<string, string> = {
  '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json',
  '.webmanifest': 'application/manifest+json', '.svg': 'image/svg+xml', '.png': 'image/png', '.wasm': 'application/wasm'
}

export interface StaticSite {
  root: string
  url: string
  close(): Promise<void>
}

export interface StaticSiteOptions {
  /** Serve over https with this PEM certificate and key. */
  tls?: { cert: string, key: string }
  /** Send COOP/COEP (default true); false is a host that cannot set headers. */
  crossOriginIsolation?: boolean
}

/**
 * Serves a private copy of the built app as a plain static host would: files as they are, 404 for
 * anything missing. A private copy lets a test deploy its own bootstrap.json or a "new version"
 * without touching dist/ that other tests use.
 */
export async function serveCopyOfDist (options: StaticSiteOptions = {}): Promise<StaticSite> {
  const root = mkdtempSync(join(tmpdir(), 'hs-site-'))
  cpSync('dist', root, { recursive: true })
  const headers = options.crossOriginIsolation === false ? {} : ISOLATION_HEADERS
  const serve = (req: IncomingMessage, res: ServerResponse): void => {
    const path = normalize(decodeURIComponent((req.url ?? '/').split('?')[0] ?? '/')).replace(/^[/\\]+/, '')
    const file = resolve(root, path === '' ? 'index.html' : path)
    if (!file.startsWith(resolve(root) + sep)) { res.writeHead(403).end(); return }
    let body: Buffer
    try {
      if (!statSync(file).isFile()) throw new Error('not a file')
      body = readFileSync(file)
    } catch {
      res.writeHead(404, headers).end()
      return
    }
    res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', 'Cache-Control': 'no-cache', ...headers })
    res.end(body)
  }
  const server: Server = options.tls !== undefined ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, serve) : createHttpServer(serve)
  await new Promise<void>(done => server.listen(0, '127.0.0.1', done))
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  return {
    root,
    url: `${options.tls !== undefined ? 'https' : 'http'}://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>(done => server.close(() => { done() }))
    }
  }
}
