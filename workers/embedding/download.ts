import { EmbeddingEngineError } from '../../src/core/errors.ts'
import { concatAll } from '../../src/core/crypto/bytes.ts'

/**
 * Fetches a model's files together with one byte count for all of them, so a load shows a single
 * progress bar. Abortable through the signal; a file larger than MAX_DOWNLOAD_BYTES is refused as
 * soon as its size shows (header or bytes), before the tab runs out of memory.
 */

export const MAX_DOWNLOAD_BYTES = 512 * 1024 * 1024
/** Progress events at most this often: a 90 MB model arrives in thousands of chunks. */
const PROGRESS_INTERVAL_MS = 100

export interface ByteProgress {
  loaded: number
  /** 0 while the size of any file is unknown (no Content-Length). */
  total: number
}

interface FileState {
  loaded: number
  /** undefined: headers not in yet; null: no Content-Length. */
  size: number | null | undefined
}

export async function downloadAll (urls: readonly string[], signal: AbortSignal, onProgress: (progress: ByteProgress) => void): Promise<Array<Uint8Array<ArrayBuffer>>> {
  const files: FileState[] = urls.map(() => ({ loaded: 0, size: undefined }))
  let lastReport = -Infinity
  const report = (final: boolean): void => {
    const now = performance.now()
    if (!final && now - lastReport < PROGRESS_INTERVAL_MS) return
    lastReport = now
    const known = files.every(f => typeof f.size === 'number')
    onProgress({
      loaded: files.reduce((sum, f) => sum + f.loaded, 0),
      total: known ? files.reduce((sum, f) => sum + (f.size ?? 0), 0) : 0
    })
  }
  // One failed file makes the others useless: stop them too rather than finish a large download.
  const failed = new AbortController()
  const either = AbortSignal.any([signal, failed.signal])
  const bodies = await Promise.all(urls.map(async (url, i) => {
    try {
      return await fetchBytes(url, either, files[i] as FileState, () => { report(false) })
    } catch (error) {
      failed.abort()
      throw error
    }
  }))
  report(true)
  return bodies
}

async function fetchBytes (url: string, signal: AbortSignal, state: FileState, onChunk: () => void): Promise<Uint8Array<ArrayBuffer>> {
  const response = await fetch(url, { signal })
  if (!response.ok || response.body === null) throw new EmbeddingEngineError('load', `${url}: HTTP ${response.status}`)
  const header = Number(response.headers.get('Content-Length') ?? NaN)
  // A compressed response's Content-Length counts the compressed bytes, not the ones read here.
  const encoded = (response.headers.get('Content-Encoding') ?? 'identity') !== 'identity'
  state.size = Number.isSafeInteger(header) && header >= 0 && !encoded ? header : null
  if (state.size !== null && state.size > MAX_DOWNLOAD_BYTES) throw tooLarge(url)
  const chunks: Array<Uint8Array<ArrayBuffer>> = []
  const reader = response.body.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    chunks.push(value)
    state.loaded += value.byteLength
    if (state.loaded > MAX_DOWNLOAD_BYTES) {
      await reader.cancel()
      throw tooLarge(url)
    }
    onChunk()
  }
  return join(chunks)
}

function tooLarge (url: string): EmbeddingEngineError {
  return new EmbeddingEngineError('load', `${url} is larger than ${MAX_DOWNLOAD_BYTES / (1024 * 1024)} MiB`)
}

/** The file's bytes: its one chunk as it came, or the chunks joined. */
function join (chunks: ReadonlyArray<Uint8Array<ArrayBuffer>>): Uint8Array<ArrayBuffer> {
  if (chunks.length === 1 && chunks[0] !== undefined) return chunks[0]
  return concatAll(chunks)
}
