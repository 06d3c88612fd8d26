/// <reference lib="webworker" />
import { serveRpc } from '../../src/core/worker-rpc/host.ts'
import { createInferenceApi } from './inference-api.ts'
import { inferenceErrors } from './protocol.ts'
import { webLlmMayHoldModels } from './webllm-cache.ts'

/**
 * The inference worker: hosts the engines (wllama on the CPU, web-llm on WebGPU) and the models
 * loaded in them, serving inference-api.ts over the worker RPC. Each engine's library is imported
 * the first time a call needs it, so a node that only runs stories260K never parses web-llm's 7 MB,
 * and one that never serves a model parses neither; web-llm's catalog comes built in without it.
 */
const scope = self as unknown as DedicatedWorkerGlobalScope

const api = createInferenceApi({
  wllama: async () => (await import('./wllama-engine.ts')).wllamaEngine,
  webllm: async () => (await import('./webllm-engine.ts')).webLlmEngine
}, async () => (await import('virtual:webllm-records')).default, { webllm: webLlmMayHoldModels })

serveRpc(scope, api, { errors: inferenceErrors })
