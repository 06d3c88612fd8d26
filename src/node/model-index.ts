import { InvalidModelIndexError } from '../core/models/errors.ts'
import { LOCAL_INDEX_LIMITS, parseLocalModelIndex, type LocalModelIndex } from '../core/models/local-index.ts'

const FETCH_TIMEOUT_MS = 10_000

/** The deployment's `models/index.json`, next to index.html (scripts/serve-plugin.ts writes it). */
export function localIndexUrl (): string {
  return new URL('models/index.json', document.baseURI).href
}

/** The body as text, refusing to read past the index's size limit whatever Content-Length claims. */
async function readCapped (response: Response, maxBytes: number): Promise<string> {
  const reader = response.body?.getReader()
  if (reader === undefined) return ''
  const decoder = new TextDecoder()
  let text = ''
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > maxBytes) {
      await reader.cancel()
      throw new InvalidModelIndexError(`more than ${maxBytes} bytes`)
    }
    text += decoder.decode(value, { stream: true })
  }
  return text + decoder.decode()
}

/**
 * Fetches and validates the local model index. A deployment without local models answers 404: that
 * is an empty index, not an error. Anything else that goes wrong throws.
 */
export async function fetchLocalModelIndex (url = localIndexUrl()): Promise<LocalModelIndex> {
  const response = await fetch(url, { cache: 'no-store', signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) })
  if (response.status === 404) return { entries: [], rejected: [] }
  if (!response.ok) throw new InvalidModelIndexError(`${url} answered HTTP ${response.status}`)
  // A text never has more characters than UTF-8 bytes: capping the bytes at the character limit is safe.
  return parseLocalModelIndex(await readCapped(response, LOCAL_INDEX_LIMITS.chars), url)
}
