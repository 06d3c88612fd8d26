import { describe, expect, it } from 'vitest'
import { multiplierOf, PROBED_CAPABILITIES, type CapabilityName } from '../../src/core/capabilities.ts'
import { PeerBusyError } from '../../src/core/errors.ts'
import { RemoteBlockError, PeerLacksBlockError } from '../../src/core/blocks/errors.ts'
import { RemoteEmbeddingError } from '../../src/core/wire/embed.ts'
import { sha256Of, utf8 } from '../../src/core/crypto/bytes.ts'
import { CapabilityView } from '../../src/core/pulse/capability-view.ts'
import { RoundState } from '../../src/core/pulse/round-state.ts'
import { isDue, planSpotChecks, spotCheckDraw } from '../../src/core/pulse/spot-check-draw.ts'
import { SpotChecks } from '../../src/core/pulse/spot-checks.ts'
import { quorumOutcome, ValidatorHistory } from '../../src/core/pulse/validators.ts'
import { NetworkCapabilityProber, PROBE_MAX_TOKENS, type ProbeJobs } from '../../src/node/capability-prober.ts'
import { VirtualTime } from '../../sim/virtual-time.ts'
import { PulseLedger } from '../../src/core/pulse/ledger.ts'
import { N, NET, PulseBus } from './pulse-bus.ts'
import type { CommitMessage, SignedPulseMessage } from '../../src/core/wire/pulse.ts'
import type { CapabilityProber, ProbeOutcome } from '../../src/core/pulse/ports.ts'
import type { ValidChatRequest } from '../../src/core/inference/request.ts'

/** Lets promise chains that take a few turns (a check waiting for its slot) run. */
const flush = async (): Promise<void> => { for (let i = 0; i < 20; i++) await Promise.resolve() }
const seedOf = (i: number): Uint8Array => sha256Of(utf8(`seed-${i}`))
const peers = Array.from({ length: 60 }, (_, i) => `peer-${i}`)

describe('the spot-check draw', () => {
  it('draws about rate of the claims per round, a different set each round, the same on every node', () => {
    let due = 0
    let total = 0
    const sets: string[] = []
    for (let r = 0; r < 50; r++) {
      const plan = planSpotChecks(seedOf(r), peers.map(peer => ({ peer, caps: ['inference', 'embedding'] as CapabilityName[] })), ['v1', 'v2', 'v3', 'v4', 'v5'], { rate: 0.1, perChecker: 1000 })
      const checks = [...plan.values()].flat()
      due += checks.length
      total += peers.length * 2
      sets.push(checks.map(c => `${c.peer}/${c.capability}`).sort().join())
      expect(planSpotChecks(seedOf(r), peers.map(peer => ({ peer, caps: ['inference', 'embedding'] as CapabilityName[] })), ['v1', 'v2', 'v3', 'v4', 'v5'], { rate: 0.1, perChecker: 1000 })).toEqual(plan)
    }
    expect(due / total).toBeGreaterThan(0.07)
    expect(due / total).toBeLessThan(0.13)
    expect(new Set(sets).size).toBe(sets.length)
  })

  it('never has a peer check itself, checks only probed capabilities, and bounds each checker', () => {
    const drawn = ['peer-1', 'peer-2']
    const plan = planSpotChecks(seedOf(1), peers.map(peer => ({ peer, caps: ['inference', 'storage', 'relay', 'proxy', 'validation', 'caching'] as CapabilityName[] })), drawn, { rate: 1, perChecker: 3 })
    for (const [checker, checks] of plan) {
      expect(drawn).toContain(checker)
      expect(checks.length).toBeLessThanOrEqual(3)
      for (const check of checks) {
        expect(check.peer).not.toBe(checker)
        expect(PROBED_CAPABILITIES).toContain(check.capability)
      }
    }
    expect(PROBED_CAPABILITIES).toEqual(['inference', 'embedding', 'storage', 'memory'])
  })

  it('keeps a claim due or not by its own draw: the seed decides, not the claimant', () => {
    const draw = spotCheckDraw(seedOf(3), 'peer-7', 'inference')
    expect(isDue(draw, 1)).toBe(true)
    expect(isDue(draw, 0)).toBe(false)
    expect(spotCheckDraw(seedOf(4), 'peer-7', 'inference')).not.toEqual(draw)
  })
})

describe('a node\'s view of claims', () => {
  it('confirms a claim after a passed check for confirmRounds rounds, and only then', () => {
    const view = new CapabilityView({ confirmRounds: 10, strikeRounds: 4, maxEntries: 100 })
    expect(view.isConfirmed('x', 'inference', 5)).toBe(false)
    view.probed('x', 'inference', 5, 'ok')
    expect(view.isConfirmed('x', 'inference', 5)).toBe(true)
    expect(view.isConfirmed('x', 'inference', 15)).toBe(true)
    expect(view.isConfirmed('x', 'inference', 16)).toBe(false)
  })

  it('strikes a claim its own check saw fail, and no report lifts the strike before it ends', () => {
    const view = new CapabilityView({ confirmRounds: 10, strikeRounds: 4, maxEntries: 100 })
    view.probed('liar', 'embedding', 5, 'ok')
    view.probed('liar', 'embedding', 6, 'failed')
    expect(view.isConfirmed('liar', 'embedding', 6)).toBe(false)
    view.reported('liar', 'embedding', 7, true)
    expect(view.isConfirmed('liar', 'embedding', 8)).toBe(false)
    expect(view.isConfirmed('liar', 'embedding', 11)).toBe(true)
  })

  it('takes a checker\'s report: confirmed, or not (which ends an earlier confirmation)', () => {
    const view = new CapabilityView({ confirmRounds: 10, strikeRounds: 4, maxEntries: 100 })
    view.reported('x', 'storage', 1, true)
    expect(view.isConfirmed('x', 'storage', 2)).toBe(true)
    view.reported('x', 'storage', 3, false)
    expect(view.isConfirmed('x', 'storage', 3)).toBe(false)
  })

  it('confirms caching only with inference, validation only from a published verdict, never relay, orchestration or proxy', () => {
    const view = new CapabilityView()
    const all: CapabilityName[] = ['inference', 'caching', 'validation', 'relay', 'orchestration', 'proxy']
    expect(view.confirmed('x', all, 1, false)).toEqual([])
    view.probed('x', 'inference', 1, 'ok')
    expect(view.confirmed('x', all, 1, true)).toEqual(['inference', 'caching', 'validation'])
    expect(view.confirmed('x', ['caching'], 1, false)).toEqual([])
  })

  it('holds at most maxEntries claims, forgetting the one that expires first, and forgets expired ones', () => {
    const view = new CapabilityView({ confirmRounds: 10, strikeRounds: 4, maxEntries: 3 })
    view.probed('a', 'inference', 1, 'ok')
    view.probed('b', 'inference', 5, 'ok')
    view.probed('c', 'inference', 3, 'ok')
    view.probed('d', 'inference', 4, 'ok')
    expect(view.size).toBe(3)
    expect(view.isConfirmed('a', 'inference', 4)).toBe(false)
    expect(view.isConfirmed('b', 'inference', 4)).toBe(true)
    view.forgetBefore(14)
    expect(view.size).toBe(2)
  })
})

describe('the bonus of a verified round', () => {
  it('is what every counted pass confirms: one voter that saw the claim fail keeps it out', () => {
    const root = new Uint8Array(32)
    const history = new ValidatorHistory([], [], () => true)
    const pass = (validator: string, caps: CapabilityName[]) => ({ validator, result: { peer: 'x', ok: true, root, caps } })
    const outcome = quorumOutcome([pass('v1', ['inference', 'embedding']), pass('v2', ['embedding']), pass('v3', ['inference', 'embedding'])], root, ['v1', 'v2', 'v3'], history)
    expect(outcome.verified).toBe(true)
    expect(outcome.confirmed).toEqual(['embedding'])
    expect(quorumOutcome([], root, ['v1'], history).confirmed).toEqual([])
  })
})

describe('the node\'s own ledger', () => {
  it('earns the bonus the verdicts confirmed, not the one it committed; records from before spot-checks keep theirs', async () => {
    const ledger = new PulseLedger(NET, 'me', 6_000)
    await ledger.update(10, r => { r.committed = true; r.verified = true; r.caps = ['inference', 'embedding']; r.confirmedCaps = ['embedding'] })
    await ledger.update(11, r => { r.committed = true; r.verified = true; r.caps = ['inference', 'embedding']; r.confirmedCaps = [] })
    await ledger.update(9, r => { r.committed = true; r.verified = true; r.caps = ['inference'] })
    const byRound = new Map(ledger.points().map(p => [p.round, p.capability]))
    expect(byRound.get(10)).toBeCloseTo(multiplierOf(['embedding']), 12)
    expect(byRound.get(11)).toBe(1)
    expect(byRound.get(9)).toBeCloseTo(multiplierOf(['inference']), 12)
  })
})

/** A commit as RoundState keeps it: the signature is the transport's business, not checked here. */
function commit (peer: string, seed: Uint8Array, caps: CapabilityName[]): SignedPulseMessage<CommitMessage> {
  return { message: { t: 'commit', net: NET, r: 1, peer, seed, root: sha256Of(utf8(peer)), n: 16, caps, sid: new Uint8Array(8) }, body: new Uint8Array(0), sig: new Uint8Array(0) }
}

/** A prober whose answers the test controls: each probe waits until the test settles it. */
class HeldProber implements CapabilityProber {
  readonly calls: Array<{ peer: string, capability: CapabilityName, settle: (outcome: ProbeOutcome) => void, signal: AbortSignal }> = []
  async probe (peer: string, capability: CapabilityName, _round: number, { signal }: { signal: AbortSignal }): Promise<ProbeOutcome> {
    return await new Promise(resolve => { this.calls.push({ peer, capability, settle: resolve, signal }) })
  }
}

describe('running checks', () => {
  const seed = seedOf(9)
  const setup = (options: { maxInFlight?: number, perChecker?: number } = {}) => {
    const time = new VirtualTime(1_000_000)
    const history = new ValidatorHistory([], [], peer => peer === 'me')
    const prober = new HeldProber()
    const checks = new SpotChecks('me', time, history, prober, { rate: 1, timeoutMs: 20_000, maxInFlight: options.maxInFlight ?? 4, perChecker: options.perChecker ?? 6 })
    const state = new RoundState(NET, 1, seed, 16, 4, { history, onCommit: (s, c) => { checks.onCommit(s, c) } })
    state.addCommit(commit('me', seed, []))
    return { time, prober, checks, state }
  }

  it('starts a drawn check at the commit\'s arrival; a pending check changes nothing, an answer does', async () => {
    const { prober, checks, state } = setup()
    state.addCommit(commit('honest', seed, ['inference']))
    await flush()
    expect(prober.calls.map(c => c.peer)).toEqual(['honest'])
    expect(checks.view.isConfirmed('honest', 'inference', 1)).toBe(false)
    prober.calls[0]?.settle('ok')
    await flush()
    expect(checks.view.isConfirmed('honest', 'inference', 1)).toBe(true)
  })

  it('counts a check unanswered after the timeout as failed, and aborts it', async () => {
    const { time, prober, checks, state } = setup()
    checks.view.probed('slow', 'embedding', 0, 'ok')
    state.addCommit(commit('slow', seed, ['embedding']))
    await time.runUntil(time.now() + 19_000)
    expect(checks.view.isConfirmed('slow', 'embedding', 1)).toBe(true)
    await time.runUntil(time.now() + 2_000)
    expect(prober.calls[0]?.signal.aborted).toBe(true)
    expect(checks.view.isConfirmed('slow', 'embedding', 1)).toBe(false)
  })

  it('records nothing for an inconclusive check (a busy peer)', async () => {
    const { prober, checks, state } = setup()
    checks.view.probed('busy', 'inference', 0, 'ok')
    state.addCommit(commit('busy', seed, ['inference']))
    await flush()
    prober.calls[0]?.settle('inconclusive')
    await flush()
    expect(checks.view.isConfirmed('busy', 'inference', 1)).toBe(true)
  })

  it('runs at most maxInFlight checks at once, the others waiting their turn', async () => {
    const { prober, state } = setup({ maxInFlight: 2 })
    for (const peer of ['a', 'b', 'c']) state.addCommit(commit(peer, seed, ['inference']))
    await flush()
    expect(prober.calls.map(c => c.peer)).toEqual(['a', 'b'])
    prober.calls[0]?.settle('ok')
    await flush()
    expect(prober.calls.map(c => c.peer)).toEqual(['a', 'b', 'c'])
  })

  it('runs one check per peer at a time', async () => {
    const { prober, state } = setup()
    state.addCommit(commit('a', seed, ['inference', 'embedding', 'storage', 'memory']))
    await flush()
    expect(prober.calls).toHaveLength(1)
  })

  it('runs at most perChecker checks a round', async () => {
    const { prober, state } = setup({ maxInFlight: 10, perChecker: 3 })
    for (const peer of ['a', 'b', 'c', 'd', 'e']) state.addCommit(commit(peer, seed, ['inference']))
    await flush()
    expect(prober.calls).toHaveLength(3)
    expect(new Set(prober.calls.map(c => c.peer)).size).toBe(prober.calls.length)
  })
})

describe('the probe jobs', () => {
  const jobs = (over: Partial<ProbeJobs>): ProbeJobs => ({
    announcedModels: () => ['stories260K'],
    complete: async () => 'there was',
    embed: async () => 1,
    fetchBlock: async (peer, cid) => { throw new PeerLacksBlockError(peer, cid.toString()) },
    queryMemory: async () => {},
    ...over
  })
  const signal = new AbortController().signal

  it('fails a liar: inference with no announced model, storage that is off, a refused protocol', async () => {
    const prober = new NetworkCapabilityProber(jobs({
      announcedModels: () => [],
      fetchBlock: async peer => { throw new RemoteBlockError(peer, 'ERR_STORAGE_OFF', 'off') },
      embed: async () => { throw new Error('protocol selection failed') },
      queryMemory: async () => { throw new Error('stream reset') }
    }))
    for (const capability of ['inference', 'storage', 'embedding', 'memory'] as const) expect(await prober.probe('liar', capability, 1, { signal })).toBe('failed')
  })

  it('passes a server that answers: a few sampled tokens of an announced model, a vector, not-found for a block nobody holds', async () => {
    const requests: ValidChatRequest[] = []
    const prober = new NetworkCapabilityProber(jobs({ complete: async (_peer, request) => { requests.push(request); return 'x' } }))
    for (const capability of ['inference', 'embedding', 'storage', 'memory'] as const) expect(await prober.probe('honest', capability, 1, { signal })).toBe('ok')
    expect(requests[0]).toMatchObject({ model: 'stories260K', max_tokens: PROBE_MAX_TOKENS, temperature: 1 })
    expect(requests[0]?.seed).toBeTypeOf('number')
  })

  it('concludes nothing from busy, or from a refusal of the checker\'s embedding model', async () => {
    const prober = new NetworkCapabilityProber(jobs({
      complete: async peer => { throw new PeerBusyError(peer) },
      embed: async peer => { throw new RemoteEmbeddingError(peer, 'ERR_MODEL_NOT_SERVED', 'another model') }
    }))
    expect(await prober.probe('x', 'inference', 1, { signal })).toBe('inconclusive')
    expect(await prober.probe('x', 'embedding', 1, { signal })).toBe('inconclusive')
  })
})

/** Serves what each peer can really do: the liar serves nothing it claims. */
class ScriptedProber implements CapabilityProber {
  calls = 0
  readonly probed: string[] = []
  constructor (private readonly time: VirtualTime, private readonly serves: (peer: string, capability: CapabilityName) => boolean) {}
  async probe (peer: string, capability: CapabilityName): Promise<ProbeOutcome> {
    this.calls++
    this.probed.push(peer)
    await this.time.sleep(150)
    return this.serves(peer, capability) ? 'ok' : 'failed'
  }
}

describe('capability liars on the pulse (virtual time)', () => {
  it('a liar claiming inference and embedding earns no bonus; an honest server earns its bonus from the round after its first check', async () => {
    const bus = new PulseBus(7)
    const names = new Map<string, string>()
    const probers: ScriptedProber[] = []
    const prober = (): ScriptedProber => {
      const p = new ScriptedProber(bus.time, (peer, capability) => names.get(peer) === 'server' && (capability === 'inference' || capability === 'embedding'))
      probers.push(p)
      return p
    }
    const spotChecks = { rate: 1 }
    const claimed: CapabilityName[] = ['inference', 'embedding', 'caching']
    const nodes = bus.add([
      ...['v1', 'v2', 'v3', 'v4'].map(name => ({ name, kind: 'honest' as const, aged: true, prober: prober(), spotChecks })),
      { name: 'server', kind: 'honest', aged: true, caps: claimed, prober: prober(), spotChecks },
      { name: 'liar', kind: 'honest', aged: true, caps: claimed, prober: prober(), spotChecks }
    ])
    for (const node of nodes) names.set(node.signer.peerId, node.name)
    await bus.runRounds(7)
    const last = bus.round
    const committed = (name: string) => Array.from({ length: 7 }, (_, i) => bus.node(name).book.get(last - 7 + i)).filter(r => r.committed)
    expect(committed('liar')).toHaveLength(5)
    for (const r of committed('liar')) {
      expect(r.verified).toBe(true)
      expect(r.caps).toEqual(claimed)
      expect(r.confirmedCaps).toEqual([])
    }
    // In the round of its first check only the checker has seen the server work; every voter has from the next.
    const [first, ...later] = committed('server')
    expect(first?.confirmedCaps).toEqual([])
    for (const r of later) {
      expect(r.verified).toBe(true)
      expect(r.confirmedCaps).toEqual(claimed)
    }
    const points = (name: string) => bus.node(name).book.points().filter(p => p.round >= last - 4 && p.round < last)
    for (const p of points('liar')) expect(p.capability).toBe(1)
    for (const p of points('server')) expect(p.capability).toBeCloseTo(multiplierOf(claimed), 12)
    expect(points('server')).toHaveLength(4)
    expect(probers.reduce((n, p) => n + p.calls, 0)).toBeGreaterThan(0)
  })

  it('a fresh key that makes up a seed and lists Sybils claiming every capability spends no checker\'s budget', async () => {
    const bus = new PulseBus(7)
    const names = new Map<string, string>()
    const probers: ScriptedProber[] = []
    const spotChecks = { rate: 1 }
    const claimed: CapabilityName[] = ['inference', 'embedding', 'caching']
    const nodes = bus.add([
      ...['v1', 'v2', 'v3', 'v4'].map(name => ({ name, kind: 'honest' as const, aged: true, spotChecks })),
      { name: 'server', kind: 'honest' as const, aged: true, caps: claimed, spotChecks }
    ].map(node => {
      const prober = new ScriptedProber(bus.time, (peer, capability) => names.get(peer) === 'server' && (capability === 'inference' || capability === 'embedding'))
      probers.push(prober)
      return { ...node, prober }
    }))
    for (const node of nodes) names.set(node.signer.peerId, node.name)
    const leader = bus.freshKey()
    const sybils = Array.from({ length: 12 }, () => bus.freshKey())
    const sybilCaps: CapabilityName[] = ['inference', 'embedding', 'storage', 'memory']
    const rootOf = (peer: string): Uint8Array => sha256Of(utf8(peer))
    for (let i = 0; i < 6; i++) {
      // Just before each round, a made-up seed for it: a leader's commit and challenge listing everyone, then the Sybils' commits.
      await bus.runTo(0.95)
      const r = bus.round + 1
      const madeUp = sha256Of(utf8(`made up ${r}`))
      const listed = [leader, ...sybils].map(key => key.peerId).concat(nodes.map(n => n.signer.peerId)).sort().map((peer): [string, Uint8Array] => [peer, rootOf(peer)])
      await bus.inject(leader, { t: 'commit', net: NET, r, peer: leader.peerId, seed: madeUp, root: rootOf(leader.peerId), n: N, caps: [], sid: new Uint8Array(8) })
      await bus.inject(leader, { t: 'challenge', net: NET, r, peer: leader.peerId, seed: madeUp, commits: listed, k: 4, ...await bus.proofs(leader, r, madeUp, listed) })
      for (const sybil of sybils) await bus.inject(sybil, { t: 'commit', net: NET, r, peer: sybil.peerId, seed: madeUp, root: rootOf(sybil.peerId), n: N, caps: sybilCaps, sid: new Uint8Array(8) })
      await bus.runRounds(1)
    }
    await bus.runRounds(1)
    const probed = probers.flatMap(p => p.probed)
    expect(probed.filter(peer => !names.has(peer))).toEqual([])
    expect(probed.filter(peer => names.get(peer) === 'server').length).toBeGreaterThan(0)
    const last = bus.round - 1
    // Its first committed round is its first check's; every one after is confirmed, as without the attack.
    for (let r = last - 3; r <= last; r++) expect(bus.node('server').book.get(r).confirmedCaps).toEqual(claimed)
  })
})
