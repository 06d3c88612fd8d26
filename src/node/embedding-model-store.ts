import { errorMessage } from '../core/errors.ts'
import { InferenceAbortedError } from '../core/models/errors.ts'
import type { FileCache } from '../../workers/embedding/model-cache.ts'
import type { EmbeddingModelSpec } from '../core/embedding/models.ts'
import type { DownloadedModel, PullProgress } from '../core/models/catalog.ts'

/** Where the pulled embedding model's id is kept (src/storage/served-models-store.ts in the browser). */
export interface EmbeddingChoiceStorage {
  load: () => Promise<string | undefined>
  save: (id: string | undefined) => Promise<void>
}

/**
 * The embedding models on this device: their files in the embedding model cache (the one the
 * embedding worker loads from) and which one the user pulled, which the embedding capability then
 * serves in place of the deployment's default.
 */
export interface EmbeddingModels {
  /** Downloads the files not cached yet, then makes the model the one served. */
  pull: (spec: EmbeddingModelSpec, options?: { onProgress?: (progress: PullProgress) => void, signal?: AbortSignal }) => Promise<void>
  /** Those of these models whose files are all cached, with their sizes. */
  downloaded: (specs: readonly EmbeddingModelSpec[]) => Promise<DownloadedModel[]>
  /** Deletes the model's files and, when it was the one pulled, forgets it. */
  delete: (spec: EmbeddingModelSpec) => Promise<void>
  /** Forgets the pulled model when it is this one; says whether it was. */
  forget: (id: string) => Promise<boolean>
  /** The id of the model pulled last and not deleted since, if any. */
  chosen: () => Promise<string | undefined>
}

export interface EmbeddingModelStoreOptions {
  choice: EmbeddingChoiceStorage
  openCache?: () => Promise<FileCache>
}

function filesOf (spec: EmbeddingModelSpec): string[] {
  return [spec.tokenizerUrl, spec.url]
}

/** The model cache's code, loaded at the first pull, listing or delete: nothing before online needs it. */
async function modelCache (): Promise<typeof import('../../workers/embedding/model-cache.ts')> {
  return await import('../../workers/embedding/model-cache.ts')
}

export class EmbeddingModelStore implements EmbeddingModels {
  private readonly choice: EmbeddingChoiceStorage
  private readonly openCache: () => Promise<FileCache>
  private current?: Promise<string | undefined>

  constructor (options: EmbeddingModelStoreOptions) {
    this.choice = options.choice
    this.openCache = options.openCache ?? (async () => await caches.open((await modelCache()).EMBEDDING_CACHE_NAME))
  }

  async pull (spec: EmbeddingModelSpec, options: { onProgress?: (progress: PullProgress) => void, signal?: AbortSignal } = {}): Promise<void> {
    const cache = await this.openCache()
    const { cachedBytes, downloadToCache } = await modelCache()
    if (await cachedBytes(cache, filesOf(spec)) === undefined) {
      try {
        await downloadToCache(cache, filesOf(spec), options.signal ?? new AbortController().signal, ({ loaded, total }) => {
          options.onProgress?.({ model: spec.id, loaded, total })
        })
      } catch (err) {
        // As a chat model's pull: an abort is an abort, whatever fetch called it.
        if (options.signal?.aborted === true) throw new InferenceAbortedError(`pulling ${spec.id}`)
        throw err
      }
    }
    await this.choose(spec.id)
  }

  async downloaded (specs: readonly EmbeddingModelSpec[]): Promise<DownloadedModel[]> {
    const cache = await this.openCache()
    const { cachedBytes } = await modelCache()
    const sizes = await Promise.all(specs.map(async spec => ({ id: spec.id, sizeBytes: await cachedBytes(cache, filesOf(spec)) })))
    return sizes.filter((d): d is DownloadedModel => d.sizeBytes !== undefined)
  }

  async delete (spec: EmbeddingModelSpec): Promise<void> {
    await this.forget(spec.id)
    await (await modelCache()).deleteCached(await this.openCache(), filesOf(spec))
  }

  async forget (id: string): Promise<boolean> {
    if (await this.chosen() !== id) return false
    await this.choose(undefined)
    return true
  }

  async chosen (): Promise<string | undefined> {
    this.current ??= this.choice.load().catch((err: unknown) => {
      console.warn(`hyperspace: the pulled embedding model is unreadable: ${errorMessage(err)}`)
      return undefined
    })
    return await this.current
  }

  /** A storage failure costs only the choice after the next reload, so it is logged, not thrown. */
  private async choose (id: string | undefined): Promise<void> {
    this.current = Promise.resolve(id)
    try {
      await this.choice.save(id)
    } catch (err) {
      console.warn(`hyperspace: could not store the pulled embedding model: ${errorMessage(err)}`)
    }
  }
}
