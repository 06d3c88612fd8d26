import { encode } from 'cborg'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decodeAnnouncement } from '../../src/core/wire/announcement.ts'
import { decodeBlocksClientFrame, decodeBlocksServerFrame } from '../../src/core/wire/blocks.ts'
import { decodeEmbedClientFrame, decodeEmbedServerFrame } from '../../src/core/wire/embed.ts'
import { HyperspaceError } from '../../src/core/errors.ts'
import { decodeBroadcast } from '../../src/core/wire/inference-broadcast.ts'
import { decodeMemoryRequest, decodeMemoryResponse } from '../../src/core/wire/memory.ts'
import { decodeCheckerFrame, decodeProverFrame } from '../../src/core/wire/points.ts'
import { decodeProxyClientFrame, decodeProxyServerFrame } from '../../src/core/wire/proxy.ts'
import { decodeReceiptBody } from '../../src/core/receipts/receipt.ts'
import { decodeTaskClientFrame, decodeTaskServerFrame } from '../../src/core/wire/tasks.ts'

/**
 * Every decoder of what peers send, fed what a hostile peer can send: it returns a frame or throws
 * one of the project's named errors, never a TypeError or a RangeError from deep inside, and never
 * hangs. Random bytes mostly die in CBOR; the structured inputs get past it: maps with the right
 * version, a frame type of some protocol, and fields of every protocol holding values of every kind.
 */
const DECODERS: Record<string, (bytes: Uint8Array) => unknown> = {
  'embed client': decodeEmbedClientFrame,
  'embed server': decodeEmbedServerFrame,
  'blocks client': decodeBlocksClientFrame,
  'blocks server': decodeBlocksServerFrame,
  'proxy client': decodeProxyClientFrame,
  'proxy server': decodeProxyServerFrame,
  'task client': decodeTaskClientFrame,
  'task server': decodeTaskServerFrame,
  'points ask': bytes => decodeCheckerFrame(bytes, 'ask'),
  'points pick': bytes => decodeCheckerFrame(bytes, 'pick'),
  'points summary': bytes => decodeProverFrame(bytes, 'summary'),
  'points evidence': bytes => decodeProverFrame(bytes, 'evidence'),
  'memory request': decodeMemoryRequest,
  'memory response': decodeMemoryResponse,
  'inference broadcast': decodeBroadcast,
  announcement: decodeAnnouncement,
  'receipt body': decodeReceiptBody
}

const TYPES = ['accept', 'ask', 'block', 'busy', 'countersign', 'done', 'error', 'evidence', 'fetch', 'held', 'hits', 'job', 'not-found',
  'offer', 'part', 'pick', 'progress', 'put', 'query', 'response', 'result', 'sign', 'stored', 'summary', 'task', 'want', 'type']
const FIELDS = ['body', 'bytes', 'cid', 'code', 'count', 'dims', 'done', 'from', 'headers', 'hits', 'inputs', 'job', 'k', 'key', 'kind', 'max',
  'message', 'meta', 'method', 'model', 'net', 'nonce', 'owner', 'receipt', 'receipts', 'retryMs', 'rounds', 'score', 'shards', 'sig', 'space',
  'start', 'status', 'texts', 'to', 'total', 'url', 'vec', 'vectors', 'ver', 'id', 'ts', 'profile', 'caps', 'working', 'addrs', 'models',
  'queue', 'slots', 'server', 'client', 'units', 'cached', 'out', 'round', 'results', 'parts', 'evidence', 'summary', 'picks', 'type']

const scalar = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  fc.string({ maxLength: 40 }),
  fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null)
)
const value = fc.oneof(scalar, fc.array(scalar, { maxLength: 6 }), fc.array(fc.array(scalar, { maxLength: 3 }), { maxLength: 4 }), fc.dictionary(fc.string({ maxLength: 8 }), scalar, { maxKeys: 4 }))

const frame = fc.record({
  // Mostly a version some protocol speaks (memory is at 2, the others at 1), so decoding gets past it.
  v: fc.constantFrom(1, 1, 1, 2, 2, 0, 3),
  t: fc.constantFrom(...TYPES),
  fields: fc.dictionary(fc.constantFrom(...FIELDS), value, { maxKeys: 8 })
}).map(({ v, t, fields }) => new Uint8Array(encode({ ...fields, v, t, type: t })))

function decodesOrNames (decode: (bytes: Uint8Array) => unknown, bytes: Uint8Array): void {
  try {
    decode(bytes)
  } catch (err) {
    if (!(err instanceof HyperspaceError)) throw new Error(`not a named error: ${String(err)}`, { cause: err })
  }
}

describe('every decoder of peers\' frames, fuzzed', () => {
  for (const [name, decode] of Object.entries(DECODERS)) {
    it(`${name}: arbitrary bytes and arbitrary maps only ever throw HyperspaceErrors`, () => {
      fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), bytes => { decodesOrNames(decode, bytes) }), { numRuns: 300 })
      fc.assert(fc.property(frame, bytes => { decodesOrNames(decode, bytes) }), { numRuns: 1_500 })
      expect(true).toBe(true)
    })
  }
})
