/**
 * Follows a stream of messages framed by unsigned-varint length prefixes (libp2p's lpStream) as its
 * bytes arrive, in chunks cut anywhere, and tells when one declares more than `maxMessageBytes`: as
 * soon as its prefix is complete, before any of its body has come. A reader that trusts the prefix
 * (kad-dht's) would otherwise keep the whole body in memory.
 */
export class LengthPrefixGuard {
  /** Body bytes of the current message not received yet; 0 while a prefix is read. */
  private bodyLeft = 0
  private prefixValue = 0
  private prefixBytes = 0
  /** The most bytes a prefix of a length within the bound takes (lpStream's `maxLengthLength`). */
  private readonly maxPrefixBytes: number
  private refused = false

  constructor (private readonly maxMessageBytes: number) {
    let bytes = 1
    for (let rest = maxMessageBytes; rest >= 0x80; rest = Math.floor(rest / 128)) bytes++
    this.maxPrefixBytes = bytes
  }

  /**
   * Takes the next bytes received. False once a message declared more than the bound, or a prefix
   * ran longer than any length within it needs (a non-minimal varint too), and from then on.
   */
  take (bytes: Uint8Array): boolean {
    let at = 0
    while (!this.refused && at < bytes.length) {
      if (this.bodyLeft > 0) {
        const skipped = Math.min(this.bodyLeft, bytes.length - at)
        this.bodyLeft -= skipped
        at += skipped
        continue
      }
      const byte = bytes[at++] ?? 0
      this.prefixValue += (byte & 0x7f) * 2 ** (7 * this.prefixBytes)
      this.prefixBytes++
      if (byte >= 0x80) {
        this.refused = this.prefixBytes >= this.maxPrefixBytes
        continue
      }
      this.refused = this.prefixValue > this.maxMessageBytes
      this.bodyLeft = this.prefixValue
      this.prefixValue = 0
      this.prefixBytes = 0
    }
    return !this.refused
  }
}
