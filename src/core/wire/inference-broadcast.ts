import { decodeMessage, encodeMessage } from './cbor.ts'
import { MalformedMessageError } from '../errors.ts'
import { isModelId } from '../inference/request.ts'

/**
 * The third routing tier: a request for a model on the inference topic, and offers from the peers
 * that serve it. The first offers win; the job itself then goes over the inference protocol.
 */
export type BroadcastMessage =
  | { t: 'want', id: Uint8Array, model: string, ts: number }
  | { t: 'offer', id: Uint8Array, model: string, queue: number, slots: number, ts: number }

export const BROADCAST_VERSION = 1
export const BROADCAST_MAX_BYTES = 512
/** Wants and offers are only worth anything for a few seconds. */
export const BROADCAST_MAX_SKEW_MS = 30_000

export function encodeBroadcast (m: BroadcastMessage): Uint8Array {
  return encodeMessage({ v: BROADCAST_VERSION, ...m })
}

function count (value: unknown, field: string, min = 0): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) throw new MalformedMessageError(`${field} must be an integer ≥ ${min}`)
  return value
}

export function decodeBroadcast (bytes: Uint8Array): BroadcastMessage {
  const m = decodeMessage(bytes, BROADCAST_MAX_BYTES, BROADCAST_VERSION)
  if (!(m.id instanceof Uint8Array) || m.id.byteLength !== 16) throw new MalformedMessageError('id must be 16 bytes')
  if (!isModelId(m.model)) throw new MalformedMessageError('model must be a model id')
  const ts = count(m.ts, 'ts')
  if (m.t === 'want') return { t: 'want', id: m.id, model: m.model, ts }
  if (m.t === 'offer') return { t: 'offer', id: m.id, model: m.model, queue: count(m.queue, 'queue'), slots: count(m.slots, 'slots', 1), ts }
  throw new MalformedMessageError('t must be want or offer')
}

export function isStaleBroadcast (ts: number, now: number): boolean {
  return Math.abs(now - ts) > BROADCAST_MAX_SKEW_MS
}
