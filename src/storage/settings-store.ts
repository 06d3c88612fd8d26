import { CAPABILITY_NAMES, isProfileName, type CapabilityName, type ProfileName } from '../core/capabilities.ts'
import { isModelListing, type ModelListing } from '../core/inference/listing.ts'
import { normalizeHostLists, type ProxyHostLists } from '../core/proxy/host-list.ts'
import type { HyperspaceDb } from './database.ts'

/** The user's choices: a profile, and capabilities switched on or off against it. */
export interface NodeSettings {
  profile?: ProfileName
  toggles: Partial<Record<CapabilityName, boolean>>
  /** The proxy's allow and deny lists; absent until the user sets them. */
  proxyHosts?: ProxyHostLists
  /** How peers find the chat models this node serves; absent until the user chooses. */
  modelListing?: ModelListing
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
    const settings: NodeSettings = isProfileName(profile) ? { profile, toggles } : { toggles }
    const listing = await this.db.get('settings', 'model-listing')
    if (isModelListing(listing)) settings.modelListing = listing
    const hosts = await this.db.get('settings', 'proxy-hosts')
    if (hosts !== undefined) {
      try {
        settings.proxyHosts = normalizeHostLists(hosts)
      } catch {
        // Lists an older version wrote and this one cannot read are dropped, not half-applied.
      }
    }
    return settings
  }

  async save (settings: NodeSettings): Promise<void> {
    const tx = this.db.transaction('settings', 'readwrite')
    if (settings.profile === undefined) await tx.store.delete('profile')
    else await tx.store.put(settings.profile, 'profile')
    await tx.store.put({ ...settings.toggles }, 'toggles')
    if (settings.modelListing === undefined) await tx.store.delete('model-listing')
    else await tx.store.put(settings.modelListing, 'model-listing')
    if (settings.proxyHosts === undefined) await tx.store.delete('proxy-hosts')
    else await tx.store.put({ allow: [...settings.proxyHosts.allow], deny: [...settings.proxyHosts.deny] }, 'proxy-hosts')
    await tx.done
  }
}
