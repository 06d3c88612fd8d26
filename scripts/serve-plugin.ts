import { createReadStream, statSync } from 'node:fs'
import { extname, join, normalize, resolve, sep } from 'node:path'
import type { Plugin, Connect } from 'vite'
import type { ServerResponse } from 'node:http'

/** Headers that make the page cross-origin isolated: WASM threads (ORT, wllama) need it. */
export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp'
}

const MODEL_TYPES: Record<string, string> = {
  '.json': 'application/json',
  '.onnx': 'application/octet-stream',
  '.gguf': 'application/octet-stream',
  '.safetensors': 'application/octet-stream',
  '.md': 'text/markdown; charset=utf-8'
}

export interface ServeOptions {
  /** The bootstrap.json body to serve (the local relay's addresses); the built file is used otherwise. */
  bootstrap?: object
  /** Directory served read-only at /models/. */
  modelsDir?: string
}

function serveModel (root: string, url: string, res: ServerResponse): boolean {
  const relative = normalize(decodeURIComponent(url.split('?')[0] ?? '')).replace(/^[/\\]+/, '')
  const file = resolve(root, relative)
  if (!file.startsWith(resolve(root) + sep)) return false
  let size: number
  try {
    const stat = statSync(file)
    if (!stat.isFile()) return false
    size = stat.size
  } catch {
    return false
  }
  res.setHeader('Content-Type', MODEL_TYPES[extname(file)] ?? 'application/octet-stream')
  res.setHeader('Content-Length', String(size))
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin')
  createReadStream(file).pipe(res)
  return true
}

/** Serves /bootstrap.json and /models/ beside the app, in `vite preview` and in `vite dev`. */
export function hyperspaceServe (options: ServeOptions): Plugin {
  const middleware: Connect.NextHandleFunction = (req, res, next) => {
    const url = req.url ?? ''
    if (options.bootstrap !== undefined && (url === '/bootstrap.json' || url.startsWith('/bootstrap.json?'))) {
      res.setHeader('Content-Type', 'application/json')
      res.setHeader('Cache-Control', 'no-store')
      res.end(JSON.stringify(options.bootstrap))
      return
    }
    if (options.modelsDir !== undefined && url.startsWith('/models/') && serveModel(options.modelsDir, url.slice('/models/'.length), res)) return
    next()
  }
  return {
    name: 'hyperspace-serve',
    configureServer (server) { server.middlewares.use(middleware) },
    configurePreviewServer (server) { server.middlewares.use(middleware) }
  }
}

/** HYPERSPACE_MODELS_DIR, or ../shared/models beside the checkout when it exists. */
export function defaultModelsDir (cwd = process.cwd()): string | undefined {
  const fromEnv = process.env.HYPERSPACE_MODELS_DIR
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv
  const shared = join(cwd, '..', 'shared', 'models')
  try {
    return statSync(shared).isDirectory() ? shared : undefined
  } catch {
    return undefined
  }
}
