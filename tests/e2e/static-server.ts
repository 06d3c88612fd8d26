import { cpSync, mkdtempSync, readFileSync, statSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { extname, join, normalize, resolve, sep } from 'node:path'

const TYPES: Record<string, string> = {
  '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json',
  '.webmanifest': 'application/manifest+json', '.svg': 'image/svg+xml', '.png': 'image/png', '.wasm': 'application/wasm'
}

export interface StaticSite {
  root: string
  url: string
  close(): Promise<void>
}

/**
 * Serves a private copy of the built app, so a test can deploy a "new version" by editing files
 * without touching dist/ that other tests use.
 */
export async function serveCopyOfDist (): Promise<StaticSite> {
  const root = mkdtempSync(join(tmpdir(), 'hs-site-'))
  cpSync('dist', root, { recursive: true })
  const server: Server = createServer((req, res) => {
    const path = normalize(decodeURIComponent((req.url ?? '/').split('?')[0] ?? '/')).replace(/^[/\\]+/, '')
    let file = resolve(root, path === '' ? 'index.html' : path)
    if (!file.startsWith(resolve(root) + sep)) { res.writeHead(403).end(); return }
    try {
      if (!statSync(file).isFile()) file = join(root, 'index.html')
    } catch {
      file = join(root, 'index.html')
    }
    res.writeHead(200, {
      'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
      'Cache-Control': 'no-cache',
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp'
    })
    res.end(readFileSync(file))
  })
  await new Promise<void>(done => server.listen(0, '127.0.0.1', done))
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  return {
    root,
    url: `http://127.0.0.1:${port}`,
    close: async () => { await new Promise<void>(done => server.close(() => { done() })) }
  }
}
