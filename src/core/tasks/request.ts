import { EMBED_LIMITS } from '../embedding/limits.ts'
import { TASK_LIMITS } from './limits.ts'
import { HyperspaceError } from '../errors.ts'
import { isModelId, validateChatRequest, type ValidChatRequest } from '../inference/request.ts'
import { TaskInputError } from './errors.ts'
import type { ChatMessage } from '../inference/chat.ts'

/**
 * A batch task (issue 18, orchestration): many texts to embed or many prompts to complete, split into
 * shards over the peers that serve what it needs. Bounds hold whether the task comes from this node's
 * user or from a peer over `/hyperspace/task/1.0.0`.
 */
export const TASK_KINDS = ['embed', 'chat'] as const
export type TaskKind = typeof TASK_KINDS[number]

export { TASK_LIMITS }

/** One prompt of a chat task: a user message, or the fields of a chat request without its model. */
export type ChatTaskInput = string | {
  messages: ChatMessage[]
  max_tokens?: number
  temperature?: number
  top_p?: number
  seed?: number
  stop?: string[]
}

export interface TaskRequest {
  kind: TaskKind
  /** embed: the node's embedding model by default; chat: required. */
  model?: string
  inputs: ReadonlyArray<string | ChatTaskInput>
}

/** A checked task: texts for embed, full chat requests for chat. */
export type ValidTask =
  | { kind: 'embed', model?: string, inputs: string[] }
  | { kind: 'chat', model: string, inputs: ValidChatRequest[] }

/** Exact UTF-8 length, without encoding: the wire frame must hold what was counted here. */
function bytesOf (text: string): number {
  let bytes = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x80) bytes += 1
    else if (c < 0x800) bytes += 2
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4
      i++
    } else bytes += 3
  }
  return bytes
}

export function maxInputs (kind: TaskKind): number {
  return kind === 'embed' ? TASK_LIMITS.embedInputs : TASK_LIMITS.chatInputs
}

export function shardSize (kind: TaskKind): number {
  return kind === 'embed' ? TASK_LIMITS.embedShard : TASK_LIMITS.chatShard
}

/** Checks a task from anyone; throws TaskInputError naming the first problem. */
export function validateTask (input: unknown): ValidTask {
  if (typeof input !== 'object' || input === null) throw new TaskInputError('a task must be an object { kind, model?, inputs }')
  const { kind, model, inputs } = input as Record<string, unknown>
  if (!(TASK_KINDS as readonly unknown[]).includes(kind)) throw new TaskInputError('kind must be embed or chat')
  if (model !== undefined && !isModelId(model)) throw new TaskInputError('model is not a model id')
  if (!Array.isArray(inputs) || inputs.length === 0) throw new TaskInputError('inputs must be a non-empty array')
  const max = maxInputs(kind as TaskKind)
  if (inputs.length > max) throw new TaskInputError(`${inputs.length} inputs exceed the ${String(kind)} task limit of ${max}`)
  let total = 0
  const count = (bytes: number): void => {
    total += bytes
    if (total > TASK_LIMITS.inputBytes) throw new TaskInputError(`the inputs exceed ${TASK_LIMITS.inputBytes} UTF-8 bytes in all`)
  }
  if (kind === 'embed') {
    const texts = inputs.map((text: unknown, i) => {
      if (typeof text !== 'string') throw new TaskInputError(`input ${i} is not a string`)
      const bytes = bytesOf(text)
      if (bytes > EMBED_LIMITS.textBytes) throw new TaskInputError(`input ${i} is longer than ${EMBED_LIMITS.textBytes} UTF-8 bytes`)
      count(bytes)
      return text
    })
    return model === undefined ? { kind: 'embed', inputs: texts } : { kind: 'embed', model: model as string, inputs: texts }
  }
  if (model === undefined) throw new TaskInputError('a chat task needs a model')
  const requests = inputs.map((prompt: unknown, i) => {
    const fields = typeof prompt === 'string' ? { messages: [{ role: 'user', content: prompt }] } : prompt
    if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) throw new TaskInputError(`input ${i} is neither a prompt nor a request`)
    let request: ValidChatRequest
    try {
      // The task's model wins; a `stream` or `route` of an input is not the task's business.
      request = validateChatRequest({ ...fields, model, stream: undefined, route: undefined })
    } catch (err) {
      if (err instanceof HyperspaceError) throw new TaskInputError(`input ${i}: ${err.message}`)
      throw err
    }
    count(request.messages.reduce((sum, m) => sum + bytesOf(m.content), 0) + request.stop.reduce((sum, s) => sum + bytesOf(s), 0))
    return request
  })
  return { kind: 'chat', model: model as string, inputs: requests }
}
