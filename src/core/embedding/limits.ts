import { EmbeddingInputError } from '../errors.ts'

/**
 * Bounds on one embedding request, the same whether the texts come from this page or from a peer:
 * a request must fit in one worker round trip and one stream message.
 */
export const EMBED_LIMITS = {
  /** Texts per request. */
  batch: 64,
  /** UTF-8 bytes per text. */
  textBytes: 8 * 1024
} as const

const encoder = new TextEncoder()

function utf8Length (text: string): number {
  // A UTF-16 code unit never takes more than 3 UTF-8 bytes: short texts need no encoding to be checked.
  return text.length * 3 <= EMBED_LIMITS.textBytes ? text.length : encoder.encode(text).byteLength
}

/** The texts, checked against EMBED_LIMITS; throws EmbeddingInputError naming the first problem. */
export function validateTexts (texts: unknown): string[] {
  if (!Array.isArray(texts)) throw new EmbeddingInputError('texts must be an array of strings')
  if (texts.length > EMBED_LIMITS.batch) throw new EmbeddingInputError(`${texts.length} texts exceed the batch limit of ${EMBED_LIMITS.batch}`)
  texts.forEach((text: unknown, i) => {
    if (typeof text !== 'string') throw new EmbeddingInputError(`text ${i} is not a string`)
    if (utf8Length(text) > EMBED_LIMITS.textBytes) throw new EmbeddingInputError(`text ${i} is longer than ${EMBED_LIMITS.textBytes} UTF-8 bytes`)
  })
  return texts as string[]
}
