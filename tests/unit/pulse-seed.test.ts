import { sha256 } from '@noble/hashes/sha2.js'
import { describe, expect, it } from 'vitest'
import {
  SEED_BYTES,
  challengeBeacon,
  challengeIndices,
  emptyBeacon,
  leaderScore,
  pickLeader,
  roundSeed,
  rowsInput
} from '../../src/core/pulse/seed.ts'

// ---- independent helpers: nothing here comes from src/core/crypto/bytes.ts ----

const enc = new TextEncoder()
const utf8 = (s: string): Uint8Array => enc.encode(s)

function cat (...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let o = 0
  for (const p of parts) { out.set(p, o); o += p.length }
  return out
}

function be64 (n: number): Uint8Array {
  const out = new Uint8Array(8)
  let v = BigInt(n)
  for (let i = 7; i >= 0; i--) { out[i] = Number(v & 0xffn); v >>= 8n }
  return out
}

function be32 (n: number): Uint8Array {
  return Uint8Array.of((n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff)
}

const hex = (b: Uint8Array): string => Array.from(b, x => x.toString(16).padStart(2, '0')).join('')
const firstU32 = (b: Uint8Array): number => (((b[0] as number) << 24) | ((b[1] as number) << 16) | ((b[2] as number) << 8) | (b[3] as number)) >>> 0

/** Deterministic pseudo-random bytes (SHA-256 in counter mode), so failures reproduce. */
function prng (label: string): (length: number) => Uint8Array {
  let counter = 0
  return length => {
    const out = new Uint8Array(length)
    for (let o = 0; o < length; o += 32) out.set(sha256(utf8(`${label}/${counter++}`)).subarray(0, Math.min(32, length - o)), o)
    return out
  }
}

const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
function randomPeerIds (count: number, label: string): string[] {
  const bytes = prng(label)
  return Array.from({ length: count }, () => '12D3KooW' + Array.from(bytes(44), b => BASE58[b % 58]).join(''))
}

const NET = 'hyperspace-test'
const beacon = sha256(utf8('beacon'))

describe('roundSeed', () => {
  it('is SHA-256("hyperspace-pulse" | network id | u64be(round) | previous beacon)', () => {
    for (const round of [0, 1, 255, 2 ** 32 + 7, 2 ** 40 + 3]) {
      const expected = sha256(cat(utf8('hyperspace-pulse'), utf8(NET), be64(round), beacon))
      expect(hex(roundSeed(NET, round, beacon))).toBe(hex(expected))
    }
    expect(roundSeed(NET, 1, beacon).byteLength).toBe(SEED_BYTES)
    expect(SEED_BYTES).toBe(32)
  })

  it('is deterministic', () => {
    expect(hex(roundSeed(NET, 42, beacon))).toBe(hex(roundSeed(NET, 42, Uint8Array.from(beacon))))
  })

  it('changes with the network id, the round and the beacon', () => {
    const base = hex(roundSeed(NET, 42, beacon))
    expect(hex(roundSeed('hyperspace-other', 42, beacon))).not.toBe(base)
    expect(hex(roundSeed(NET, 43, beacon))).not.toBe(base)
    const otherBeacon = Uint8Array.from(beacon)
    otherBeacon[31] = (otherBeacon[31] as number) ^ 1
    expect(hex(roundSeed(NET, 42, otherBeacon))).not.toBe(base)
  })

  it('uses all 64 bits of the round (rounds 2^32 apart differ)', () => {
    expect(hex(roundSeed(NET, 2 ** 32 + 5, beacon))).not.toBe(hex(roundSeed(NET, 5, beacon)))
  })

  it('chains over 3 rounds through challenge and empty beacons, every seed different', () => {
    const leaderSig = prng('sig')(64)
    const s1 = roundSeed(NET, 100, beacon)
    const b1 = challengeBeacon(leaderSig)
    expect(hex(b1)).toBe(hex(sha256(leaderSig)))
    const s2 = roundSeed(NET, 101, b1)
    // A round without a challenge: a beacon every watcher agrees on from the network id and round alone.
    const b2 = emptyBeacon(NET, 101)
    const round = new Uint8Array(8)
    new DataView(round.buffer).setBigUint64(0, 101n)
    expect(hex(b2)).toBe(hex(sha256(cat(utf8('hyperspace-pulse-empty'), utf8(NET), round))))
    expect(hex(emptyBeacon(NET, 102))).not.toBe(hex(b2))
    expect(hex(emptyBeacon('other', 101))).not.toBe(hex(b2))
    const s3 = roundSeed(NET, 102, b2)
    const b3 = emptyBeacon(NET, 102)
    const s4 = roundSeed(NET, 103, b3)
    const all = [s1, s2, s3, s4, b1, b2, b3].map(hex)
    expect(new Set(all).size).toBe(all.length)
    // A different leader signature changes the next seed.
    const other = Uint8Array.from(leaderSig)
    other[0] = (other[0] as number) ^ 0x80
    const s2x = roundSeed(NET, 101, challengeBeacon(other))
    expect(hex(s2x)).not.toBe(hex(s2))
  })
})

describe('leader election', () => {
  const seed = sha256(utf8('leader-seed'))
  const peers = randomPeerIds(50, 'leaders')

  it('leaderScore is SHA-256(seed | peer id bytes)', () => {
    const id = utf8(peers[0] as string)
    expect(hex(leaderScore(seed, id))).toBe(hex(sha256(cat(seed, id))))
  })

  it('picks the peer with the lowest SHA-256(seed | UTF-8 peer id) (brute-force sort)', () => {
    for (let trial = 0; trial < 20; trial++) {
      const s = sha256(utf8(`trial ${trial}`))
      const sorted = [...peers].sort((a, b) => {
        const ha = hex(sha256(cat(s, utf8(a))))
        const hb = hex(sha256(cat(s, utf8(b))))
        return ha < hb ? -1 : ha > hb ? 1 : 0
      })
      expect(pickLeader(s, peers)).toBe(sorted[0])
    }
  })

  it('does not depend on the order of the peers (array, reversed, shuffled, Set)', () => {
    const leader = pickLeader(seed, peers)
    expect(leader).toBeDefined()
    expect(pickLeader(seed, [...peers].reverse())).toBe(leader)
    const shuffled = [...peers].sort((a, b) => hex(sha256(utf8(a))).localeCompare(hex(sha256(utf8(b)))))
    expect(shuffled).not.toEqual(peers)
    expect(pickLeader(seed, shuffled)).toBe(leader)
    expect(pickLeader(seed, new Set(shuffled))).toBe(leader)
  })

  it('different seeds elect different leaders (not always the same peer)', () => {
    const leaders = new Set(Array.from({ length: 30 }, (_, i) => pickLeader(sha256(utf8(`s${i}`)), peers)))
    expect(leaders.size).toBeGreaterThan(5)
  })

  it('a single peer leads; nobody committed → undefined', () => {
    expect(pickLeader(seed, [peers[3] as string])).toBe(peers[3])
    expect(pickLeader(seed, [])).toBeUndefined()
  })
})

describe('challengeIndices', () => {
  const seed = sha256(utf8('challenge-seed'))
  const output = prng('rows-vrf-output')(64)
  const peer = '12D3KooWCommitter'

  /** Independent re-implementation of the documented rule. */
  function reference (s: Uint8Array, rowsOutput: Uint8Array, who: string, n: number, k: number): number[] {
    if (n <= k) return Array.from({ length: n }, (_, i) => i)
    const picked: number[] = []
    for (let c = 0; picked.length < k; c++) {
      const index = firstU32(sha256(cat(s, rowsOutput, utf8(who), be32(c)))) % n
      if (!picked.includes(index)) picked.push(index)
    }
    return picked
  }

  it('gives k distinct indices in [0, n), as the documented rule', () => {
    for (const [n, k] of [[9, 8], [64, 8], [1024, 16], [17, 16], [1000, 1]] as const) {
      const indices = challengeIndices(seed, output, peer, n, k)
      expect(indices).toHaveLength(k)
      expect(new Set(indices).size).toBe(k)
      for (const i of indices) {
        expect(Number.isInteger(i)).toBe(true)
        expect(i).toBeGreaterThanOrEqual(0)
        expect(i).toBeLessThan(n)
      }
      expect(indices).toEqual(reference(seed, output, peer, n, k))
    }
  })

  it('is deterministic', () => {
    expect(challengeIndices(seed, output, peer, 256, 16)).toEqual(challengeIndices(Uint8Array.from(seed), Uint8Array.from(output), peer, 256, 16))
  })

  it('changes with the rows VRF output, the seed and the committer', () => {
    const base = challengeIndices(seed, output, peer, 1024, 16)
    const otherOutput = Uint8Array.from(output)
    otherOutput[63] = (otherOutput[63] as number) ^ 1
    expect(challengeIndices(seed, otherOutput, peer, 1024, 16)).not.toEqual(base)
    expect(challengeIndices(sha256(utf8('other seed')), output, peer, 1024, 16)).not.toEqual(base)
    expect(challengeIndices(seed, output, `${peer}2`, 1024, 16)).not.toEqual(base)
  })

  it('returns every row, in order, when n <= k', () => {
    expect(challengeIndices(seed, output, peer, 8, 16)).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
    expect(challengeIndices(seed, output, peer, 16, 16)).toEqual(Array.from({ length: 16 }, (_, i) => i))
    expect(challengeIndices(seed, output, peer, 0, 4)).toEqual([])
  })

  it('hits every index of a small matrix over many seeds, roughly evenly', () => {
    const n = 12
    const k = 3
    const counts = new Array<number>(n).fill(0)
    const seeds = 400
    for (let s = 0; s < seeds; s++) {
      for (const i of challengeIndices(sha256(utf8(`seed ${s}`)), output, peer, n, k)) counts[i] = (counts[i] as number) + 1
    }
    const expected = seeds * k / n // 100
    for (const c of counts) {
      expect(c).toBeGreaterThan(expected * 0.5)
      expect(c).toBeLessThan(expected * 1.5)
    }
  })
})

describe('rowsInput', () => {
  const seed = sha256(utf8('rows-seed'))
  const root = (label: string): Uint8Array => sha256(utf8(label))
  const commits: Array<[string, Uint8Array]> = [['12D3KooWa', root('a')], ['12D3KooWb', root('b')]]

  it('is the documented bytes: domain, network, round, seed, and the hash of the length-prefixed entries', () => {
    const entries = commits.map(([p, r]) => cat(be32(utf8(p).byteLength), utf8(p), r))
    expect(rowsInput('net', 7, seed, commits)).toEqual(cat(utf8('hyperspace-pulse-rows'), utf8('net'), be64(7), seed, sha256(cat(...entries))))
  })

  it('changes with any listed root, an added or dropped entry, and cannot be confused by moving bytes between a peer and its root', () => {
    const base = rowsInput('net', 7, seed, commits)
    expect(rowsInput('net', 7, seed, [commits[0] as [string, Uint8Array], ['12D3KooWb', root('other')]])).not.toEqual(base)
    expect(rowsInput('net', 7, seed, commits.slice(0, 1))).not.toEqual(base)
    expect(rowsInput('net', 7, seed, [...commits, ['12D3KooWc', root('c')]])).not.toEqual(base)
    const shifted: Array<[string, Uint8Array]> = [['12D3KooW', cat(utf8('a'), root('a').subarray(0, 31))], ...commits.slice(1)]
    expect(rowsInput('net', 7, seed, shifted)).not.toEqual(base)
  })
})
