import { CAPABILITY_NAMES, isProfileName, type CapabilityName, type ProfileName } from '../core/capabilities.ts'
import type { HyperspaceDb } from './database.ts'

/** The user's choices: a profile, and capabilities switched on or off against it. */
export interface NodeSettings {
  profile?: ProfileName
  toggles: Partial<Record<CapabilityName, boolean>>
}

export class SettingsStore {
  constructor (private readonly db: HyperspaceDb) {}

  /** Values are re-validated on read: the database may hold what an older version wrote. */
  async load (): Promise<NodeSettings> {
    const profile = await this.db.get('settings', 'profile')
    const stored = await this.db.get('settings', 'toggles')
    const toggles: NodeSettings['toggles'] = {}
    if (typeof stored === 'object' && stored !== null) {
      for (const name of CAPABILITY_NAMES) {
        const value = (stored as Record<string, unknown>)[name]
        if (typeof value === 'boolean') toggles[name] = value
      }
    }
    return isProfileName(profile) ? { profile, toggles } : { toggles }
  }

  async save (settings: NodeSettings): Promise<void> {
    const tx = this.db.transaction('settings', 'readwrite')
    if (settings.profile === undefined) await tx.store.delete('profile')
    else await tx.store.put(settings.profile, 'profile')
    await tx.store.put({ ...settings.toggles }, 'toggles')
    await tx.done
  }
}
