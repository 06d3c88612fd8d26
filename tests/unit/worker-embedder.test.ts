import { describe, expect, it } from 'vitest'
import { MODEL2VEC_TOKENIZATION, type EmbeddingModelSpec } from '../../src/core/embedding/models.ts'
import { EmbeddingEngineError, EmbeddingInputError } from '../../src/core/errors.ts'
import { serveRpc } from '../../src/core/worker-rpc/host.ts'
import type { ByteProgress } from '../../src/core/progress.ts'
import { WorkerEmbedder } from '../../src/node/embedder.ts'
import { embeddingErrors, type EmbeddingWorkerApi } from '../../workers/embedding/protocol.ts'
import { workerChannel } from './worker-channel.ts'

const SPEC: EmbeddingModelSpec = { id: 'tiny', url: 'http://127.0.0.1/tiny.onnx', tokenizerUrl: 'http://127.0.0.1/tokenizer.json', dims: 2, tokenization: MODEL2VEC_TOKENIZATION }

/** An embedding worker's API in this process: loads wait for `release`, vectors are [i, i]. */
function fakeWorker (): { embedder: WorkerEmbedder, release: () => void, loads: () => number } {
  const channel = workerChannel()
  let release = (): void => {}
  let loads = 0
  const api: EmbeddingWorkerApi = {
    async load (model, options) {
      loads++
      options.onProgress?.({ loaded: 1, total: 2 })
      options.onProgress?.({ loaded: 2, total: 2 })
      await new Promise<void>(resolve => { release = resolve })
      return { id: model.id, dims: model.dims, backend: 'wasm', threads: options.threads, ms: 1 }
    },
    async embed (texts) {
      if (texts.includes('boom')) throw new EmbeddingEngineError('run', 'ORT failed')
      const vectors = new Float32Array(texts.flatMap((_, i) => [i, i]))
      return { vectors, count: texts.length, dims: 2, tokens: texts.length, ms: 1, runMs: 1 }
    },
    async unload () {}
  }
  serveRpc(channel.worker, api, { errors: embeddingErrors, serial: true })
  const embedder = new WorkerEmbedder({ createWorker: () => channel.page, threads: 1, loadStallMs: 60_000 })
  return { embedder, release: () => { release() }, loads: () => loads }
}

describe('WorkerEmbedder over the worker RPC', () => {
  it('loads, embeds one vector per text, and names errors', async () => {
    const { embedder, release, loads } = fakeWorker()
    const loading = embedder.load(SPEC)
    await expect.poll(loads).toBe(1)
    release()
    expect(await loading).toEqual({ id: 'tiny', dims: 2 })
    expect(embedder.loaded()).toEqual({ id: 'tiny', dims: 2 })
    expect((await embedder.embed(['a', 'b'])).map(v => Array.from(v))).toEqual([[0, 0], [1, 1]])
    expect(await embedder.embed([])).toEqual([])
    await expect(embedder.embed(['boom'])).rejects.toMatchObject({ name: 'EmbeddingEngineError', kind: 'run', message: 'embed 1 texts: ORT failed' })
    await expect(embedder.embed([42 as unknown as string])).rejects.toBeInstanceOf(EmbeddingInputError)
    embedder.close()
    expect(embedder.loaded()).toBeUndefined()
  })

  it('hands the download progress of a load to the caller, in order', async () => {
    const { embedder, release, loads } = fakeWorker()
    const events: ByteProgress[] = []
    const loading = embedder.load(SPEC, { onProgress: p => { events.push(p) } })
    await expect.poll(loads).toBe(1)
    await expect.poll(() => events.length).toBe(2)
    release()
    await loading
    expect(events).toEqual([{ loaded: 1, total: 2 }, { loaded: 2, total: 2 }])
    embedder.close()
  })

  it('an aborted load fails at once, and the model it loaded anyway is the one served', async () => {
    const { embedder, release, loads } = fakeWorker()
    const controller = new AbortController()
    const loading = embedder.load(SPEC, { signal: controller.signal })
    await expect.poll(loads).toBe(1)
    controller.abort()
    await expect(loading).rejects.toMatchObject({ kind: 'aborted' })
    expect(embedder.loaded()).toBeUndefined()
    // This fake ignores the abort and finishes: its late answer still says what the worker serves.
    release()
    await expect.poll(() => embedder.loaded()).toEqual({ id: 'tiny', dims: 2 })
    embedder.close()
  })

  describe('threads chosen by measurement', () => {
    /** Workers whose embed calls take `msByThreads[threads]` ms, as loaded; `isolated` false: ORT runs 1 thread whatever asked. */
    function measuredWorkers (msByThreads: Record<number, number>, isolated = true): { embedder: WorkerEmbedder, started: number[], terminated: number[] } {
      const started: number[] = []
      const terminated: number[] = []
      const createWorker = (): ReturnType<typeof workerChannel>['page'] => {
        const channel = workerChannel()
        const index = started.length
        let threads = 0
        started.push(0)
        const api: EmbeddingWorkerApi = {
          async load (model, options) {
            threads = isolated ? options.threads : 1
            started[index] = threads
            return { id: model.id, dims: model.dims, backend: 'wasm', threads, ms: 1 }
          },
          async embed (texts) {
            return { vectors: new Float32Array(texts.length * 2), count: texts.length, dims: 2, tokens: texts.length, ms: msByThreads[threads] ?? NaN, runMs: 0 }
          },
          async unload () {}
        }
        serveRpc(channel.worker, api, { errors: embeddingErrors, serial: true })
        return Object.assign(channel.page, { terminate: () => { terminated.push(index); channel.close() } })
      }
      return { embedder: new WorkerEmbedder({ createWorker, maxThreads: 3 }), started, terminated }
    }

    it('keeps the one-thread worker when more threads are slower, and ends the other', async () => {
      const { embedder, started, terminated } = measuredWorkers({ 1: 10, 3: 30 })
      expect(await embedder.load(SPEC)).toEqual({ id: 'tiny', dims: 2 })
      expect(started).toEqual([3, 1])
      expect(terminated).toEqual([0])
      expect(await embedder.embed(['a'])).toHaveLength(1)
      // The choice is kept: loading again measures nothing.
      await embedder.load(SPEC)
      expect(started).toHaveLength(2)
      embedder.close()
      expect(terminated).toEqual([0, 1])
    })

    it('keeps more threads when they are clearly faster', async () => {
      const { embedder, started, terminated } = measuredWorkers({ 1: 30, 3: 10 })
      await embedder.load(SPEC)
      expect(started).toEqual([3, 1])
      expect(terminated).toEqual([1])
      embedder.close()
    })

    it('compares nothing when the worker cannot run threads', async () => {
      const { embedder, started, terminated } = measuredWorkers({ 1: 10 }, false)
      await embedder.load(SPEC)
      expect(started).toEqual([1, 0])
      expect(terminated).toEqual([1])
      expect(embedder.loaded()).toEqual({ id: 'tiny', dims: 2 })
      embedder.close()
    })
  })
})
