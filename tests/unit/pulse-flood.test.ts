import { describe, expect, it } from 'vitest'
import { sha256Of, utf8 } from '../../src/core/crypto/bytes.ts'
import { MAX_COMMITTEE } from '../../src/core/wire/pulse.ts'
import { MemoryMeter } from './adversary.ts'
import { NET, PulseBus } from './pulse-bus.ts'

/**
 * What the pulse makes a node hold for messages it cannot place yet. Every such message is also
 * forwarded by GossipSub (the validator checks only its form, signature and round), so what one
 * node holds, every member of the committee holds.
 */
describe('pulse messages held for later', () => {
  it('a free key\'s flood of large challenges for the next round is not held until that round opens', async () => {
    const bus = new PulseBus(7)
    const [node] = bus.add([{ name: 'a', kind: 'honest', aged: true }])
    await bus.runRounds(2)
    await bus.runTo(0.1)
    const next = bus.round + 1
    const seed = new Uint8Array(32)
    // The largest challenge the wire allows: 512 listed commits (about 47 KB of body).
    const listed = Array.from({ length: MAX_COMMITTEE }, () => bus.freshKey().peerId).sort().map(peer => [peer, sha256Of(utf8(peer))] as [string, Uint8Array])
    const meter = new MemoryMeter()
    const attacker = bus.freshKey()
    for (let i = 0; i < 1024; i++) {
      seed[0] = i & 0xff
      seed[1] = i >> 8
      await bus.inject(attacker, { t: 'challenge', net: NET, r: next, peer: attacker.peerId, seed: seed.slice(), commits: listed, k: 4, ...await bus.proofs(attacker, next, seed, listed) })
    }
    await bus.runTo(0.9)
    const memory = await meter.stop()
    expect(node?.engine.round(next)).toBeUndefined()
    console.log(`FIGURES | pulse: 1,024 challenges of 512 entries for the next round | +${memory.retainedMiB.toFixed(1)} MiB retained`)
    expect(memory.retainedMiB).toBeLessThan(8)
  })
})
