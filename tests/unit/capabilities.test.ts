import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  CAPABILITY_NAMES,
  CAPABILITY_WEIGHTS,
  PROFILE_NAMES,
  capabilityMultiplier,
  capabilityStatuses,
  enabledCapabilities,
  idleCapabilities,
  isCapabilityName,
  isProfileName,
  profileCapabilities,
  pulledModelServing,
  stalledCapabilities,
  type Availability,
  type AvailabilityMap,
  type CapabilityName,
  type CapabilityStatusMap
} from '../../src/core/capabilities.ts'

function availability (unavailable: Partial<Record<CapabilityName, string>> = {}): AvailabilityMap {
  const map = {} as AvailabilityMap
  for (const name of CAPABILITY_NAMES) {
    const reason = unavailable[name]
    map[name] = reason === undefined ? { available: true } : { available: false, reason }
  }
  return map
}

const ALL = availability()

function sorted (set: ReadonlySet<CapabilityName>): CapabilityName[] {
  return [...set].sort()
}

function working (names: readonly CapabilityName[]): Map<CapabilityName, Availability> {
  return new Map(names.map(name => [name, { available: true }]))
}

function statusesWith (enabledAndWorking: readonly CapabilityName[]): CapabilityStatusMap {
  return capabilityStatuses(new Set(enabledAndWorking), ALL, working(enabledAndWorking))
}

describe('names', () => {
  it('lists the nine capabilities and five profiles', () => {
    expect([...CAPABILITY_NAMES]).toEqual(['inference', 'embedding', 'storage', 'memory', 'relay', 'validation', 'orchestration', 'caching', 'proxy'])
    expect([...PROFILE_NAMES]).toEqual(['full', 'inference', 'embedding', 'storage', 'relay'])
  })

  it('type guards accept only known names', () => {
    expect(isCapabilityName('proxy')).toBe(true)
    expect(isCapabilityName('Proxy')).toBe(false)
    expect(isCapabilityName('toString')).toBe(false)
    expect(isCapabilityName(1)).toBe(false)
    expect(isProfileName('full')).toBe(true)
    expect(isProfileName('memory')).toBe(false)
    expect(isProfileName(undefined)).toBe(false)
  })
})

describe('profile rules', () => {
  it('full enables every available capability but the opt-in proxy, which only the user turns on', () => {
    expect(sorted(profileCapabilities('full', ALL))).toEqual(CAPABILITY_NAMES.filter(n => n !== 'proxy').sort())
    expect(sorted(enabledCapabilities('full', availability({ relay: 'no inbound' }), {})))
      .toEqual(CAPABILITY_NAMES.filter(n => n !== 'relay' && n !== 'proxy').sort())
    expect(enabledCapabilities('full', ALL, { proxy: true }).has('proxy')).toBe(true)
    for (const profile of ['inference', 'embedding', 'storage', 'relay'] as const) expect(profileCapabilities(profile, ALL).has('proxy')).toBe(false)
  })

  it('each other profile enables its own group', () => {
    expect(sorted(enabledCapabilities('inference', ALL, {}))).toEqual(['caching', 'inference', 'validation'])
    expect(sorted(enabledCapabilities('embedding', ALL, {}))).toEqual(['embedding'])
    expect(sorted(enabledCapabilities('storage', ALL, {}))).toEqual(['memory', 'storage'])
    expect(sorted(enabledCapabilities('relay', ALL, {}))).toEqual(['relay'])
  })

  it('unavailable capabilities are never enabled, even when toggled on', () => {
    const avail = availability({ relay: 'no inbound', storage: 'no quota' })
    expect(sorted(enabledCapabilities('relay', avail, {}))).toEqual([])
    expect(sorted(enabledCapabilities('relay', avail, { relay: true }))).toEqual([])
    expect(sorted(enabledCapabilities('storage', avail, { storage: true }))).toEqual(['memory'])
  })

  it('toggles add and remove capabilities against the profile', () => {
    expect(sorted(enabledCapabilities('embedding', ALL, { proxy: true, storage: true })))
      .toEqual(['embedding', 'proxy', 'storage'])
    expect(sorted(enabledCapabilities('inference', ALL, { caching: false, validation: false })))
      .toEqual(['inference'])
    expect(sorted(enabledCapabilities('full', ALL, { inference: false, proxy: false, relay: true })))
      .toEqual(CAPABILITY_NAMES.filter(n => n !== 'inference' && n !== 'proxy').sort())
  })

  it('property: enabled is profile ∪ toggled-on − toggled-off, within what is available', () => {
    const capability = fc.constantFrom(...CAPABILITY_NAMES)
    fc.assert(fc.property(
      fc.constantFrom(...PROFILE_NAMES),
      fc.uniqueArray(capability),
      fc.dictionary(capability, fc.boolean()),
      (profile, unavailableNames, toggles) => {
        const avail = availability(Object.fromEntries(unavailableNames.map(n => [n, 'no'])))
        const enabled = enabledCapabilities(profile, avail, toggles)
        const base = profileCapabilities(profile, avail)
        for (const name of CAPABILITY_NAMES) {
          const expected = avail[name].available && toggles[name] !== false && (toggles[name] === true || base.has(name))
          expect(enabled.has(name)).toBe(expected)
        }
      }
    ))
  })
})

describe('capabilityStatuses', () => {
  it('an enabled capability with no worker says "not implemented yet"', () => {
    const statuses = capabilityStatuses(new Set(['embedding']), ALL, new Map())
    expect(statuses.embedding).toEqual({ enabled: true, available: true, working: false, reason: 'not implemented yet' })
  })

  it('an enabled capability that works has no reason', () => {
    const statuses = capabilityStatuses(new Set(['embedding']), ALL, working(['embedding']))
    expect(statuses.embedding).toEqual({ enabled: true, available: true, working: true })
  })

  it('an enabled capability whose worker reports a problem gives that reason', () => {
    const statuses = capabilityStatuses(new Set(['inference']), ALL, new Map([['inference', { available: false, reason: 'model download failed' }]]))
    expect(statuses.inference).toEqual({ enabled: true, available: true, working: false, reason: 'model download failed' })
  })

  it('an unavailable capability gives the availability reason, even when asked for', () => {
    const avail = availability({ relay: 'a browser cannot accept inbound connections' })
    const statuses = capabilityStatuses(new Set(['relay']), avail, working(['relay']))
    expect(statuses.relay).toEqual({ enabled: false, available: false, working: false, reason: 'a browser cannot accept inbound connections' })
  })

  it('a disabled, available capability has no reason and is not working', () => {
    const statuses = capabilityStatuses(new Set(), ALL, working(['proxy']))
    expect(statuses.proxy).toEqual({ enabled: false, available: true, working: false })
    expect(Object.keys(statuses)).toEqual([...CAPABILITY_NAMES])
  })
})

describe('capabilityMultiplier', () => {
  it('is 1 with nothing enabled and working', () => {
    expect(capabilityMultiplier({})).toBe(1)
    expect(capabilityMultiplier(statusesWith([]))).toBe(1)
    // Enabled but not working earns nothing.
    expect(capabilityMultiplier(capabilityStatuses(new Set(CAPABILITY_NAMES), ALL, new Map()))).toBe(1)
  })

  it('adds the weights of enabled and working capabilities', () => {
    expect(capabilityMultiplier(statusesWith(['inference', 'embedding']))).toBeCloseTo(1.17, 10)
    expect(capabilityMultiplier(statusesWith(['proxy']))).toBeCloseTo(1.10, 10)
    expect(capabilityMultiplier(statusesWith(['caching', 'relay']))).toBeCloseTo(1.06, 10)
  })

  it('ignores working capabilities that are not enabled', () => {
    expect(capabilityMultiplier({ inference: { enabled: false, available: true, working: true } })).toBe(1)
    expect(capabilityMultiplier({ inference: { enabled: true, available: true, working: false } })).toBe(1)
  })

  it('is 1.49 with everything working, and never more', () => {
    const sum = CAPABILITY_NAMES.reduce((s, n) => s + CAPABILITY_WEIGHTS[n], 0)
    expect(sum).toBeCloseTo(0.49, 10)
    expect(capabilityMultiplier(statusesWith(CAPABILITY_NAMES))).toBe(1.49)
    fc.assert(fc.property(fc.subarray([...CAPABILITY_NAMES]), names => {
      const m = capabilityMultiplier(statusesWith(names))
      expect(m).toBeGreaterThanOrEqual(1)
      expect(m).toBeLessThanOrEqual(1.49)
      expect(m).toBeCloseTo(1 + names.reduce((s, n) => s + CAPABILITY_WEIGHTS[n], 0), 10)
    }))
  })
})

describe('what could earn more', () => {
  it('idle: available and off, the best earners first; unavailable ones are never offered', () => {
    const avail = availability({ relay: 'no inbound', proxy: 'not implemented yet', orchestration: 'not implemented yet' })
    const statuses = capabilityStatuses(new Set(['embedding', 'validation']), avail, working(['embedding', 'validation']))
    expect(idleCapabilities(statuses)).toEqual(['inference', 'storage', 'memory', 'caching'])
    expect(idleCapabilities(capabilityStatuses(new Set(CAPABILITY_NAMES), avail, new Map()))).toEqual([])
  })

  it('idle on the storage profile in a tab: inference first, the capability that could earn most', () => {
    const tab = availability({ relay: 'no inbound', proxy: 'not implemented yet', orchestration: 'not implemented yet' })
    const statuses = capabilityStatuses(enabledCapabilities('storage', tab, {}), tab, working(CAPABILITY_NAMES))
    expect(idleCapabilities(statuses)).toEqual(['inference', 'embedding', 'validation', 'caching'])
  })

  it('the opt-in proxy is never offered as idle, even where it could run', () => {
    const statuses = capabilityStatuses(enabledCapabilities('storage', ALL, {}), ALL, working(CAPABILITY_NAMES))
    expect(idleCapabilities(statuses)).not.toContain('proxy')
  })

  it('stalled: on and not working, each with its reason', () => {
    const statuses = capabilityStatuses(new Set(['inference', 'embedding', 'storage']), ALL, new Map([
      ['inference', { available: false, reason: 'no model loaded: pull one under Models' }],
      ['embedding', { available: true }]
    ]))
    expect(stalledCapabilities(statuses)).toEqual([
      { name: 'inference', reason: 'no model loaded: pull one under Models' },
      { name: 'storage', reason: 'not implemented yet' }
    ])
    expect(stalledCapabilities(statusesWith(['inference']))).toEqual([])
  })
})

describe('pulledModelServing', () => {
  it('inference on: a pulled chat model is served', () => {
    expect(pulledModelServing({ enabled: true, available: true, working: false, reason: 'no model loaded' })).toEqual({ kind: 'served' })
  })

  it('inference off: the pull turns it on', () => {
    expect(pulledModelServing({ enabled: false, available: true, working: false })).toEqual({ kind: 'turns-inference-on' })
  })

  it('inference unavailable: not served, and why', () => {
    expect(pulledModelServing({ enabled: false, available: false, working: false, reason: 'no engine runs here' }))
      .toEqual({ kind: 'not-served', reason: 'inference is unavailable here: no engine runs here' })
  })
})
