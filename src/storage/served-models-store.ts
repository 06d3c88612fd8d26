import { isModelId } from '../core/inference/request.ts'
import type { HyperspaceDb } from './database.ts'

const KEY = 'served-models'
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
