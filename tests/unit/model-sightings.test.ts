import { describe, expect, it } from 'vitest'
import { MAX_MISSED_MODELS, MAX_SEEN_MODELS, MISS_TTL_MS, ModelSightings } from '../../src/core/gateway/model-sightings.ts'

describe('ModelSightings', () => {
  it('keeps the first time a model was seen', () => {
    const s = new ModelSightings()
    s.seen('m', 10)
    s.seen('m', 20)
    expect(s.firstSeen('m')).toBe(10)
    expect(s.firstSeen('other')).toBeUndefined()
  })

  it('answers a miss for its time to live only, and a sighting clears it', () => {
    const s = new ModelSightings()
    s.missed('m', 1_000)
    expect(s.missedRecently('m', 1_000 + MISS_TTL_MS - 1)).toBe(true)
    expect(s.missedRecently('m', 1_000 + MISS_TTL_MS)).toBe(false)
    s.missed('m', 5_000)
    s.seen('m', 5_001)
    expect(s.missedRecently('m', 5_002)).toBe(false)
  })

  it('never counts a model seen served as missed', () => {
    const s = new ModelSightings()
    s.seen('m', 1)
    s.missed('m', 2)
    expect(s.missedRecently('m', 3)).toBe(false)
  })

  it('stays bounded against a client that makes up model names', () => {
    const s = new ModelSightings()
    for (let i = 0; i < MAX_MISSED_MODELS + 10; i++) s.missed(`fake-${i}`, 100)
    expect(s.missedRecently('fake-0', 101)).toBe(false)
    expect(s.missedRecently(`fake-${MAX_MISSED_MODELS + 9}`, 101)).toBe(true)
    for (let i = 0; i < MAX_SEEN_MODELS + 10; i++) s.seen(`real-${i}`, 100)
    expect(s.firstSeen(`real-${MAX_SEEN_MODELS - 1}`)).toBe(100)
    expect(s.firstSeen(`real-${MAX_SEEN_MODELS}`)).toBeUndefined()
  })
})
