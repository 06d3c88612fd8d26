/** Unsigned LEB128 varints, as libp2p writes length prefixes and kad-dht its provider times. */

export function encodeVarint (value: number): Uint8Array {
  const bytes: number[] = []
  let rest = value
  while (rest >= 0x80) {
    bytes.push((rest % 128) | 0x80)
    rest = Math.floor(rest / 128)
  }
  bytes.push(rest)
  return Uint8Array.from(bytes)
}

/** The varint at the start of `bytes` (its last byte, if the varint runs on past it). */
export function decodeVarint (bytes: Uint8Array): number {
  let value = 0
  let scale = 1
  for (const byte of bytes) {
    value += (byte & 0x7f) * scale
    if (byte < 0x80) return value
    scale *= 128
  }
  return value
}
