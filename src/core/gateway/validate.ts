import { InvalidRequestError } from '../errors.ts'
import { EMBED_LIMITS, validateTexts } from '../embedding/limits.ts'
import { isModelId, validateChatRequest, type ValidChatRequest } from '../inference/request.ts'
import { TASK_LIMITS, validateTask } from '../tasks/request.ts'
import { BadRequestError } from './errors.ts'

/**
 * Strict checks of the JSON bodies the gateway takes. Every field is checked, and a field the network
 * cannot honour is refused by name rather than ignored: a client asking for `n: 3` or `tools` would
 * otherwise get an answer that silently is not what it asked for. The limits of the wire protocol
 * (validateChatRequest, validateTexts) apply as they would to a page's own request.
 */

export interface GatewayChatRequest {
  request: ValidChatRequest
  stream: boolean
  /** `stream_options.include_usage`: a last chunk with the usage and no choices. */
  includeUsage: boolean
}

export interface GatewayEmbeddingsRequest {
  model: string
  texts: string[]
  encoding: 'float' | 'base64'
}

const CHAT_FIELDS = ['model', 'messages', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'seed', 'stop', 'stream', 'stream_options', 'n', 'user'] as const
const MESSAGE_FIELDS = ['role', 'content', 'name'] as const
const EMBEDDING_FIELDS = ['model', 'input', 'encoding_format', 'user'] as const
const USER_MAX_CHARS = 256

function objectOf (value: unknown, what: string, param: string | null = null): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new BadRequestError(`${what} must be a JSON object`, param)
  return value as Record<string, unknown>
}

/** JSON null means "not given" for an optional field, as OpenAI's API takes it. */
function present (body: Record<string, unknown>, field: string): unknown {
  const value = body[field]
  return value === null ? undefined : value
}

function onlyFields (body: Record<string, unknown>, allowed: readonly string[], prefix = ''): void {
  for (const field of Object.keys(body)) {
    if (!allowed.includes(field)) throw new BadRequestError(`Unsupported field: ${prefix}${field}`, `${prefix}${field}`)
  }
}

function checkUser (value: unknown): void {
  if (value !== undefined && (typeof value !== 'string' || value.length > USER_MAX_CHARS)) {
    throw new BadRequestError(`user must be text of at most ${USER_MAX_CHARS} characters`, 'user')
  }
}

/** A message's content: text, or OpenAI's list of text parts (joined); images and audio are refused. */
function contentOf (value: unknown, i: number): unknown {
  if (!Array.isArray(value)) return value
  return value.map((part: unknown, j) => {
    const p = objectOf(part, `messages[${i}].content[${j}]`, 'messages')
    if (p.type !== 'text' || typeof p.text !== 'string') throw new BadRequestError(`messages[${i}].content[${j}] must be a text part`, 'messages')
    return p.text
  }).join('')
}

function messagesOf (value: unknown): unknown {
  if (!Array.isArray(value)) return value
  return value.map((m: unknown, i) => {
    const message = objectOf(m, `messages[${i}]`, 'messages')
    onlyFields(message, MESSAGE_FIELDS, `messages[${i}].`)
    if (message.name !== undefined && typeof message.name !== 'string') throw new BadRequestError(`messages[${i}].name must be text`, 'messages')
    return { role: message.role, content: contentOf(message.content, i) }
  })
}

/** The field an InvalidRequestError from the wire's checks is about: its message starts with it. */
function paramOf (message: string): string | null {
  const field = /^([a-z_]+)/.exec(message)?.[1]
  return field !== undefined && (CHAT_FIELDS as readonly string[]).includes(field) ? field : null
}

export function parseChatBody (input: unknown): GatewayChatRequest {
  const body = objectOf(input, 'the request body')
  onlyFields(body, CHAT_FIELDS)
  const n = present(body, 'n')
  if (n !== undefined && n !== 1) throw new BadRequestError('n must be 1: the network generates one choice per request', 'n')
  checkUser(present(body, 'user'))
  const stream = present(body, 'stream') ?? false
  if (typeof stream !== 'boolean') throw new BadRequestError('stream must be true or false', 'stream')
  const options = present(body, 'stream_options')
  let includeUsage = false
  if (options !== undefined) {
    const o = objectOf(options, 'stream_options', 'stream_options')
    onlyFields(o, ['include_usage'], 'stream_options.')
    if (!stream) throw new BadRequestError('stream_options is only allowed with stream: true', 'stream_options')
    if (o.include_usage !== undefined && typeof o.include_usage !== 'boolean') throw new BadRequestError('stream_options.include_usage must be true or false', 'stream_options')
    includeUsage = o.include_usage === true
  }
  const maxTokens = present(body, 'max_tokens')
  const maxCompletionTokens = present(body, 'max_completion_tokens')
  if (maxTokens !== undefined && maxCompletionTokens !== undefined) throw new BadRequestError('give max_tokens or max_completion_tokens, not both', 'max_tokens')
  try {
    const request = validateChatRequest({
      model: present(body, 'model'),
      messages: messagesOf(present(body, 'messages')),
      max_tokens: maxTokens ?? maxCompletionTokens,
      temperature: present(body, 'temperature'),
      top_p: present(body, 'top_p'),
      seed: present(body, 'seed'),
      stop: present(body, 'stop')
    })
    return { request, stream, includeUsage }
  } catch (err) {
    if (err instanceof InvalidRequestError) throw new BadRequestError(err.message, paramOf(err.message))
    throw err
  }
}

export function parseEmbeddingsBody (input: unknown): GatewayEmbeddingsRequest {
  const body = objectOf(input, 'the request body')
  onlyFields(body, EMBEDDING_FIELDS)
  checkUser(present(body, 'user'))
  const model = present(body, 'model')
  if (!isModelId(model)) throw new BadRequestError('model must be a model id', 'model')
  const encoding = present(body, 'encoding_format') ?? 'float'
  if (encoding !== 'float' && encoding !== 'base64') throw new BadRequestError('encoding_format must be float or base64', 'encoding_format')
  const raw = present(body, 'input')
  const list = typeof raw === 'string' ? [raw] : raw
  if (!Array.isArray(list) || list.length === 0 || !list.every(t => typeof t === 'string' && t !== '')) {
    throw new BadRequestError(`input must be a non-empty text or a list of 1 to ${TASK_LIMITS.embedInputs} non-empty texts (token arrays are not supported)`, 'input')
  }
  try {
    // More texts than one embed job holds are sharded over peers, with a task's bounds.
    const texts = list.length <= EMBED_LIMITS.batch ? validateTexts(list) : validateTask({ kind: 'embed', model, inputs: list }).inputs as string[]
    return { model, texts, encoding }
  } catch (err) {
    if (err instanceof Error) throw new BadRequestError(err.message, 'input')
    throw err
  }
}
