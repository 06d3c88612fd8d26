import { isModelId } from '../core/inference/request.ts'
import type { HyperspaceDb } from './database.ts'

const KEY = 'served-models'
const EMBEDDING_KEY = 'embedding-model'
/** More than any device loads at once; a longer list in the database is not ours. */
const MAX_SERVED = 32

/** The models this node served, so that a reload loads them again (kept in the settings store). */
export class ServedModelsStore {
  constructor (private readonly db: HyperspaceDb) {}

  /** Re-validated on read: the database may hold what an older version wrote. */
  async load (): Promise<string[]> {
    const stored = await this.db.get('settings', KEY)
    if (!Array.isArray(stored)) return []
    return [...new Set(stored.filter(isModelId))].slice(0, MAX_SERVED)
  }

  async save (models: readonly string[]): Promise<void> {
    await this.db.put('settings', [...new Set(models)].slice(0, MAX_SERVED), KEY)
  }
}

/** The embedding model the user pulled, served by the embedding capability in place of the default. */
export class EmbeddingChoiceStore {
  constructor (private readonly db: HyperspaceDb) {}

  async load (): Promise<string | undefined> {
    const stored = await this.db.get('settings', EMBEDDING_KEY)
    return isModelId(stored) ? stored : undefined
  }

  async save (id: string | undefined): Promise<void> {
    if (id === undefined) await this.db.delete('settings', EMBEDDING_KEY)
    else await this.db.put('settings', id, EMBEDDING_KEY)
  }
}
