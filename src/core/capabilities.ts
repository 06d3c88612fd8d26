/** Capabilities, their point weights and the profiles that group them (DESIGN sections 2 and 6). */

export const CAPABILITY_NAMES = [
  'inference', 'embedding', 'storage', 'memory', 'relay',
  'validation', 'orchestration', 'caching', 'proxy'
] as const

export type CapabilityName = typeof CAPABILITY_NAMES[number]

export const CAPABILITY_WEIGHTS: Readonly<Record<CapabilityName, number>> = {
  inference: 0.12,
  proxy: 0.10,
  embedding: 0.05,
  storage: 0.05,
  memory: 0.05,
  relay: 0.04,
  validation: 0.03,
  orchestration: 0.03,
  caching: 0.02
}

/**
 * How validators observe a claimed capability before they confirm it for the points bonus
 * (docs/protocol.md, "Capability spot-checks"). A claim earns only what someone else can see:
 * - `probe`: a small real job sent to the peer at rounds drawn from the seed (a few tokens of a model
 *   it announces, one embedding, a block request, a memory query);
 * - `with-inference`: caching serves answers of the inference it caches, so it stands or falls with
 *   inference (and the node itself counts it working only while it answers from the cache);
 * - `verdicts`: validation is seen in the pulse itself, as a verdict the peer published;
 * - `none`: nothing a validator can check from a browser node: relay (browsers cannot relay, and the
 *   Node relay does not commit), orchestration (not built) and proxy (not spot-checked yet: a check
 *   needs a target every validator may make a peer fetch and whose answer it can verify, and no such
 *   target exists yet, docs/protocol.md "Proxy"). These earn no bonus.
 */
export type CapabilityCheck = 'probe' | 'with-inference' | 'verdicts' | 'none'

export const CAPABILITY_CHECKS: Readonly<Record<CapabilityName, CapabilityCheck>> = {
  inference: 'probe',
  embedding: 'probe',
  storage: 'probe',
  memory: 'probe',
  caching: 'with-inference',
  validation: 'verdicts',
  relay: 'none',
  orchestration: 'none',
  proxy: 'none'
}

/** The capabilities a validator checks with a real job. */
export const PROBED_CAPABILITIES: readonly CapabilityName[] = CAPABILITY_NAMES.filter(name => CAPABILITY_CHECKS[name] === 'probe')

export const PROFILE_NAMES = ['full', 'inference', 'embedding', 'storage', 'relay'] as const
export type ProfileName = typeof PROFILE_NAMES[number]

const PROFILE_CAPABILITIES: Readonly<Record<Exclude<ProfileName, 'full'>, readonly CapabilityName[]>> = {
  inference: ['inference', 'validation', 'caching'],
  embedding: ['embedding'],
  storage: ['storage', 'memory'],
  relay: ['relay']
}

export function isCapabilityName (value: unknown): value is CapabilityName {
  return typeof value === 'string' && (CAPABILITY_NAMES as readonly string[]).includes(value)
}

export function isProfileName (value: unknown): value is ProfileName {
  return typeof value === 'string' && (PROFILE_NAMES as readonly string[]).includes(value)
}

/** What the device can run: a capability is available or unavailable with a reason a person can act on. */
export interface Availability {
  available: boolean
  reason?: string
}

export type AvailabilityMap = Record<CapabilityName, Availability>

/**
 * Capabilities no profile turns on: only the user does. A proxy fetches other people's URLs over the
 * user's connection, from the user's address; that is theirs to offer, not a default's.
 */
export const OPT_IN_CAPABILITIES: readonly CapabilityName[] = ['proxy']

/** The capabilities a profile turns on, restricted to those the device can run. */
export function profileCapabilities (profile: ProfileName, availability: AvailabilityMap): Set<CapabilityName> {
  const wanted = profile === 'full' ? CAPABILITY_NAMES.filter(name => !OPT_IN_CAPABILITIES.includes(name)) : PROFILE_CAPABILITIES[profile]
  return new Set(wanted.filter(name => availability[name].available))
}

export interface CapabilityStatus {
  enabled: boolean
  available: boolean
  working: boolean
  reason?: string
}

export type CapabilityStatusMap = Record<CapabilityName, CapabilityStatus>

/**
 * The per-capability state shown to users and announced to peers. `working` is what the node actually
 * does right now; the reason says why an enabled capability is not working, or why one is unavailable.
 */
export function capabilityStatuses (
  enabled: ReadonlySet<CapabilityName>,
  availability: AvailabilityMap,
  working: ReadonlyMap<CapabilityName, Availability>
): CapabilityStatusMap {
  const result = {} as CapabilityStatusMap
  for (const name of CAPABILITY_NAMES) {
    const avail = availability[name]
    const isEnabled = avail.available && enabled.has(name)
    const work = working.get(name) ?? { available: false, reason: 'not implemented yet' }
    const status: CapabilityStatus = { enabled: isEnabled, available: avail.available, working: isEnabled && work.available }
    const reason = !avail.available ? avail.reason : (isEnabled && !work.available ? work.reason : undefined)
    if (reason !== undefined) status.reason = reason
    result[name] = status
  }
  return result
}

/** Capability bonus for points: 1 + weights of the given (enabled, working) capabilities, capped at 1.49. */
export function multiplierOf (names: Iterable<CapabilityName>): number {
  let sum = 0
  for (const name of new Set(names)) sum += CAPABILITY_WEIGHTS[name]
  return Math.min(1.49, 1 + sum)
}

export function workingCapabilities (statuses: Partial<CapabilityStatusMap>): CapabilityName[] {
  return CAPABILITY_NAMES.filter(name => statuses[name]?.enabled === true && statuses[name].working)
}

export function capabilityMultiplier (statuses: Partial<CapabilityStatusMap>): number {
  return multiplierOf(workingCapabilities(statuses))
}

/** The profile's capabilities with the user's switches applied; unavailable ones stay off. */
export function enabledCapabilities (
  profile: ProfileName,
  availability: AvailabilityMap,
  toggles: Partial<Record<CapabilityName, boolean>>
): Set<CapabilityName> {
  const enabled = profileCapabilities(profile, availability)
  for (const name of CAPABILITY_NAMES) {
    const toggle = toggles[name]
    if (toggle === true && availability[name].available) enabled.add(name)
    if (toggle === false) enabled.delete(name)
  }
  return enabled
}

/**
 * The capabilities that are off although this device could run them, the best earners first: what
 * "Why am I earning nothing?" offers to turn on. Opt-in capabilities are not offered: turning them on
 * is a choice the user makes where they are explained (the Proxy panel), not a way to earn more.
 */
export function idleCapabilities (statuses: CapabilityStatusMap): CapabilityName[] {
  return CAPABILITY_NAMES
    .filter(name => statuses[name].available && !statuses[name].enabled && !OPT_IN_CAPABILITIES.includes(name))
    .sort((a, b) => CAPABILITY_WEIGHTS[b] - CAPABILITY_WEIGHTS[a])
}

/** The capabilities that are on but do not work, each with why: they earn nothing until fixed. */
export function stalledCapabilities (statuses: CapabilityStatusMap): Array<{ name: CapabilityName, reason: string }> {
  return CAPABILITY_NAMES
    .filter(name => statuses[name].enabled && !statuses[name].working)
    .map(name => ({ name, reason: statuses[name].reason ?? 'unknown reason' }))
}

/**
 * What becomes of a chat model once pulled, given the inference capability: it is served; or
 * inference is off and the pull turns it on (pulling a chat model is asking to serve it); or this
 * device cannot serve, and the model is kept for local chat only.
 */
export type PulledModelServing =
  | { kind: 'served' }
  | { kind: 'turns-inference-on' }
  | { kind: 'not-served', reason: string }

export function pulledModelServing (inference: CapabilityStatus): PulledModelServing {
  if (!inference.available) return { kind: 'not-served', reason: `inference is unavailable here: ${inference.reason ?? 'unknown reason'}` }
  return inference.enabled ? { kind: 'served' } : { kind: 'turns-inference-on' }
}
