import { MalformedMessageError } from '../errors.ts'

/**
 * The field checks every job protocol's decoder makes of a CBOR frame from a peer: bytes of a bounded
 * (or exact) length, bounded text, a whole number in a range. Each throws MalformedMessageError
 * naming the field.
 */

export function bytesOf (value: unknown, field: string, max: number, exact?: number): Uint8Array {
  if (!(value instanceof Uint8Array) || value.byteLength > max || (exact !== undefined && value.byteLength !== exact)) {
    throw new MalformedMessageError(`${field} must be ${exact ?? `at most ${max}`} bytes`)
  }
  return value
}

export function textOf (value: unknown, field: string, max: number): string {
  if (typeof value !== 'string' || value.length > max) throw new MalformedMessageError(`${field} must be text of at most ${max} characters`)
  return value
}

export function uintOf (value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) throw new MalformedMessageError(`${field} must be a whole number from ${min} to ${max}`)
  return value
}
