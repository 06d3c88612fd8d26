import { generateKeyPair } from '@libp2p/crypto/keys'
import { sha256 } from '@noble/hashes/sha2.js'
import { describe, expect, it } from 'vitest'
import { encodeMessage } from '../../src/core/wire/cbor.ts'
import { MalformedMessageError } from '../../src/core/errors.ts'
import { decodePulse, encodeSigned, PULSE_VERSION, signedData, signPulse, type CommitMessage } from '../../src/core/wire/pulse.ts'
import { pulseSigner, verifyPulseSignature } from '../../src/net/pulse-keys.ts'
import {
  chainRestarts, committeeOf, committeeStartBeacon, decisionRound, EPOCH_ROUNDS, epochOf, epochSeed, isCommitteeCount, isPlausibleMember,
  learnedCommitteeCount, LOBBY, MAX_COMMITTEES, nextCommitteeCount, networkSizeEstimate
} from '../../src/core/pulse/committee.ts'
import { pulseTopic } from '../../src/core/wire/topics.ts'
import { CommitteeView } from '../../src/core/pulse/committee-view.ts'

const enc = new TextEncoder()
const utf8 = (s: string): Uint8Array => enc.encode(s)
const NET = 'hyperspace-test'

function be64 (n: number): Uint8Array {
  const out = new Uint8Array(8)
  new DataView(out.buffer).setBigUint64(0, BigInt(n))
  return out
}

function cat (...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let o = 0
  for (const p of parts) { out.set(p, o); o += p.length }
  return out
}

const hex = (b: Uint8Array): string => Array.from(b, x => x.toString(16).padStart(2, '0')).join('')

const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
/** Deterministic peer-id-shaped strings, so a failure reproduces. */
function peerIds (count: number, label: string): string[] {
  return Array.from({ length: count }, (_, i) => {
    const bytes = cat(sha256(utf8(`${label}/${i}/a`)), sha256(utf8(`${label}/${i}/b`)))
    return '12D3KooW' + Array.from(bytes.subarray(0, 44), b => BASE58[b % 58]).join('')
  })
}

/** The committees of a population of `n` for a node that sees the network whole (the size estimate's ground truth). */
function sizesFor (n: number, committees: number): number[] {
  const seed = epochSeed(NET, 0)
  const counts = new Array<number>(committees).fill(0)
  for (const id of peerIds(n, `pop-${n}`)) {
    const c = committeeOf(seed, utf8(id), committees)
    counts[c] = (counts[c] as number) + 1
  }
  return counts
}

describe('epoch and epoch seed', () => {
  it('epochs are 96 rounds; the seed is SHA-256("hyperspace-epoch" | network id | u64be(epoch))', () => {
    expect(EPOCH_ROUNDS).toBe(96)
    expect([0, 95, 96, 191, 192].map(epochOf)).toEqual([0, 0, 1, 1, 2])
    expect(hex(epochSeed(NET, 2))).toBe(hex(sha256(cat(utf8('hyperspace-epoch'), utf8(NET), be64(2)))))
    expect(hex(epochSeed('hyperspace-other', 2))).not.toBe(hex(epochSeed(NET, 2)))
    // K is fixed at the end of the last round but one, so the next topic is known a round ahead.
    expect(decisionRound(0)).toBe(94)
    expect(decisionRound(3)).toBe(4 * 96 - 2)
  })

  it('committee topics are hyperspace/v2/<network id>/pulse/<committee>', () => {
    expect(pulseTopic('dev-t6', 0)).toBe('hyperspace/v2/dev-t6/pulse/0')
    expect(pulseTopic('mainnet', 37)).toBe('hyperspace/v2/mainnet/pulse/37')
  })
})

describe('committee assignment', () => {
  it('is SHA-256(epoch seed | peer id) mod K', () => {
    const seed = epochSeed(NET, 5)
    for (const id of peerIds(20, 'formula')) {
      const h = sha256(cat(seed, utf8(id)))
      const first = new DataView(h.buffer).getUint32(0)
      expect(committeeOf(seed, utf8(id), 16)).toBe(first % 16)
    }
  })

  it('spreads 20,000 peer ids uniformly over 64 committees (chi-square)', () => {
    const k = 64
    const counts = sizesFor(20_000, k)
    const expected = 20_000 / k
    const chi2 = counts.reduce((sum, c) => sum + (c - expected) ** 2 / expected, 0)
    // 63 degrees of freedom: P(chi2 > 110) is about 1e-4.
    expect(chi2).toBeLessThan(110)
  })

  it('keeps every node in its committee for the whole epoch and reshuffles at the next', () => {
    const ids = peerIds(2_000, 'stable')
    const view = (id: string): CommitteeView => new CommitteeView({ networkId: NET, self: id, committees: 8, round: 96 * 3 })
    const views = ids.map(view)
    const assigned = views.map(v => v.committee(3))
    for (let r = 96 * 3; r < 96 * 4; r += 7) expect(views.map(v => v.committee(epochOf(r)))).toEqual(assigned)
    const next = ids.map(id => committeeOf(epochSeed(NET, 4), utf8(id), 8))
    expect(next.filter((c, i) => c !== assigned[i]).length).toBeGreaterThan(2_000 * 0.8)
  })

  it('under 2K a node sits in c or c + K: nodes whose K differ by a factor of two still meet', () => {
    const seed = epochSeed(NET, 0)
    for (const id of peerIds(200, 'split')) {
      const c = committeeOf(seed, utf8(id), 8)
      expect([c, c + 8]).toContain(committeeOf(seed, utf8(id), 16))
    }
  })

  it('accepts a member under K, K/2 or 2K, and nobody else', () => {
    expect(isPlausibleMember(0b1011, 3, 8)).toBe(true)
    expect(isPlausibleMember(0b1011, 3, 4)).toBe(true)
    expect(isPlausibleMember(0b1011, 11, 8)).toBe(true)
    expect(isPlausibleMember(0b1011, 2, 4)).toBe(false)
    expect(isPlausibleMember(0b1011, 5, 8)).toBe(false)
    // One committee: everybody belongs to it.
    for (const h of [0, 1, 7, 2 ** 32 - 1]) expect(isPlausibleMember(h, 0, 1)).toBe(true)
  })
})

describe('K from the network-size estimate', () => {
  it('stays at 1 while the network fits one committee of 120', () => {
    for (const size of [1, 3, 10, 64, 100, 120]) expect(nextCommitteeCount(1, [size, size, size])).toBe(1)
  })

  it('splits when committees pass 120 and merges below 40, to the fewest committees of at most 120', () => {
    expect(nextCommitteeCount(1, [121])).toBe(2)
    expect(nextCommitteeCount(1, [300])).toBe(4)
    expect(nextCommitteeCount(4, [300])).toBe(16)
    expect(nextCommitteeCount(8, [60])).toBe(8)
    expect(nextCommitteeCount(8, [30])).toBe(2)
    // A network that grew tenfold in one epoch gets there in one step.
    expect(nextCommitteeCount(2, [600])).toBe(16)
    expect(nextCommitteeCount(2, [30])).toBe(1)
    // Whatever K becomes, committees hold more than half the cap and at most the cap.
    for (let n = 121; n < 200_000; n = Math.ceil(n * 1.37)) {
      const k = nextCommitteeCount(1, [n])
      expect(n / k).toBeLessThanOrEqual(120)
      expect(n / k).toBeGreaterThan(60)
    }
    expect(networkSizeEstimate(8, [120, 140, 130])).toBe(8 * 130)
    expect(networkSizeEstimate(8, [])).toBeUndefined()
  })

  it('follows N with hysteresis: K tracks the size, and a network hovering at a threshold does not flap', () => {
    const trace = (sizes: number[]): number[] => {
      const ks: number[] = []
      let k = 1
      for (const n of sizes) {
        // What the nodes of each committee see, as the median over committees (each decides from its own).
        const seen = sizesFor(n, k).sort((a, b) => a - b)
        k = nextCommitteeCount(k, [seen[Math.floor(seen.length / 2)] as number])
        ks.push(k)
      }
      return ks
    }
    // Growth from 100 to 10,000: K follows, committees never left above the cap.
    const up = trace([100, 300, 600, 1_000, 2_000, 5_000, 10_000])
    expect(up.at(-1)).toBe(128)
    for (let i = 1; i < up.length; i++) expect(up[i] as number).toBeGreaterThanOrEqual(up[i - 1] as number)
    const ratio = 10_000 / (up.at(-1) as number)
    expect(ratio).toBeGreaterThan(60)
    expect(ratio).toBeLessThanOrEqual(120)
    // A network that wobbles ±20% around a split point changes K once, then holds.
    const wobble = trace([520, 620, 500, 630, 510, 640, 500, 620])
    const changes = wobble.filter((k, i) => i > 0 && k !== wobble[i - 1]).length
    expect(changes).toBeLessThanOrEqual(1)
  })

  it('a node that has just joined learns K from the median claim; nobody claiming means 1', () => {
    expect(learnedCommitteeCount([])).toBe(1)
    expect(learnedCommitteeCount([8, 8, 16, 8, 1])).toBe(8)
    expect([1, 2, 64, MAX_COMMITTEES].every(isCommitteeCount)).toBe(true)
    expect([0, 3, 12, MAX_COMMITTEES * 2, 1.5].some(isCommitteeCount)).toBe(false)
  })

  it('the beacon chain restarts at a boundary only when there is more than one committee', () => {
    expect(chainRestarts(1, 1)).toBe(false)
    expect(chainRestarts(1, 2)).toBe(true)
    expect(chainRestarts(4, 1)).toBe(true)
    expect(hex(committeeStartBeacon(NET, 3, 1))).not.toBe(hex(committeeStartBeacon(NET, 3, 2)))
  })
})

describe('CommitteeView', () => {
  it('learns K in the lobby from the committers of a round it watched whole, then moves to its committee', () => {
    const [self = '', ...others] = peerIds(400, 'lobby')
    const view = new CommitteeView({ networkId: NET, self, round: 10 })
    expect(view.committee(0)).toBe(LOBBY)
    // Committee 0 of 4: its members claim 4; a peer whose hash contradicts its claim is not counted.
    const seed = epochSeed(NET, 0)
    const members = others.filter(id => committeeOf(seed, utf8(id), 4) === 0)
    for (const id of members) view.noteClaim(11, id, 0, 4)
    const liar = others.find(id => committeeOf(seed, utf8(id), 64) !== 0) as string
    for (let i = 0; i < members.length * 2; i++) view.noteClaim(11, liar, 0, 64)
    view.closeRound(11, true)
    expect(view.committees(0)).toBe(4)
    expect(view.committee(0)).toBe(committeeOf(seed, utf8(self), 4))
    expect(view.topic(11)).toBe(pulseTopic(NET, committeeOf(seed, utf8(self), 4)))
  })

  it('learns K from aged committers when it knows any: fresh keys claiming K = 1 in numbers do not scatter it', () => {
    const [self = '', ...others] = peerIds(400, 'sybil-claims')
    const view = new CommitteeView({ networkId: NET, self, round: 10 })
    const seed = epochSeed(NET, 0)
    const members = others.filter(id => committeeOf(seed, utf8(id), 4) === 0)
    for (const id of members.slice(0, 3)) view.noteClaim(11, id, 0, 4, true)
    // Any key's claim of K = 1 passes the hash check (every hash is 0 mod 1): a flood of them.
    for (const id of others.filter(id => !members.includes(id)).slice(0, 60)) view.noteClaim(11, id, 0, 1, false)
    view.closeRound(11, true)
    expect(view.committees(0)).toBe(4)
  })

  it('does not learn from a round it saw only part of, and learns 1 where nobody claims more', () => {
    const view = new CommitteeView({ networkId: NET, self: peerIds(1, 'partial')[0] as string, round: 10 })
    view.closeRound(10, false)
    expect(view.committees(0)).toBeUndefined()
    view.closeRound(11, true)
    expect(view.committees(0)).toBe(1)
    expect(view.committee(0)).toBe(0)
  })

  it('decides the next epoch\'s K at the decision round from the commit sets of the last rounds', () => {
    const view = new CommitteeView({ networkId: NET, self: peerIds(1, 'decide')[0] as string, committees: 4, round: 50 })
    for (let r = 50; r < decisionRound(0); r++) {
      view.noteSize(r, 300)
      view.closeRound(r, true)
    }
    expect(view.committees(1)).toBeUndefined()
    view.noteSize(decisionRound(0), 300)
    view.closeRound(decisionRound(0), true)
    expect(view.committees(1)).toBe(16)
    expect(view.restartsAt(1)).toBe(true)
  })

  it('a relay pinned to a committee stays on it whatever K is', () => {
    const view = new CommitteeView({ networkId: NET, self: peerIds(1, 'relay')[0] as string, pinned: 5, committees: 8, round: 0 })
    expect(view.committee(0)).toBe(5)
    expect(view.committee(7)).toBe(5)
  })
})

describe('the committee count on the wire', () => {
  const commit = (peer: string): CommitMessage => ({ t: 'commit', net: NET, r: 7, peer, seed: new Uint8Array(32), root: new Uint8Array(32).fill(1), n: 16, caps: [], sid: new Uint8Array(8) })

  it('is left out with one committee, so such a network sends exactly what it sent before committees', async () => {
    const signer = pulseSigner(await generateKeyPair('Ed25519'))
    const signed = await signPulse(commit(signer.peerId), signer)
    expect(Object.keys(signed.message)).not.toContain('committees')
    const decoded = await decodePulse(encodeSigned(signed), verifyPulseSignature)
    expect(decoded.message).toEqual(commit(signer.peerId))
  })

  it('is carried above 1 and must be a power of two above 1', async () => {
    const key = await generateKeyPair('Ed25519')
    const signer = pulseSigner(key)
    const signed = await signPulse({ ...commit(signer.peerId), committees: 8 }, signer)
    expect((await decodePulse(encodeSigned(signed), verifyPulseSignature)).message).toMatchObject({ committees: 8 })
    for (const committees of [1, 3, 0, MAX_COMMITTEES * 2]) {
      const body = encodeMessage({ v: PULSE_VERSION, ...commit(signer.peerId), committees })
      const sig = await key.sign(signedData(body))
      await expect(decodePulse(encodeMessage({ v: PULSE_VERSION, body, sig }), verifyPulseSignature, true)).rejects.toThrow(MalformedMessageError)
      // On the wire 1 stands for the field left out, so a body that spells it out cannot travel.
      if (committees !== 1) await expect(decodePulse(encodeSigned({ message: commit(signer.peerId), body, sig }), verifyPulseSignature)).rejects.toThrow(MalformedMessageError)
    }
  })
})
