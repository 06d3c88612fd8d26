import { CAPABILITY_NAMES, isCapabilityName, isProfileName, type CapabilityName, type CapabilityStatusMap, type ProfileName } from '../capabilities.ts'
import { decodeMessage, encodeMessage } from './cbor.ts'
import { MalformedMessageError } from '../errors.ts'

/**
 * What a node tells the network it offers and where to reach it, on the capabilities topic. The
 * sender is the gossip message's signer (StrictSign), so the body carries no peer id of its own and
 * a node can only speak for its own addresses.
 */
export interface CapabilityAnnouncement {
  timestamp: number
  profile: ProfileName
  /** Enabled capabilities, each with whether it actually works right now. */
  capabilities: Partial<Record<CapabilityName, { working: boolean }>>
  /** Multiaddrs the node is dialable on (relay circuit and WebRTC addresses). */
  addrs: string[]
  /** The chat models it serves and how loaded it is, when it serves inference. */
  serving?: ServingState
}

export interface ServingState {
  models: string[]
  /** Jobs running or waiting. */
  queue: number
  /** Jobs it runs at once. */
  slots: number
}

export const ANNOUNCEMENT_VERSION = 1
export const ANNOUNCEMENT_MAX_BYTES = 4096
export const ANNOUNCEMENT_MAX_ADDRS = 8
const MAX_ADDR_LENGTH = 400
export const ANNOUNCEMENT_MAX_MODELS = 16
const MAX_MODEL_ID_LENGTH = 128
const MAX_SLOTS = 64
/** Announcements older or further in the future than this are stale and ignored. */
export const ANNOUNCEMENT_MAX_SKEW_MS = 5 * 60_000

/** Capabilities that serve other peers when working; inference serves once it names models (`serving`). */
const SERVING_CAPABILITIES: readonly CapabilityName[] = ['embedding', 'storage', 'memory', 'proxy']

/** Whether the announcement says its node serves something now: a chat model, embeddings, storage, memory or proxy. */
export function servesSomething (a: CapabilityAnnouncement): boolean {
  return a.serving !== undefined || SERVING_CAPABILITIES.some(name => a.capabilities[name]?.working === true)
}

export function announcementFromStatuses (profile: ProfileName, statuses: CapabilityStatusMap, addrs: string[], now: number, serving?: ServingState): CapabilityAnnouncement {
  const capabilities: CapabilityAnnouncement['capabilities'] = {}
  for (const name of CAPABILITY_NAMES) {
    if (statuses[name].enabled) capabilities[name] = { working: statuses[name].working }
  }
  const announcement: CapabilityAnnouncement = { timestamp: now, profile, capabilities, addrs: addrs.filter(a => a.length <= MAX_ADDR_LENGTH).slice(0, ANNOUNCEMENT_MAX_ADDRS) }
  if (serving !== undefined && serving.models.length > 0 && statuses.inference.working) {
    announcement.serving = {
      models: serving.models.filter(m => m.length <= MAX_MODEL_ID_LENGTH).slice(0, ANNOUNCEMENT_MAX_MODELS),
      queue: serving.queue,
      slots: Math.min(serving.slots, MAX_SLOTS)
    }
  }
  return announcement
}

export function encodeAnnouncement (a: CapabilityAnnouncement): Uint8Array {
  const enabled = CAPABILITY_NAMES.filter(name => a.capabilities[name] !== undefined)
  return encodeMessage({
    v: ANNOUNCEMENT_VERSION,
    ts: a.timestamp,
    profile: a.profile,
    caps: enabled,
    working: enabled.filter(name => a.capabilities[name]?.working === true),
    addrs: a.addrs,
    ...(a.serving !== undefined ? { models: a.serving.models, queue: a.serving.queue, slots: a.serving.slots } : {})
  })
}

function servingOf (record: Record<string, unknown>, capabilities: CapabilityAnnouncement['capabilities']): ServingState | undefined {
  const { models, queue, slots } = record
  if (models === undefined && queue === undefined && slots === undefined) return undefined
  if (capabilities.inference === undefined) throw new MalformedMessageError('models are announced without the inference capability')
  if (!Array.isArray(models) || models.length === 0 || models.length > ANNOUNCEMENT_MAX_MODELS ||
    !models.every(m => typeof m === 'string' && m.length > 0 && m.length <= MAX_MODEL_ID_LENGTH)) {
    throw new MalformedMessageError(`models must be 1 to ${ANNOUNCEMENT_MAX_MODELS} model ids`)
  }
  if (typeof queue !== 'number' || !Number.isSafeInteger(queue) || queue < 0) throw new MalformedMessageError('queue must be a count')
  if (typeof slots !== 'number' || !Number.isSafeInteger(slots) || slots < 1 || slots > MAX_SLOTS) throw new MalformedMessageError(`slots must be 1 to ${MAX_SLOTS}`)
  return { models, queue, slots }
}

/**
 * A capability name as any release may write it. A newer release adds capabilities: their names are
 * dropped here rather than refused, since a refused message counts towards disconnecting its sender,
 * and nodes of two releases must not ban each other.
 */
const CAPABILITY_NAME_SHAPE = /^[a-z][a-z0-9-]{0,31}$/
const MAX_LISTED_CAPABILITIES = 32

function capabilityList (value: unknown, field: string): string[] {
  if (!Array.isArray(value) || value.length > MAX_LISTED_CAPABILITIES || !value.every(name => typeof name === 'string' && CAPABILITY_NAME_SHAPE.test(name))) {
    throw new MalformedMessageError(`${field} must be a list of capability names`)
  }
  if (new Set(value).size !== value.length) throw new MalformedMessageError(`${field} repeats a capability`)
  return value
}

export function decodeAnnouncement (bytes: Uint8Array): CapabilityAnnouncement {
  const record = decodeMessage(bytes, ANNOUNCEMENT_MAX_BYTES, ANNOUNCEMENT_VERSION)
  const { ts, profile } = record
  if (typeof ts !== 'number' || !Number.isSafeInteger(ts) || ts < 0) throw new MalformedMessageError('ts must be a timestamp in ms')
  if (!isProfileName(profile)) throw new MalformedMessageError('profile is not a known profile')
  const caps = capabilityList(record.caps, 'caps')
  const working = capabilityList(record.working, 'working')
  if (!working.every(name => caps.includes(name))) throw new MalformedMessageError('working names a capability that is not enabled')
  const capabilities: CapabilityAnnouncement['capabilities'] = {}
  for (const name of caps.filter(isCapabilityName)) capabilities[name] = { working: working.includes(name) }
  const addrs = record.addrs
  if (!Array.isArray(addrs) || addrs.length > ANNOUNCEMENT_MAX_ADDRS ||
    !addrs.every(a => typeof a === 'string' && a.startsWith('/') && a.length <= MAX_ADDR_LENGTH)) {
    throw new MalformedMessageError(`addrs must be at most ${ANNOUNCEMENT_MAX_ADDRS} multiaddr strings`)
  }
  const serving = servingOf(record, capabilities)
  return serving === undefined ? { timestamp: ts, profile, capabilities, addrs } : { timestamp: ts, profile, capabilities, addrs, serving }
}

export function isStale (timestamp: number, now: number): boolean {
  return Math.abs(now - timestamp) > ANNOUNCEMENT_MAX_SKEW_MS
}
