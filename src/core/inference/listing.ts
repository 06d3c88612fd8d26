import type { Availability } from '../capabilities.ts'

/**
 * How peers find the chat models a node serves, one routing tier less at each step:
 * - `announced`: its capability announcements list them, its DHT provider records name it, and it
 *   answers wants on the inference topic (all three tiers);
 * - `unlisted`: DHT records and wants only. Clients try the announced servers first, so this node
 *   serves a model only when none of them is left: a standby that leaves the busy work to others;
 * - `on-request`: wants only. Nothing says what it serves until someone asks, and no record of it
 *   outlives the tab on the relays (DHT provider records stay there up to 48 h).
 */
export const MODEL_LISTINGS = ['announced', 'unlisted', 'on-request'] as const
export type ModelListing = typeof MODEL_LISTINGS[number]

export const DEFAULT_MODEL_LISTING: ModelListing = 'announced'

export function isModelListing (value: unknown): value is ModelListing {
  return typeof value === 'string' && (MODEL_LISTINGS as readonly string[]).includes(value)
}

/** Whether the capability announcement names the served models (the registry tier). */
export function listedInAnnouncements (listing: ModelListing): boolean {
  return listing === 'announced'
}

/** Whether the node provides its served models in the DHT (the DHT tier). */
export function providedInDht (listing: ModelListing): boolean {
  return listing !== 'on-request'
}

/**
 * Whether serving inference counts as working. A working capability is claimed in the announcement
 * and the pulse, and validators check the claim with a job for a model the announcement names: an
 * unlisted node names none, so it claims nothing it could not show (and earns no inference bonus).
 */
export function inferenceAvailability (loadedModels: number, listing: ModelListing): Availability {
  if (loadedModels === 0) return { available: false, reason: 'no model loaded: pull one under Models' }
  if (!listedInAnnouncements(listing)) return { available: false, reason: `models are served ${listing === 'unlisted' ? 'unlisted' : 'on request'}: announcements name none, so validators have nothing to check` }
  return { available: true }
}
