import { InvalidModelIndexError } from '../core/models/errors.ts'
import { LOCAL_INDEX_LIMITS, parseLocalModelIndex, type LocalModelIndex } from '../core/models/local-index.ts'
import { readBoundedBody } from './bounded-body.ts'

const FETCH_TIMEOUT_MS = 10_000

/** The deployment's `models/index.json`, next to index.html (scripts/serve-plugin.ts writes it). */
export function localIndexUrl (): string {
  return new URL('models/index.json', document.baseURI).href
}

/** The index's text, refusing to read past its size limit. */
async function readIndexText (response: Response): Promise<string> {
  const maxBytes = LOCAL_INDEX_LIMITS.chars
  return new TextDecoder().decode(await readBoundedBody(response, maxBytes, () => new InvalidModelIndexError(`more than ${maxBytes} bytes`)))
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
  return parseLocalModelIndex(await readIndexText(response), url)
}
