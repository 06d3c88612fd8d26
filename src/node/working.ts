import { inferenceAvailability, type ModelListing } from '../core/inference/listing.ts'
import type { Availability, CapabilityName } from '../core/capabilities.ts'
import type { Session } from './session.ts'

/** What works now, for each capability a tab runs; one without an entry says "not implemented yet" rather than pretend. */
export function workingNow (session: Session | undefined, loadedChatModels: number, listing: ModelListing): Map<CapabilityName, Availability> {
  const working = new Map<CapabilityName, Availability>()
  const notRunning = { available: false, reason: 'the node is not running' }
  if (session === undefined) {
    for (const name of ['validation', 'inference', 'caching', 'embedding', 'storage', 'memory', 'proxy', 'orchestration'] as const) working.set(name, notRunning)
    return working
  }
  working.set('validation', { available: true })
  working.set('inference', inferenceAvailability(loadedChatModels, listing))
  working.set('caching', session.inference.cachingAvailability())
  working.set('embedding', session.embedding.availability())
  working.set('storage', session.blocks.availability())
  working.set('memory', session.memory.availability())
  working.set('proxy', session.proxy.availability())
  working.set('orchestration', session.tasks.availability())
  return working
}
