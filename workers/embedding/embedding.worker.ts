/// <reference lib="webworker" />
import { serveRpc } from '../../src/core/worker-rpc/host.ts'
import { createEmbeddingApi } from './embedding-api.ts'
import { EMBEDDING_CACHE_NAME, loadFiles } from './model-cache.ts'
import { embeddingErrors } from './protocol.ts'
import { backendsToTry, openSession } from './runtime.ts'

/**
 * The embedding worker: the embedding API (embedding-api.ts) with the model's files read from the
 * embedding model cache (downloaded and stored there on a miss) and onnxruntime-web's builds.
 */
const scope = self as unknown as DedicatedWorkerGlobalScope

const api = createEmbeddingApi({
  files: async (urls, signal, onProgress) => await loadFiles(await caches.open(EMBEDDING_CACHE_NAME), urls, signal, onProgress),
  backends: backendsToTry,
  openSession
})

serveRpc(scope, api, { errors: embeddingErrors, serial: true })
