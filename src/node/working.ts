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
  const jobs = session.jobs.current
  if (jobs === undefined) {
    const loading = { available: false, reason: 'the job services are loading' }
    for (const name of ['caching', 'embedding', 'storage', 'memory', 'proxy', 'orchestration'] as const) working.set(name, loading)
    return working
  }
  working.set('caching', jobs.inference.cachingAvailability())
  working.set('embedding', jobs.embedding.availability())
  working.set('storage', jobs.blocks.availability())
  working.set('memory', jobs.memory.availability())
  working.set('proxy', jobs.proxy.availability())
  working.set('orchestration', jobs.tasks.availability())
  return working
}
