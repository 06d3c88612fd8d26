import { describe, expect, it } from 'vitest'
import { announcementFromStatuses } from '../../src/core/wire/announcement.ts'
import { CAPABILITY_NAMES, capabilityStatuses, workingCapabilities, type AvailabilityMap } from '../../src/core/capabilities.ts'
import { inferenceAvailability, isModelListing, listedInAnnouncements, MODEL_LISTINGS, providedInDht, type ModelListing } from '../../src/core/inference/listing.ts'

const SERVING = { models: ['stories260K'], queue: 0, slots: 1 }
const ADDR = '/ip4/127.0.0.1/tcp/4002/ws/p2p/12D3KooWRelay/p2p-circuit'

/** The announcement a node serving stories260K with inference on sends under `listing`. */
function announced (listing: ModelListing): ReturnType<typeof announcementFromStatuses> {
  const availability = Object.fromEntries(CAPABILITY_NAMES.map(n => [n, { available: true }])) as AvailabilityMap
  const statuses = capabilityStatuses(new Set(['inference']), availability, new Map([['inference', inferenceAvailability(1, listing)]]))
  return announcementFromStatuses('inference', statuses, [ADDR], 1_700_000_000_000, SERVING)
}

describe('model listing', () => {
  it('each step leaves out one more routing tier', () => {
    expect(MODEL_LISTINGS.map(l => [listedInAnnouncements(l), providedInDht(l)])).toEqual([[true, true], [false, true], [false, false]])
  })

  it('accepts only the three listings', () => {
    expect(MODEL_LISTINGS.every(isModelListing)).toBe(true)
    for (const garbage of ['Announced', 'dht', '', null, 1, ['announced']]) expect(isModelListing(garbage)).toBe(false)
  })

  it('an announced node names its models and claims inference; an unlisted or on-request one does neither', () => {
    expect(announced('announced')).toMatchObject({ capabilities: { inference: { working: true } }, serving: SERVING })
    for (const listing of ['unlisted', 'on-request'] as const) {
      const a = announced(listing)
      expect(a.serving).toBeUndefined()
      // Enabled but not claimed working: validators probe a claim with a model the announcement names.
      expect(a.capabilities).toEqual({ inference: { working: false } })
    }
  })

  it('an unclaimed inference earns no bonus in the pulse, and the status says why', () => {
    const availability = Object.fromEntries(CAPABILITY_NAMES.map(n => [n, { available: true }])) as AvailabilityMap
    const statuses = capabilityStatuses(new Set(['inference']), availability, new Map([['inference', inferenceAvailability(1, 'unlisted')]]))
    expect(workingCapabilities(statuses)).toEqual([])
    expect(statuses.inference).toMatchObject({ enabled: true, working: false })
    expect(statuses.inference.reason).toMatch(/unlisted/)
  })

  it('without a loaded model inference does not work, whatever the listing', () => {
    for (const listing of MODEL_LISTINGS) expect(inferenceAvailability(0, listing)).toEqual({ available: false, reason: 'no model loaded: pull one under Models' })
  })
})
