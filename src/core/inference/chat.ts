/**
 * The OpenAI chat-completions surface every inference engine speaks, local or remote. Requests come
 * from users and from the network: `validateChatRequest` bounds every field before an engine sees it.
 */

import type { ProviderSource } from '../jobs/routing.ts'

export type ChatRole = 'system' | 'user' | 'assistant'

export interface ChatMessage {
  role: ChatRole
  content: string
}

export interface ChatRequest {
  model: string
  messages: ChatMessage[]
  max_tokens?: number
  temperature?: number
  top_p?: number
  seed?: number
  stop?: string | string[]
  stream?: boolean
}

export type FinishReason = 'stop' | 'length' | 'abort'

/** What an engine returns for one request; the node adds who served it and the timings. */
export interface EngineCompletion {
  text: string
  finishReason: FinishReason
  promptTokens: number
  completionTokens: number
}

/** Progress of a model load or download, in bytes when the engine knows them. */
export interface LoadProgress {
  model: string
  loaded: number
  total: number
  text?: string
}

export interface CompleteOptions {
  signal?: AbortSignal
  /** Each piece of generated text as soon as the engine has it. */
  onDelta?: (text: string) => void
}

export interface LoadOptions {
  signal?: AbortSignal
  onProgress?: (progress: LoadProgress) => void
}

/** Where a request runs: this device, a peer, or whichever serves the model (this device first). */
export type ChatRoute = 'auto' | 'local' | 'network'

export interface NodeChatRequest extends ChatRequest {
  route?: ChatRoute
}

/** How a completion was served: the extension the node adds to the OpenAI shape. */
export interface ServedInfo {
  /** Peer id of the node that generated the text (this node's own id when local). */
  servedBy: string
  route: 'local' | 'network'
  /**
   * For network jobs, the routing tier that found the peer that served: its capability announcement
   * (`registry`), a DHT provider record (`dht`) or an offer answering a want (`broadcast`).
   */
  tier?: ProviderSource
  /** Answered from a cache of an identical deterministic request. */
  cached: boolean
  timeToFirstTokenMs: number
  tokensPerSecond: number
  durationMs: number
  /** Peers tried before the one that served, with why each failed. */
  failedOver: Array<{ peerId: string, error: string }>
  /** The countersigned receipt's job id, for network jobs. */
  receipt?: string
}

export interface ChatCompletion {
  id: string
  object: 'chat.completion'
  created: number
  model: string
  choices: Array<{ index: 0, message: ChatMessage & { role: 'assistant' }, finish_reason: FinishReason }>
  usage: { prompt_tokens: number, completion_tokens: number, total_tokens: number }
  hyperspace: ServedInfo
}

export interface ChatCompletionChunk {
  id: string
  object: 'chat.completion.chunk'
  created: number
  model: string
  choices: Array<{ index: 0, delta: { role?: 'assistant', content?: string }, finish_reason: FinishReason | null }>
  /** On the last chunk only. */
  hyperspace?: ServedInfo
  /** On the last chunk only: what the answer counted, as the server reported it. */
  usage?: ChatCompletion['usage']
}
