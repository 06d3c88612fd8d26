import { sha256 } from './sha256.ts'

const encoder = new TextEncoder()

/** UTF-8 bytes of a string; peer ids (base58, so ASCII) take a path that skips the native encoder's call cost. */
export function utf8 (text: string): Uint8Array {
  const out = new Uint8Array(text.length)
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code >= 0x80) return encoder.encode(text)
    out[i] = code
  }
  return out
}

export function concat (...parts: Uint8Array[]): Uint8Array {
  return concatAll(parts)
}

/** The parts one after another in a new array; takes a list of any length (concat spreads its arguments). */
export function concatAll (parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.byteLength, 0))
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.byteLength
  }
  return out
}

/**
 * `bytes`, or a copy of them when their buffer holds more than `slackBytes` besides them: a view keeps
 * its whole buffer alive, IndexedDB stores all of it, and `.buffer` hands all of it on.
 */
export function compacted (bytes: Uint8Array, slackBytes = 0): Uint8Array {
  return bytes.buffer.byteLength - bytes.byteLength <= slackBytes ? bytes : bytes.slice()
}

export function u32be (value: number): Uint8Array {
  const out = new Uint8Array(4)
  new DataView(out.buffer).setUint32(0, value >>> 0)
  return out
}

/** 64-bit big-endian; round numbers exceed 2^32 for short rounds. */
export function u64be (value: number): Uint8Array {
  const out = new Uint8Array(8)
  new DataView(out.buffer).setBigUint64(0, BigInt(value))
  return out
}

export function readU32be (bytes: Uint8Array, offset = 0): number {
  if (offset < 0 || offset + 4 > bytes.byteLength) throw new RangeError(`no u32 at ${offset} of ${bytes.byteLength} bytes`)
  return (((bytes[offset] as number) << 24) | ((bytes[offset + 1] as number) << 16) | ((bytes[offset + 2] as number) << 8) | (bytes[offset + 3] as number)) >>> 0
}

/** SHA-256 of the concatenation of `parts`. */
export function sha256Of (...parts: Uint8Array[]): Uint8Array {
  return sha256(parts)
}

/**
 * Byte equality, four bytes at a time where both views share an alignment: the canonical-CBOR check
 * compares every received block frame (a MiB) with its re-encoding, 5× faster so in Chromium.
 */
export function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  let i = 0
  if (a.byteLength >= 64 && a.byteOffset % 4 === b.byteOffset % 4) {
    for (; (a.byteOffset + i) % 4 !== 0; i++) if (a[i] !== b[i]) return false
    const words = (a.byteLength - i) >>> 2
    const wa = new Uint32Array(a.buffer, a.byteOffset + i, words)
    const wb = new Uint32Array(b.buffer, b.byteOffset + i, words)
    for (let w = 0; w < words; w++) if (wa[w] !== wb[w]) return false
    i += words * 4
  }
  for (; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}

/** Lexicographic order of byte strings (for leader scores). */
export function compareBytes (a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.byteLength, b.byteLength)
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number)
    if (d !== 0) return d
  }
  return a.byteLength - b.byteLength
}

export function toHex (bytes: Uint8Array): string {
  let out = ''
  for (const b of bytes) out += b.toString(16).padStart(2, '0')
  return out
}
