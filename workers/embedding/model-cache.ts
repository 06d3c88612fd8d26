import { downloadAll, type ByteProgress } from './download.ts'

/**
 * The embedding models' files (ONNX graph, tokenizer.json) kept in one Cache Storage cache, keyed by
 * their URLs. The embedding worker loads from it and downloads only on a miss; the page fills it on
 * `models.pull` and empties it on `models.delete` (both see the origin's caches). The cache is passed
 * in, so Node tests can use an in-memory one.
 */

export const EMBEDDING_CACHE_NAME = 'hyperspace-embedding-models'

/** The part of the Cache Storage API used here. */
export type FileCache = Pick<Cache, 'match' | 'put' | 'delete'>

/** Set on every stored file: the size is then known without reading the body. */
const LENGTH = 'Content-Length'

function storedLength (response: Response): number | undefined {
  const length = Number(response.headers.get(LENGTH) ?? NaN)
  return Number.isSafeInteger(length) && length >= 0 ? length : undefined
}

/** The bytes of all the files when every one is cached, else undefined. */
export async function cachedBytes (cache: FileCache, urls: readonly string[]): Promise<number | undefined> {
  let total = 0
  for (const url of urls) {
    const response = await cache.match(url)
    const length = response === undefined ? undefined : storedLength(response)
    if (length === undefined) return undefined
    total += length
  }
  return total
}

/** The files from the cache, or undefined when one is missing or holds fewer bytes than stored (cut short). */
export async function readCached (cache: FileCache, urls: readonly string[]): Promise<Array<Uint8Array<ArrayBuffer>> | undefined> {
  const files: Array<Uint8Array<ArrayBuffer>> = []
  for (const url of urls) {
    const response = await cache.match(url)
    if (response === undefined) return undefined
    const bytes = new Uint8Array(await response.arrayBuffer())
    if (bytes.byteLength !== storedLength(response)) return undefined
    files.push(bytes)
  }
  return files
}

/**
 * Downloads every file (streamed byte progress; downloadAll refuses a bad status and anything over
 * its size bound) and stores them only once all have arrived, so an aborted or failed download
 * leaves nothing half-stored.
 */
export async function downloadToCache (cache: FileCache, urls: readonly string[], signal: AbortSignal, onProgress: (progress: ByteProgress) => void): Promise<Array<Uint8Array<ArrayBuffer>>> {
  const files = await downloadAll(urls, signal, onProgress)
  await Promise.all(urls.map(async (url, i) => {
    const bytes = files[i] as Uint8Array<ArrayBuffer>
    await cache.put(url, new Response(bytes, { headers: { [LENGTH]: String(bytes.byteLength) } }))
  }))
  return files
}

/** The files from the cache, else downloaded and stored. */
export async function loadFiles (cache: FileCache, urls: readonly string[], signal: AbortSignal, onProgress: (progress: ByteProgress) => void): Promise<Array<Uint8Array<ArrayBuffer>>> {
  return await readCached(cache, urls) ?? await downloadToCache(cache, urls, signal, onProgress)
}

/** Removes the files; says whether any was cached. */
export async function deleteCached (cache: FileCache, urls: readonly string[]): Promise<boolean> {
  const deleted = await Promise.all(urls.map(async url => await cache.delete(url)))
  return deleted.some(Boolean)
}
