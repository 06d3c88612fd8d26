import { afterEach, describe, expect, it, vi } from 'vitest'
import { EmbeddingEngineError } from '../../src/core/errors.ts'
import { MAX_DOWNLOAD_BYTES, type ByteProgress } from '../../workers/embedding/download.ts'
import { cachedBytes, deleteCached, loadFiles, readCached } from '../../workers/embedding/model-cache.ts'
import { MemoryCache } from './helpers.ts'

/**
 * The embedding model cache (workers/embedding/model-cache.ts) against an in-memory Cache and a
 * stubbed fetch: Node has no Cache Storage, and no test reaches the network.
 */

const TOKENIZER = 'http://models.test/m/tokenizer.json'
const MODEL = 'http://models.test/m/model.onnx'
const URLS = [TOKENIZER, MODEL]
const FILES: Record<string, Uint8Array<ArrayBuffer>> = {
  [TOKENIZER]: new TextEncoder().encode('{"model":{}}'),
  [MODEL]: new Uint8Array(5000).map((_, i) => i % 251)
}

/** A fetch that serves FILES in 1000-byte chunks, honours the signal, and counts its calls. */
function serveFiles (overrides: Partial<Record<string, (signal?: AbortSignal | null) => Response>> = {}): { fetch: typeof fetch, calls: string[] } {
  const calls: string[] = []
  const fake = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = String(input)
    calls.push(url)
    const override = overrides[url]
    if (override !== undefined) return override(init?.signal)
    const bytes = FILES[url]
    if (bytes === undefined) return new Response('not found', { status: 404 })
    let offset = 0
    const body = new ReadableStream<Uint8Array>({
      start (controller) {
        init?.signal?.addEventListener('abort', () => { controller.error(new DOMException('aborted', 'AbortError')) })
      },
      pull (controller) {
        if (offset >= bytes.byteLength) {
          controller.close()
          return
        }
        controller.enqueue(bytes.slice(offset, offset + 1000))
        offset += 1000
      }
    })
    return new Response(body, { headers: { 'Content-Length': String(bytes.byteLength) } })
  }
  return { fetch: fake as typeof fetch, calls }
}

function total (): number {
  return Object.values(FILES).reduce((sum, f) => sum + f.byteLength, 0)
}

afterEach(() => { vi.unstubAllGlobals() })

describe('embedding model cache', () => {
  it('a miss downloads with byte progress, stores both files, and the next load reads them from the cache', async () => {
    const cache = new MemoryCache()
    const server = serveFiles()
    vi.stubGlobal('fetch', server.fetch)
    const progress: ByteProgress[] = []

    const files = await loadFiles(cache, URLS, new AbortController().signal, p => { progress.push(p) })
    expect(files).toEqual([FILES[TOKENIZER], FILES[MODEL]])
    expect(server.calls).toEqual(URLS)
    expect(progress.at(-1)).toEqual({ loaded: total(), total: total() })
    expect(await cachedBytes(cache, URLS)).toBe(total())

    const again = await loadFiles(cache, URLS, new AbortController().signal, p => { progress.push(p) })
    expect(again).toEqual(files)
    expect(server.calls).toHaveLength(2)
  })

  it('a hit needs no network at all', async () => {
    const cache = new MemoryCache()
    for (const url of URLS) {
      const bytes = FILES[url] as Uint8Array<ArrayBuffer>
      await cache.put(url, new Response(bytes, { headers: { 'Content-Length': String(bytes.byteLength) } }))
    }
    vi.stubGlobal('fetch', () => { throw new Error('the network was used') })
    const progress: ByteProgress[] = []
    expect(await loadFiles(cache, URLS, new AbortController().signal, p => { progress.push(p) })).toEqual([FILES[TOKENIZER], FILES[MODEL]])
    expect(progress).toEqual([])
  })

  it('a file missing or cut short in the cache is a miss: both are downloaded again', async () => {
    const cache = new MemoryCache()
    const model = FILES[MODEL] as Uint8Array<ArrayBuffer>
    await cache.put(MODEL, new Response(model.slice(0, 100), { headers: { 'Content-Length': String(model.byteLength) } }))
    expect(await readCached(cache, [MODEL])).toBeUndefined()
    expect(await readCached(cache, URLS)).toBeUndefined()
    expect(await cachedBytes(cache, URLS)).toBeUndefined()
    const server = serveFiles()
    vi.stubGlobal('fetch', server.fetch)
    expect(await loadFiles(cache, URLS, new AbortController().signal, () => {})).toEqual([FILES[TOKENIZER], model])
    expect(server.calls).toEqual(URLS)
    expect(await readCached(cache, URLS)).toEqual([FILES[TOKENIZER], model])
  })

  it('a bad status fails the load and stores nothing', async () => {
    const cache = new MemoryCache()
    vi.stubGlobal('fetch', serveFiles({ [MODEL]: () => new Response('gone', { status: 404 }) }).fetch)
    const failure = await loadFiles(cache, URLS, new AbortController().signal, () => {}).catch((err: unknown) => err)
    expect(failure).toBeInstanceOf(EmbeddingEngineError)
    expect(failure).toMatchObject({ kind: 'load', message: `${MODEL}: HTTP 404` })
    expect(cache.entries.size).toBe(0)
  })

  it('a file over the size bound is refused from its Content-Length and nothing is stored', async () => {
    const cache = new MemoryCache()
    const huge = (): Response => new Response(new Uint8Array(10), { headers: { 'Content-Length': String(MAX_DOWNLOAD_BYTES + 1) } })
    vi.stubGlobal('fetch', serveFiles({ [MODEL]: huge }).fetch)
    const failure = await loadFiles(cache, URLS, new AbortController().signal, () => {}).catch((err: unknown) => err)
    expect(failure).toBeInstanceOf(EmbeddingEngineError)
    expect((failure as Error).message).toMatch(/is larger than 512 MiB/)
    expect(cache.entries.size).toBe(0)
  })

  it('an abort during the download stops it and stores nothing', async () => {
    const cache = new MemoryCache()
    const controller = new AbortController()
    // Like a real fetch, the body fails once the request's signal aborts.
    const endless = (signal?: AbortSignal | null): Response => new Response(new ReadableStream<Uint8Array>({
      start: c => { signal?.addEventListener('abort', () => { c.error(new DOMException('aborted', 'AbortError')) }) },
      pull: async c => {
        await new Promise(resolve => setTimeout(resolve, 5))
        c.enqueue(new Uint8Array(100))
      }
    }))
    const server = serveFiles({ [MODEL]: endless })
    vi.stubGlobal('fetch', server.fetch)
    const loading = loadFiles(cache, URLS, controller.signal, () => {})
    setTimeout(() => { controller.abort() }, 30)
    await expect(loading).rejects.toMatchObject({ name: 'AbortError' })
    expect(server.calls).toEqual(URLS)
    expect(cache.entries.size).toBe(0)
  })

  it('delete removes the files and says whether any was there', async () => {
    const cache = new MemoryCache()
    vi.stubGlobal('fetch', serveFiles().fetch)
    await loadFiles(cache, URLS, new AbortController().signal, () => {})
    expect(await deleteCached(cache, URLS)).toBe(true)
    expect(cache.entries.size).toBe(0)
    expect(await deleteCached(cache, URLS)).toBe(false)
  })
})
