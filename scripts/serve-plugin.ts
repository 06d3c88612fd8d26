import { createReadStream, readdirSync, readFileSync, statSync } from 'node:fs'
import { basename, extname, join, normalize, resolve, sep } from 'node:path'
import { isModelId } from '../src/core/inference/request.ts'
import { LOCAL_INDEX_VERSION, type LocalModelFile, type LocalModelIndexFile } from '../src/core/models/local-index.ts'
import type { Plugin, Connect } from 'vite'
import type { ServerResponse } from 'node:http'

/** Headers that make the page cross-origin isolated: WASM threads (ORT, wllama) need it. */
export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp'
}

/**
 * What the built page may load and reach. Scripts come only from the app's origin, so an injected
 * script or a script URL cannot run; 'wasm-unsafe-eval' lets llama.cpp, ONNX Runtime and the prover
 * compile WebAssembly (it allows no JavaScript eval). Workers are the app's own or blob: URLs (an
 * engine's glue). connect-src is open to ws:, wss: and https: because relays and model files live on
 * hosts the deployment names in bootstrap.json and the model catalog; blob: and data: are fetched by
 * the engines for their own WebAssembly. Inline styles are Svelte's style attributes. The page goes
 * out as a meta tag in index.html, so it holds on any static host; a host that sets headers can send
 * the same value as a Content-Security-Policy header, which also covers the worker scripts.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "worker-src 'self' blob:",
  "connect-src 'self' ws: wss: https: blob: data:",
  "img-src 'self' data: blob:",
  "style-src 'self' 'unsafe-inline'",
  "font-src 'self' data:",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'none'"
].join('; ')

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

function fileSize (path: string): number {
  return statSync(path).size
}

/**
 * What an embedding model's config.json states: the vector size (model2vec: hidden_dim;
 * transformers: hidden_size) and the model family (`model_type`), which decides the tokenization.
 */
function configOf (configPath: string): { dims?: number, modelType?: string } {
  let config: unknown
  try {
    config = JSON.parse(readFileSync(configPath, 'utf8'))
  } catch {
    return {}
  }
  if (typeof config !== 'object' || config === null) return {}
  const { hidden_dim: hiddenDim, hidden_size: hiddenSize, model_type: modelType } = config as Record<string, unknown>
  const dims = hiddenDim ?? hiddenSize
  return {
    ...(typeof dims === 'number' && Number.isInteger(dims) && dims > 0 ? { dims } : {}),
    ...(typeof modelType === 'string' && modelType !== '' ? { modelType } : {})
  }
}

/** The models of one subdirectory: each .gguf is a chat model; an .onnx beside a tokenizer.json is an embedding model. */
function modelsIn (root: string, dir: string): LocalModelFile[] {
  const files = readdirSync(join(root, dir)).sort()
  const url = (file: string): string => `/models/${encodeURIComponent(dir)}/${encodeURIComponent(file)}`
  const found: LocalModelFile[] = files.filter(f => f.endsWith('.gguf')).map(file => ({
    id: basename(file, '.gguf'), task: 'chat', format: 'gguf', url: url(file), sizeBytes: fileSize(join(root, dir, file))
  }))
  const onnx = files.find(f => f.endsWith('.onnx'))
  if (onnx !== undefined && files.includes('tokenizer.json')) {
    const config = configOf(join(root, dir, 'config.json'))
    found.push({
      id: dir,
      task: 'embedding',
      format: 'onnx',
      url: url(onnx),
      tokenizerUrl: url('tokenizer.json'),
      sizeBytes: fileSize(join(root, dir, onnx)) + fileSize(join(root, dir, 'tokenizer.json')),
      ...config
    })
  }
  return found
}

/** `/models/index.json`: what the models directory holds, read afresh on every request (files come and go). */
export function listModels (root: string): LocalModelIndexFile {
  const dirs = readdirSync(root, { withFileTypes: true }).filter(d => d.isDirectory()).map(d => d.name).sort()
  const models = dirs.flatMap(dir => modelsIn(root, dir))
  // The page would refuse these ids (see isModelId): leave them out here, where the operator sees why.
  for (const model of models.filter(m => !isModelId(m.id))) console.warn(`models: ${model.url} skipped, "${model.id}" is not a valid model id`)
  return { version: LOCAL_INDEX_VERSION, models: models.filter(m => isModelId(m.id)) }
}

/** Serves /bootstrap.json and /models/ (with its index.json) beside the app, in `vite preview` and in `vite dev`, and puts the CSP into index.html. */
export function hyperspaceServe (options: ServeOptions): Plugin {
  const middleware: Connect.NextHandleFunction = (req, res, next) => {
    const url = req.url ?? ''
    if (options.bootstrap !== undefined && (url === '/bootstrap.json' || url.startsWith('/bootstrap.json?'))) {
      res.setHeader('Content-Type', 'application/json')
      res.setHeader('Cache-Control', 'no-store')
      res.end(JSON.stringify(options.bootstrap))
      return
    }
    if (options.modelsDir !== undefined && url.split('?')[0] === '/models/index.json') {
      res.setHeader('Content-Type', 'application/json')
      res.setHeader('Cache-Control', 'no-store')
      res.setHeader('Cross-Origin-Resource-Policy', 'same-origin')
      res.end(JSON.stringify(listModels(options.modelsDir)))
      return
    }
    if (options.modelsDir !== undefined && url.startsWith('/models/')) {
      if (serveModel(options.modelsDir, url.slice('/models/'.length), res)) return
      // Not the app's index.html (the SPA fallback): an engine must see that the file is missing.
      res.statusCode = 404
      res.end()
      return
    }
    next()
  }
  return {
    name: 'hyperspace-serve',
    configureServer (server) { server.middlewares.use(middleware) },
    configurePreviewServer (server) { server.middlewares.use(middleware) },
    transformIndexHtml: () => [{ tag: 'meta', attrs: { 'http-equiv': 'Content-Security-Policy', content: CONTENT_SECURITY_POLICY }, injectTo: 'head-prepend' }]
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
