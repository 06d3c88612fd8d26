import type { ChatMessage, ChatRoute, FinishReason, NodeChatRequest, ServedInfo } from '../core/inference/chat.ts'
import type { NodeApi } from '../node/api.ts'
import { errorMessage } from './format.ts'

/** Messages kept and sent with each prompt: the last 6 exchanges, well inside the node's request limits. */
const HISTORY_MESSAGES = 12

/** What the playground sends besides the messages; an empty number field (null) leaves the node's default. */
export interface ChatSettings {
  model: string
  route: ChatRoute
  maxTokens: number | null
  temperature: number | null
  seed: number | null
}

/** How the latest answer ended; `served` is missing when it was stopped before the node said. */
export interface ChatResult {
  finishReason: FinishReason
  served?: ServedInfo
}

/** One playground conversation: the history sent with each prompt and the answer being streamed. */
export class ChatSession {
  /** Finished exchanges, oldest first, always starting with a user message. */
  history: ChatMessage[]
  /** The prompt being answered; null when idle. */
  pending: ChatMessage | null
  /** The answer to `pending` as it streams in. */
  output: string
  result: ChatResult | null
  error: string
  private controller: AbortController | null = null

  constructor (private readonly node: NodeApi) {
    this.history = $state.raw([])
    this.pending = $state.raw(null)
    this.output = $state('')
    this.result = $state.raw(null)
    this.error = $state('')
  }

  get busy (): boolean {
    return this.pending !== null
  }

  /**
   * Streams the answer to `prompt` given the history. Resolves true when the exchange joined the
   * history (answered, or stopped after some text), false when it failed or was stopped before any.
   */
  async send (prompt: string, settings: ChatSettings): Promise<boolean> {
    const controller = new AbortController()
    const question: ChatMessage = { role: 'user', content: prompt }
    this.controller = controller
    this.pending = question
    this.output = ''
    this.result = null
    this.error = ''
    let finishReason: FinishReason | null = null
    let served: ServedInfo | undefined
    try {
      const chunks = await this.node.chat.completions.create({ ...requestOf(settings, [...this.history, question]), stream: true }, { signal: controller.signal })
      for await (const chunk of chunks) {
        // Leaving the loop ends the stream, which aborts the job even if the signal went unheard.
        if (controller.signal.aborted) break
        const choice = chunk.choices[0]
        this.output += choice?.delta.content ?? ''
        finishReason = choice?.finish_reason ?? finishReason
        served = chunk.hyperspace ?? served
      }
    } catch (err) {
      if (!controller.signal.aborted) this.error = errorMessage(err)
    }
    const kept = this.error === '' && (served !== undefined || this.output !== '')
    if (kept) {
      this.history = [...this.history, question, { role: 'assistant' as const, content: this.output }].slice(-HISTORY_MESSAGES)
      const stopped = controller.signal.aborted && served === undefined
      this.result = { finishReason: stopped ? 'abort' : finishReason ?? 'stop', ...(served !== undefined ? { served } : {}) }
    }
    this.pending = null
    this.controller = null
    return kept
  }

  stop (): void {
    this.controller?.abort()
  }

  clear (): void {
    this.history = []
    this.result = null
    this.error = ''
  }
}

function requestOf (settings: ChatSettings, messages: ChatMessage[]): NodeChatRequest {
  return {
    model: settings.model,
    route: settings.route,
    messages,
    ...(settings.maxTokens !== null ? { max_tokens: settings.maxTokens } : {}),
    ...(settings.temperature !== null ? { temperature: settings.temperature } : {}),
    ...(settings.seed !== null ? { seed: settings.seed } : {})
  }
}
