import { InvalidRequestError } from '../errors.ts'
import type { ChatMessage, ChatRequest, ChatRole } from './chat.ts'

/** Bounds on a chat request, whether it came from the user or from a peer. */
export const REQUEST_LIMITS = {
  modelIdLength: 128,
  messages: 64,
  messageChars: 16 * 1024,
  totalChars: 32 * 1024,
  maxTokens: 1024,
  defaultMaxTokens: 256,
  stopSequences: 4,
  stopChars: 64
} as const

const MODEL_ID = /^[A-Za-z0-9][A-Za-z0-9._:/-]*$/
const ROLES: readonly ChatRole[] = ['system', 'user', 'assistant']

/** A request with every field checked and defaults filled in, as engines and the wire take it. */
export interface ValidChatRequest {
  model: string
  messages: ChatMessage[]
  max_tokens: number
  temperature: number
  top_p: number
  seed?: number
  stop: string[]
}

export function isModelId (value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= REQUEST_LIMITS.modelIdLength && MODEL_ID.test(value)
}

function numberIn (value: unknown, field: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new InvalidRequestError(`${field} must be a number from ${min} to ${max}`)
  }
  return value
}

function messagesOf (value: unknown): ChatMessage[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > REQUEST_LIMITS.messages) {
    throw new InvalidRequestError(`messages must be a list of 1 to ${REQUEST_LIMITS.messages} messages`)
  }
  let total = 0
  return value.map((m: unknown, i) => {
    if (typeof m !== 'object' || m === null) throw new InvalidRequestError(`messages[${i}] is not a message`)
    const { role, content } = m as Record<string, unknown>
    if (!ROLES.includes(role as ChatRole)) throw new InvalidRequestError(`messages[${i}].role must be system, user or assistant`)
    if (typeof content !== 'string' || content.length > REQUEST_LIMITS.messageChars) {
      throw new InvalidRequestError(`messages[${i}].content must be text of at most ${REQUEST_LIMITS.messageChars} characters`)
    }
    total += content.length
    if (total > REQUEST_LIMITS.totalChars) throw new InvalidRequestError(`the messages exceed ${REQUEST_LIMITS.totalChars} characters in all`)
    return { role: role as ChatRole, content }
  })
}

function stopOf (value: unknown): string[] {
  if (value === undefined) return []
  const list = typeof value === 'string' ? [value] : value
  if (!Array.isArray(list) || list.length > REQUEST_LIMITS.stopSequences ||
    !list.every(s => typeof s === 'string' && s.length > 0 && s.length <= REQUEST_LIMITS.stopChars)) {
    throw new InvalidRequestError(`stop must be up to ${REQUEST_LIMITS.stopSequences} strings of 1 to ${REQUEST_LIMITS.stopChars} characters`)
  }
  return list as string[]
}

/** Checks a request from any source and fills in defaults; throws InvalidRequestError naming the field. */
export function validateChatRequest (input: unknown): ValidChatRequest {
  if (typeof input !== 'object' || input === null) throw new InvalidRequestError('the request must be an object')
  const r = input as Partial<Record<keyof ChatRequest, unknown>>
  if (!isModelId(r.model)) throw new InvalidRequestError('model must be a model id')
  const maxTokens = numberIn(r.max_tokens, 'max_tokens', 1, REQUEST_LIMITS.maxTokens, REQUEST_LIMITS.defaultMaxTokens)
  if (!Number.isInteger(maxTokens)) throw new InvalidRequestError('max_tokens must be an integer')
  const request: ValidChatRequest = {
    model: r.model,
    messages: messagesOf(r.messages),
    max_tokens: maxTokens,
    temperature: numberIn(r.temperature, 'temperature', 0, 2, 1),
    top_p: numberIn(r.top_p, 'top_p', 0, 1, 1),
    stop: stopOf(r.stop)
  }
  if (r.seed !== undefined) {
    if (typeof r.seed !== 'number' || !Number.isInteger(r.seed) || r.seed < 0 || r.seed > 0xffffffff) {
      throw new InvalidRequestError('seed must be an integer from 0 to 2^32 - 1')
    }
    request.seed = r.seed
  }
  return request
}

/** Same request, same output: greedy decoding, or sampling with a fixed seed. */
export function isDeterministic (request: ValidChatRequest): boolean {
  return request.temperature === 0 || request.seed !== undefined
}
