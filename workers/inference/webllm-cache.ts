/// <reference lib="webworker" />

/** The Cache API caches web-llm keeps a model's weights, chat config and compiled library in. */
export const WEBLLM_CACHES = { model: 'webllm/model', config: 'webllm/config', wasm: 'webllm/wasm' } as const

/**
 * Whether web-llm may hold any model here: false when its weights cache is missing or empty, which
 * this worker tells without loading web-llm (6 MB to parse just to list no downloads).
 */
export async function webLlmMayHoldModels (): Promise<boolean> {
  if (!await caches.has(WEBLLM_CACHES.model)) return false
  return (await (await caches.open(WEBLLM_CACHES.model)).keys()).length > 0
}
