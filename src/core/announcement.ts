import { CAPABILITY_NAMES, isCapabilityName, isProfileName, type CapabilityName, type CapabilityStatusMap, type ProfileName } from './capabilities.ts'
import { decodeMessage, encodeMessage } from './cbor.ts'
import { MalformedMessageError } from './errors.ts'

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
}

export const ANNOUNCEMENT_VERSION = 1
export const ANNOUNCEMENT_MAX_BYTES = 4096
export const ANNOUNCEMENT_MAX_ADDRS = 8
const MAX_ADDR_LENGTH = 400
/** Announcements older or further in the future than this are stale and ignored. */
export const ANNOUNCEMENT_MAX_SKEW_MS = 5 * 60_000

export function announcementFromStatuses (profile: ProfileName, statuses: CapabilityStatusMap, addrs: string[], now: number): CapabilityAnnouncement {
  const capabilities: CapabilityAnnouncement['capabilities'] = {}
  for (const name of CAPABILITY_NAMES) {
    if (statuses[name].enabled) capabilities[name] = { working: statuses[name].working }
  }
  return { timestamp: now, profile, capabilities, addrs: addrs.filter(a => a.length <= MAX_ADDR_LENGTH).slice(0, ANNOUNCEMENT_MAX_ADDRS) }
}

export function encodeAnnouncement (a: CapabilityAnnouncement): Uint8Array {
  const enabled = CAPABILITY_NAMES.filter(name => a.capabilities[name] !== undefined)
  return encodeMessage({
    v: ANNOUNCEMENT_VERSION,
    ts: a.timestamp,
    profile: a.profile,
    caps: enabled,
    working: enabled.filter(name => a.capabilities[name]?.working === true),
    addrs: a.addrs
  })
}

function capabilityList (value: unknown, field: string): CapabilityName[] {
  if (!Array.isArray(value) || value.length > CAPABILITY_NAMES.length || !value.every(isCapabilityName)) {
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
  for (const name of caps) capabilities[name] = { working: working.includes(name) }
  const addrs = record.addrs
  if (!Array.isArray(addrs) || addrs.length > ANNOUNCEMENT_MAX_ADDRS ||
    !addrs.every(a => typeof a === 'string' && a.startsWith('/') && a.length <= MAX_ADDR_LENGTH)) {
    throw new MalformedMessageError(`addrs must be at most ${ANNOUNCEMENT_MAX_ADDRS} multiaddr strings`)
  }
  return { timestamp: ts, profile, capabilities, addrs }
}

export function isStale (timestamp: number, now: number): boolean {
  return Math.abs(now - timestamp) > ANNOUNCEMENT_MAX_SKEW_MS
}
