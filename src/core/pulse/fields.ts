import { isCapabilityName, type CapabilityName } from '../capabilities.ts'
import { MalformedMessageError } from '../errors.ts'

/** Field checks shared by the strict decoders of signed pulse data: each throws MalformedMessageError. */

const PEER_ID = /^[1-9A-HJ-NP-Za-km-z]{40,60}$/

export function fail (what: string): never {
  throw new MalformedMessageError(what)
}

export function bytesField (value: unknown, name: string, length?: number, max = 4096): Uint8Array {
  if (!(value instanceof Uint8Array)) fail(`${name} must be bytes`)
  if (length !== undefined && value.byteLength !== length) fail(`${name} must be ${length} bytes`)
  if (value.byteLength > max) fail(`${name} is too long`)
  return value
}

export function uintField (value: unknown, name: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > max) fail(`${name} must be an integer in [0, ${max}]`)
  return value
}

export function peerField (value: unknown, name: string): string {
  if (typeof value !== 'string' || !PEER_ID.test(value)) fail(`${name} must be a peer id`)
  return value
}

export function capsField (value: unknown): CapabilityName[] {
  if (!Array.isArray(value) || value.length > 9 || !value.every(isCapabilityName) || new Set(value).size !== value.length) {
    fail('caps must be distinct capability names')
  }
  return value
}

export function listField (value: unknown, name: string, max: number): unknown[] {
  if (!Array.isArray(value) || value.length > max) fail(`${name} must be a list of at most ${max}`)
  return value
}

export function mapField (value: unknown, name: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) fail(`${name} must be a map`)
  return value as Record<string, unknown>
}
