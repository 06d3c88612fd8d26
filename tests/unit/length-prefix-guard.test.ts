import { describe, expect, it } from 'vitest'
import { LengthPrefixGuard } from '../../src/core/wire/length-prefix-guard.ts'
import { framedMessages as messages, varint } from './length-prefixed.ts'

const MAX = 1000

/** Feeds `bytes` cut at `cuts` (sorted offsets); the result of each take, in order. */
function feed (guard: LengthPrefixGuard, bytes: Uint8Array, cuts: number[]): boolean[] {
  const ends = [...cuts, bytes.length]
  return ends.map((end, i) => guard.take(bytes.subarray(i === 0 ? 0 : ends[i - 1], end)))
}

const HONEST = messages([0, 1, 127, 128, 300, MAX, 5, 0])

describe('LengthPrefixGuard', () => {
  it('follows messages of every size up to the bound, many in one chunk', () => {
    expect(new LengthPrefixGuard(MAX).take(HONEST)).toBe(true)
  })

  it('follows them split at any point, prefixes included', () => {
    for (let cut = 1; cut < HONEST.length; cut++) expect(feed(new LengthPrefixGuard(MAX), HONEST, [cut])).toEqual([true, true])
    for (let a = 1; a < 140; a++) {
      for (let b = a + 1; b < 140; b++) expect(feed(new LengthPrefixGuard(MAX), HONEST, [a, b])).toEqual([true, true, true])
    }
    const guard = new LengthPrefixGuard(MAX)
    for (const byte of HONEST) expect(guard.take(Uint8Array.of(byte))).toBe(true)
  })

  it('takes empty chunks', () => {
    const guard = new LengthPrefixGuard(MAX)
    expect(guard.take(new Uint8Array(0))).toBe(true)
    expect(guard.take(HONEST)).toBe(true)
  })

  it('refuses a length over the bound as soon as its prefix is complete, wherever it is split', () => {
    const oversize = varint(MAX + 1)
    const prefixEnd = HONEST.length + oversize.length
    const attack = Uint8Array.from([...HONEST, ...oversize, ...Array<number>(10).fill(0)])
    for (let cut = 1; cut < attack.length; cut++) expect(feed(new LengthPrefixGuard(MAX), attack, [cut])).toEqual([cut < prefixEnd, false])
  })

  it('refuses a length prefix longer than any length within the bound needs', () => {
    // MAX needs 2 bytes: a second that says a third follows is refused, even where the prefix would declare little (a non-minimal 0).
    expect(new LengthPrefixGuard(MAX).take(Uint8Array.of(0x80, 0x80, 0x00))).toBe(false)
    const guard = new LengthPrefixGuard(MAX)
    expect(guard.take(Uint8Array.of(0x80))).toBe(true)
    expect(guard.take(Uint8Array.of(0x80))).toBe(false)
  })

  it('stays refused: nothing after an oversize prefix is taken', () => {
    const guard = new LengthPrefixGuard(MAX)
    expect(guard.take(Uint8Array.from(varint(2 ** 30)))).toBe(false)
    expect(guard.take(messages([1]))).toBe(false)
  })

  it('bounds at exactly its limit', () => {
    expect(new LengthPrefixGuard(MAX).take(Uint8Array.from(varint(MAX)))).toBe(true)
    expect(new LengthPrefixGuard(MAX).take(Uint8Array.from(varint(MAX + 1)))).toBe(false)
    expect(new LengthPrefixGuard(127).take(Uint8Array.of(0x80))).toBe(false)
  })
})
