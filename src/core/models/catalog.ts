/**
 * The model catalog: what a node can pull and serve. Remote entries come from web-llm's prebuilt
 * list (WebGPU); local entries are the GGUF and ONNX files the deployment serves at /models/.
 */

/** Which engine runs a model: web-llm on WebGPU, wllama (llama.cpp in WASM) on CPU, ONNX Runtime for embeddings. */
export type EngineKind = 'webllm' | 'wllama' | 'onnx'

export type ModelTask = 'chat' | 'embedding'

export interface ModelEntry {
  /** Stable id used on the wire and in the API, e.g. `Llama-3.2-1B-Instruct-q4f16_1-MLC` or `stories260K`. */
  id: string
  task: ModelTask
  engine: EngineKind
  /** `local`: served by this deployment at /models/; `remote`: fetched from the model's host. */
  origin: 'local' | 'remote'
  /** Where the weights come from (a GGUF file, an ONNX folder, or a web-llm model base URL). */
  url: string
  /** Bytes to download, when known. */
  sizeBytes?: number
  /** web-llm's estimate of the GPU memory the model needs. */
  vramRequiredMiB?: number
  needsShaderF16: boolean
  /** web-llm marks the models meant for devices with little memory (phones, small laptops). */
  lowResource?: boolean
  contextWindow?: number
  /** Embedding models: the tokenizer.json that goes with the weights. */
  tokenizerUrl?: string
  /** Embedding models: the vector's dimensions, when the model says. */
  dims?: number
  /** Embedding models: the model family (config.json `model_type`), which decides the tokenization. */
  modelType?: string
}

/** A catalog entry as this device sees it. */
export interface CatalogModel extends ModelEntry {
  /** Whether this device can run it; `reason` says why not. */
  fits: boolean
  reason?: string
  downloaded: boolean
  /** Loaded in an engine and served to the network. */
  loaded: boolean
}

export interface DownloadedModel {
  id: string
  sizeBytes: number
}

export interface PullProgress {
  model: string
  loaded: number
  total: number
  text?: string
}
