import { generateKeyPair } from '@libp2p/crypto/keys'
import { TopicValidatorResult, type Message } from '@libp2p/gossipsub'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { encode } from 'cborg'
import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  ANNOUNCEMENT_MAX_ADDRS,
  ANNOUNCEMENT_MAX_BYTES,
  ANNOUNCEMENT_MAX_SKEW_MS,
  announcementFromStatuses,
  decodeAnnouncement,
  encodeAnnouncement,
  isStale,
  type CapabilityAnnouncement
} from '../../src/core/wire/announcement.ts'
import { CAPABILITY_NAMES, PROFILE_NAMES, capabilityStatuses, type AvailabilityMap } from '../../src/core/capabilities.ts'
import { decodeMessage } from '../../src/core/wire/cbor.ts'
import {
  HyperspaceError,
  MalformedMessageError,
  OversizeMessageError,
  UnsupportedVersionError
} from '../../src/core/errors.ts'
import { validateAnnouncement } from '../../src/net/capability-gossip.ts'
import { errorOf, expectRefusedCleanly } from './fixtures.ts'

// ---- a minimal hand-written CBOR encoder, so tests control every byte ----

function head (major: number, n: number): number[] {
  const m = major << 5
  if (n < 24) return [m | n]
  if (n < 0x100) return [m | 24, n]
  if (n < 0x10000) return [m | 25, n >> 8, n & 0xff]
  if (n < 0x100000000) return [m | 26, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]
  throw new RangeError('use uint64 for values of 2^32 and above')
}

const uint = (n: number): number[] => head(0, n)
const tstr = (s: string): number[] => {
  const bytes = [...new TextEncoder().encode(s)]
  return [...head(3, bytes.length), ...bytes]
}
const arr = (...items: number[][]): number[] => [...head(4, items.length), ...items.flat()]
const map = (...entries: Array<[string, number[]]>): number[] =>
  [...head(5, entries.length), ...entries.flatMap(([k, v]) => [...tstr(k), ...v])]
const float64 = (x: number): number[] => {
  const view = new DataView(new ArrayBuffer(8))
  view.setFloat64(0, x)
  return [0xfb, ...new Uint8Array(view.buffer)]
}
const bytes = (b: number[]): Uint8Array => new Uint8Array(b)

const TS = 1_700_000_000_000

const ADDR = '/ip4/1.2.3.4/tcp/4002/ws/p2p/12D3KooWQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQAA/p2p-circuit'

/** Canonical field order (length-first, then bytewise): v, ts, caps, addrs, profile, working. */
function canonicalFields (overrides: Partial<Record<'v' | 'ts' | 'caps' | 'addrs' | 'profile' | 'working', number[]>> = {}): Array<[string, number[]]> {
  return [
    ['v', overrides.v ?? uint(1)],
    ['ts', overrides.ts ?? uint64(TS)],
    ['caps', overrides.caps ?? arr(tstr('inference'), tstr('caching'))],
    ['addrs', overrides.addrs ?? arr(tstr(ADDR))],
    ['profile', overrides.profile ?? tstr('inference')],
    ['working', overrides.working ?? arr(tstr('inference'))]
  ]
}

/** A 64-bit unsigned integer (0x1b then 8 bytes big-endian), the shortest form from 2^32 on. */
function uint64 (n: number): number[] {
  const view = new DataView(new ArrayBuffer(8))
  view.setBigUint64(0, BigInt(n))
  return [0x1b, ...new Uint8Array(view.buffer)]
}

function message (overrides: Parameters<typeof canonicalFields>[0] = {}): Uint8Array {
  return bytes(map(...canonicalFields(overrides)))
}

const SAMPLE: CapabilityAnnouncement = {
  timestamp: TS,
  profile: 'inference',
  capabilities: { inference: { working: true }, caching: { working: false } },
  addrs: [ADDR]
}


function expectMalformed (input: Uint8Array | number[]): void {
  const error = errorOf(() => decodeAnnouncement(input instanceof Uint8Array ? input : bytes(input)))
  expect(error).toBeInstanceOf(MalformedMessageError)
  expect((error as MalformedMessageError).code).toBe('ERR_MALFORMED_MESSAGE')
}

describe('encodeAnnouncement / decodeAnnouncement', () => {
  it('round-trips an announcement', () => {
    expect(decodeAnnouncement(encodeAnnouncement(SAMPLE))).toEqual(SAMPLE)
    const empty: CapabilityAnnouncement = { timestamp: 0, profile: 'full', capabilities: {}, addrs: [] }
    expect(decodeAnnouncement(encodeAnnouncement(empty))).toEqual(empty)
  })

  it('encodes canonically, matching the hand-built bytes', () => {
    // cborg may hand back a Node Buffer: compare the bytes, not the class.
    expect(new Uint8Array(encodeAnnouncement(SAMPLE))).toEqual(message())
    expect(decodeAnnouncement(message())).toEqual(SAMPLE)
  })

  it('property: any valid announcement round-trips within the size limit', () => {
    const announcement = fc.record({
      timestamp: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      profile: fc.constantFrom(...PROFILE_NAMES),
      capabilities: fc.dictionary(fc.constantFrom(...CAPABILITY_NAMES), fc.record({ working: fc.boolean() })),
      addrs: fc.array(fc.string({ maxLength: 399 }).map(a => `/${a}`), { maxLength: ANNOUNCEMENT_MAX_ADDRS })
    }) as fc.Arbitrary<CapabilityAnnouncement>
    fc.assert(fc.property(announcement, a => {
      expect(decodeAnnouncement(encodeAnnouncement(a))).toEqual(a)
    }), { numRuns: 300 })
  })

  it('the largest valid announcement (every capability, 8 addresses of 400 ASCII characters) fits the size limit', () => {
    const largest: CapabilityAnnouncement = {
      timestamp: Number.MAX_SAFE_INTEGER,
      profile: 'embedding',
      capabilities: Object.fromEntries(CAPABILITY_NAMES.map(n => [n, { working: true }])),
      addrs: Array.from({ length: 8 }, (_, i) => `/${String(i).repeat(399)}`)
    }
    const encoded = encodeAnnouncement(largest)
    expect(encoded.byteLength).toBeLessThanOrEqual(ANNOUNCEMENT_MAX_BYTES)
    expect(decodeAnnouncement(encoded)).toEqual(largest)
  })

  it('announcementFromStatuses lists enabled capabilities with their working state', () => {
    const availability = Object.fromEntries(CAPABILITY_NAMES.map(n => [n, { available: n !== 'relay' }])) as AvailabilityMap
    const statuses = capabilityStatuses(new Set(['inference', 'caching', 'relay']), availability, new Map([['inference', { available: true }]]))
    expect(announcementFromStatuses('inference', statuses, [ADDR], TS)).toEqual(SAMPLE)
  })

  it('announcementFromStatuses keeps at most 8 addresses of at most 400 characters', () => {
    const availability = Object.fromEntries(CAPABILITY_NAMES.map(n => [n, { available: true }])) as AvailabilityMap
    const statuses = capabilityStatuses(new Set(), availability, new Map())
    const long = `/${'a'.repeat(400)}`
    const addrs = [long, ...Array.from({ length: 10 }, (_, i) => `/ip4/10.0.0.${i}/tcp/1/ws`)]
    const a = announcementFromStatuses('full', statuses, addrs, TS)
    expect(ANNOUNCEMENT_MAX_ADDRS).toBe(8)
    expect(a.addrs).toEqual(addrs.slice(1, 9))
    expect(a.capabilities).toEqual({})
    expect(decodeAnnouncement(encodeAnnouncement(a))).toEqual(a)
  })
})

describe('decodeAnnouncement rejects', () => {
  it('more than ANNOUNCEMENT_MAX_BYTES with OversizeMessageError, before parsing', () => {
    const limit = ANNOUNCEMENT_MAX_BYTES
    // 0xff is a stray "break": as CBOR it is malformed, so only a size check that runs first gives Oversize.
    const error = errorOf(() => decodeAnnouncement(new Uint8Array(limit + 1).fill(0xff)))
    expect(error).toBeInstanceOf(OversizeMessageError)
    expect((error as OversizeMessageError).code).toBe('ERR_OVERSIZE_MESSAGE')
    expect((error as Error).message).toBe(`Message of ${limit + 1} bytes exceeds the limit of ${limit} bytes`)
    // At the limit the parser runs and finds the garbage.
    expectMalformed(new Uint8Array(limit).fill(0xff))
  })

  it('a well-formed message padded past the limit', () => {
    const pad = ANNOUNCEMENT_MAX_BYTES
    const padded = bytes(map(...canonicalFields(), ['pad', [...head(3, pad), ...Array(pad).fill(0x61)]]))
    expect(errorOf(() => decodeAnnouncement(padded))).toBeInstanceOf(OversizeMessageError)
    // Unknown extra fields within the limit are ignored.
    expect(decodeAnnouncement(bytes(map(...canonicalFields(), ['zzzzzzzz', uint(1)])))).toEqual(SAMPLE)
  })

  it('a wrong or missing version with UnsupportedVersionError', () => {
    for (const v of [uint(2), uint(0), tstr('1'), [0xf6]]) {
      const error = errorOf(() => decodeAnnouncement(message({ v })))
      expect(error).toBeInstanceOf(UnsupportedVersionError)
      expect((error as UnsupportedVersionError).code).toBe('ERR_UNSUPPORTED_VERSION')
    }
    const missing = bytes(map(...canonicalFields().slice(1)))
    expect(errorOf(() => decodeAnnouncement(missing))).toBeInstanceOf(UnsupportedVersionError)
  })

  it('a version field that is an object with a non-callable toString', () => {
    // {"v": {"toString": 0}}: the version is wrong; building the error message must not crash.
    const error = errorOf(() => decodeAnnouncement(bytes(map(['v', map(['toString', uint(0)])]))))
    expect(error).toBeInstanceOf(UnsupportedVersionError)
  })

  it('values that are not maps', () => {
    expectMalformed(arr(uint(1)))
    expectMalformed([0x41, 0x01]) // byte string
    expectMalformed(uint(1))
    expectMalformed(tstr('v'))
    expectMalformed([0xf6]) // null
    expectMalformed([0xf5]) // true
    expectMalformed([]) // nothing at all
  })

  it('an unknown profile', () => {
    expectMalformed(message({ profile: tstr('gpu') }))
    expectMalformed(message({ profile: uint(1) }))
  })

  it('a timestamp that is not a non-negative whole number of ms', () => {
    expectMalformed(message({ ts: float64(TS + 0.5) }))
    expectMalformed(message({ ts: [0x20] })) // -1
    expectMalformed(message({ ts: tstr(String(TS)) }))
    expectMalformed(message({ ts: uint64(2 ** 53) })) // beyond safe integers
  })

  it('capability names that no release could write, in caps or in working', () => {
    expectMalformed(message({ working: arr(tstr('Inference')) }))
    expectMalformed(message({ caps: arr(tstr('inference'), tstr(`a${'b'.repeat(32)}`)) }))
    expectMalformed(message({ caps: arr(tstr('inference'), tstr('')) }))
    expectMalformed(message({ caps: tstr('inference') }))
    expectMalformed(message({ caps: arr(uint(1)) }))
    expectMalformed(message({ caps: arr(...Array.from({ length: 33 }, (_, i) => tstr(`future-${i}`))) }))
  })

  it('a newer release\'s capability is dropped, not refused: peers of two releases must not strike each other', () => {
    const decoded = decodeAnnouncement(message({ caps: arr(tstr('inference'), tstr('teleport')), working: arr(tstr('inference'), tstr('teleport')) }))
    expect(decoded.capabilities).toEqual({ inference: { working: true } })
    // The rule that what works is enabled still holds for names this release does not know.
    expectMalformed(message({ caps: arr(tstr('inference')), working: arr(tstr('teleport')) }))
  })

  it('repeated capabilities', () => {
    expectMalformed(message({ caps: arr(tstr('inference'), tstr('inference')) }))
    expectMalformed(message({ working: arr(tstr('inference'), tstr('inference')) }))
    expectMalformed(message({ caps: arr(...Array.from({ length: 10 }, () => tstr('inference'))) }))
  })

  it('addrs that are missing, too many, too long or not multiaddr strings', () => {
    expectMalformed(bytes(map(...canonicalFields().filter(([k]) => k !== 'addrs'))))
    expectMalformed(message({ addrs: tstr(ADDR) }))
    expectMalformed(message({ addrs: arr(...Array.from({ length: 9 }, (_, i) => tstr(`/ip4/10.0.0.${i}/tcp/1/ws`))) }))
    expectMalformed(message({ addrs: arr(tstr('ip4/1.2.3.4/tcp/1/ws')) }))
    expectMalformed(message({ addrs: arr(tstr(`/${'a'.repeat(400)}`)) }))
    expectMalformed(message({ addrs: arr(uint(1)) }))
    expectMalformed(message({ addrs: arr([0x41, 0x2f]) })) // the byte string "/"
    // The bounds themselves are fine.
    const eight = Array.from({ length: 8 }, (_, i) => `/${String(i).repeat(399)}`)
    expect(decodeAnnouncement(message({ addrs: arr(...eight.map(tstr)) })).addrs).toEqual(eight)
    expect(decodeAnnouncement(message({ addrs: arr() })).addrs).toEqual([])
  })

  it('working capabilities that are not enabled', () => {
    expectMalformed(message({ working: arr(tstr('embedding')) }))
    expectMalformed(message({ caps: arr(), working: arr(tstr('inference')) }))
  })

  it('integers and lengths not in their shortest form', () => {
    expectMalformed(message({ v: [0x18, 0x01] }))
    expectMalformed(bytes([0xb8, 0x05, ...map(...canonicalFields()).slice(1)])) // map length in 2 bytes
    expectMalformed(bytes([0xa5, 0x78, 0x01, 0x76, ...map(...canonicalFields()).slice(3)])) // key "v" with a 1-byte length
  })

  it('duplicate map keys', () => {
    expectMalformed(bytes(map(...canonicalFields(), ['v', uint(1)])))
    expectMalformed(bytes(map(['v', uint(1)], ['v', uint(1)])))
    expectMalformed(bytes(map(...canonicalFields(), ['profile', tstr('full')])))
  })

  it('indefinite lengths, undefined, NaN, Infinity, tags and trailing bytes', () => {
    expectMalformed([0xbf, ...map(...canonicalFields()).slice(1), 0xff]) // indefinite map
    expectMalformed(message({ caps: [0x9f, ...tstr('inference'), ...tstr('caching'), 0xff] }))
    expectMalformed(message({ ts: [0xf7] })) // undefined
    expectMalformed(message({ ts: [0xf9, 0x7e, 0x00] })) // NaN
    expectMalformed(message({ ts: [0xf9, 0x7c, 0x00] })) // Infinity
    expectMalformed([0xc1, ...message()]) // tag 1 around the map
    expectMalformed([...message(), 0x00]) // a second item after the message
    expectMalformed(message().slice(0, -1)) // truncated
  })

  it('map keys out of canonical order', () => {
    // Same fields, working before v: decodable, but not the canonical encoding the codec promises.
    const fields = canonicalFields()
    expectMalformed(bytes(map(...[...fields].reverse())))
  })

  it('integers encoded as floats', () => {
    // ts 1.7e12 as a float64 (0xfb ...) instead of an integer: not canonical CBOR.
    expectMalformed(message({ ts: float64(TS) }))
    // v: 1.0 as a half float.
    expectMalformed(message({ v: [0xf9, 0x3c, 0x00] }))
  })

  it('fuzz: any bytes either decode to a valid announcement or throw a HyperspaceError', () => {
    const check = (input: Uint8Array): void => {
      let decoded: CapabilityAnnouncement
      try {
        decoded = decodeAnnouncement(input)
      } catch (err) {
        expect(err).toBeInstanceOf(HyperspaceError)
        return
      }
      expect(PROFILE_NAMES).toContain(decoded.profile)
      expect(Number.isSafeInteger(decoded.timestamp) && decoded.timestamp >= 0).toBe(true)
      for (const name of Object.keys(decoded.capabilities)) expect(CAPABILITY_NAMES).toContain(name)
    }
    fc.assert(fc.property(fc.uint8Array({ maxLength: ANNOUNCEMENT_MAX_BYTES + 100 }), check), { numRuns: 2000 })
    // Mutations of a valid message reach deeper into the decoder than uniform noise does.
    const valid = message()
    fc.assert(fc.property(
      fc.array(fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
      edits => {
        const mutated = valid.slice()
        for (const [at, value] of edits) mutated[at] = value
        check(mutated)
      }
    ), { numRuns: 2000 })
  })

  it('fuzz: any CBOR map with arbitrary field values either decodes or throws a HyperspaceError', () => {
    const key = fc.constantFrom('v', 'ts', 'profile', 'caps', 'working', 'addrs', 'toString', 'valueOf', '__proto__', 'constructor')
    const value = fc.oneof(
      fc.constant(1),
      fc.integer(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.string(),
      fc.boolean(),
      fc.constant(null),
      fc.uint8Array({ maxLength: 8 }),
      fc.array(fc.constantFrom(...CAPABILITY_NAMES, 'x', '/ip4/1.2.3.4/tcp/1/ws')),
      fc.dictionary(key, fc.oneof(fc.integer(), fc.string(), fc.constant(null)))
    )
    fc.assert(fc.property(fc.dictionary(key, value), record => {
      expectRefusedCleanly(decodeAnnouncement, encode(record))
    }), { numRuns: 1000 })
  })
})

describe('decodeMessage', () => {
  it('checks the limit it is given, then the version', () => {
    const record = encode({ v: 3, x: 'y' })
    expect(decodeMessage(record, record.byteLength, 3)).toEqual({ v: 3, x: 'y' })
    expect(errorOf(() => decodeMessage(record, record.byteLength - 1, 3))).toBeInstanceOf(OversizeMessageError)
    expect(errorOf(() => decodeMessage(record, 1024, 2))).toBeInstanceOf(UnsupportedVersionError)
  })
})

describe('isStale', () => {
  const now = TS
  it('accepts timestamps up to 5 minutes either side of now', () => {
    expect(ANNOUNCEMENT_MAX_SKEW_MS).toBe(300_000)
    expect(isStale(now, now)).toBe(false)
    expect(isStale(now - 300_000, now)).toBe(false)
    expect(isStale(now + 300_000, now)).toBe(false)
  })

  it('rejects timestamps more than 5 minutes away', () => {
    expect(isStale(now - 300_001, now)).toBe(true)
    expect(isStale(now + 300_001, now)).toBe(true)
    expect(isStale(0, now)).toBe(true)
  })
})

describe('validateAnnouncement', () => {
  let signed: (data: Uint8Array) => Message

  beforeAll(async () => {
    const key = await generateKeyPair('Ed25519')
    signed = data => ({
      type: 'signed',
      from: peerIdFromPrivateKey(key),
      topic: 'hyperspace/v2/mainnet/capabilities',
      data,
      sequenceNumber: 1n,
      signature: new Uint8Array(64),
      key: key.publicKey
    })
  })

  it('rejects unsigned messages, even with a valid body', () => {
    const unsigned: Message = { type: 'unsigned', topic: 'hyperspace/v2/mainnet/capabilities', data: encodeAnnouncement(SAMPLE) }
    expect(validateAnnouncement(unsigned, TS)).toEqual({ result: TopicValidatorResult.Reject })
  })

  it('rejects malformed data and reports the error', () => {
    const { result, error } = validateAnnouncement(signed(message({ profile: tstr('gpu') })), TS)
    expect(result).toBe(TopicValidatorResult.Reject)
    expect(error).toBeInstanceOf(MalformedMessageError)

    const garbage = validateAnnouncement(signed(new Uint8Array([0xff, 0x00])), TS)
    expect(garbage.result).toBe(TopicValidatorResult.Reject)
    expect(garbage.error).toBeInstanceOf(MalformedMessageError)

    const oversize = validateAnnouncement(signed(new Uint8Array(ANNOUNCEMENT_MAX_BYTES + 1)), TS)
    expect(oversize.result).toBe(TopicValidatorResult.Reject)
    expect(oversize.error).toBeInstanceOf(OversizeMessageError)

    const version = validateAnnouncement(signed(message({ v: uint(2) })), TS)
    expect(version.result).toBe(TopicValidatorResult.Reject)
    expect(version.error?.code).toBe('ERR_UNSUPPORTED_VERSION')
  })

  it('rejects, and reports, a version that cannot be turned into a string', () => {
    // gossipsub turns a validator that throws into Ignore: the sender would escape Reject and the 'invalid' event.
    const { result, error } = validateAnnouncement(signed(bytes(map(['v', map(['toString', uint(0)])]))), TS)
    expect(result).toBe(TopicValidatorResult.Reject)
    expect(error).toBeInstanceOf(UnsupportedVersionError)
  })

  it('ignores stale announcements', () => {
    const msg = signed(encodeAnnouncement(SAMPLE))
    expect(validateAnnouncement(msg, TS + 300_001)).toEqual({ result: TopicValidatorResult.Ignore })
    expect(validateAnnouncement(msg, TS - 300_001)).toEqual({ result: TopicValidatorResult.Ignore })
  })

  it('accepts fresh announcements', () => {
    const msg = signed(encodeAnnouncement(SAMPLE))
    expect(validateAnnouncement(msg, TS)).toEqual({ result: TopicValidatorResult.Accept })
    expect(validateAnnouncement(msg, TS + 300_000)).toEqual({ result: TopicValidatorResult.Accept })
    expect(validateAnnouncement(msg, TS - 300_000)).toEqual({ result: TopicValidatorResult.Accept })
  })
})
