import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { decodeCheckerFrame, decodeProverFrame, encodeProofFrame, FRAME_LIMITS, POINTS_PROTOCOL, type ProverFrame } from '../../src/core/wire/points.ts'
import { ASK_TIMEOUT_MS, PointsService, PROOFS_AT_ONCE, PROOFS_HELD, PROOFS_RESERVED } from '../../src/net/points-service.ts'
import { verifyPulseSignature } from '../../src/net/pulse-keys.ts'
import { connect, memoryLibp2p, strangerOf } from './memory-libp2p.ts'
import { steppedClock } from './stepped-clock.ts'
import { until } from './waiting.ts'
import type { ProofHistory } from '../../src/core/points-proof/prove.ts'
import type { Libp2p, Stream } from '@libp2p/interface'

/**
 * Peers attack a prover's `/hyperspace/points/1.0.0` (real libp2p nodes, the real PointsService):
 * bare nodes that open proof streams by hand and then wait, against a prover with an empty history
 * that an honest checker still gets its answer from.
 */

const NET = 'points-attacks'
const ROUND_MS = 5_000
const ROUND = 10_000

describe('attacks on a points prover', () => {
  const clock = steppedClock(ROUND * ROUND_MS)
  /** While set, the prover's history reads wait for it: proofs being prepared hold their places. */
  let reading: Promise<void> | undefined
  let readsStarted = 0
  const history: ProofHistory = {
    self: '',
    rounds: () => [],
    attestations: async () => {
      readsStarted++
      await reading
      return []
    },
    served: () => []
  }
  let prover: Libp2p
  let service: PointsService
  const peers: Libp2p[] = []
  /** The streams the tests opened by hand: reset after each test, whatever it found. */
  const opened: Stream[] = []
  /** The peers the prover counts established. */
  const established = new Set<string>()

  const peer = async (): Promise<Libp2p> => await strangerOf(prover, peers)
  const establishedPeer = async (): Promise<Libp2p> => {
    const node = await peer()
    established.add(node.peerId.toString())
    return node
  }

  function checker (of: Libp2p): PointsService {
    return new PointsService(of, { networkId: NET, roundMs: ROUND_MS, scheduler: clock, verify: verifyPulseSignature, history, counts: () => true })
  }

  async function open (from: Libp2p): Promise<{ send: (frame: Parameters<typeof encodeProofFrame>[0]) => Promise<void>, summary: () => Promise<ProverFrame> }> {
    const stream = await from.dialProtocol(peerIdFromString(prover.peerId.toString()), POINTS_PROTOCOL)
    opened.push(stream)
    const lp = lpStream(stream, { maxDataLength: FRAME_LIMITS.summary })
    return {
      send: async frame => { await lp.write(encodeProofFrame(frame)) },
      summary: async () => decodeProverFrame((await lp.read({ signal: AbortSignal.timeout(5_000) })).subarray(), 'summary')
    }
  }

  const ask = { t: 'ask', net: NET, from: ROUND - 10, to: ROUND - 1 } as const

  beforeAll(async () => {
    prover = await memoryLibp2p('prover')
    history.self = prover.peerId.toString()
    service = new PointsService(prover, { networkId: NET, roundMs: ROUND_MS, scheduler: clock, verify: verifyPulseSignature, history, counts: () => true, established: id => established.has(id) })
    await service.start()
  }, 20_000)

  afterEach(() => {
    for (const stream of opened.splice(0)) stream.abort(new Error('the test ended'))
  })

  afterAll(async () => {
    await service.stop()
    await Promise.all([prover, ...peers].map(async node => { await node.stop() }))
  })

  it('two free keys that open proof streams and send nothing do not keep the prover from answering others', async () => {
    for (let i = 0; i < 2; i++) await open(await peer())
    const result = await checker(await peer()).check(prover.peerId.toString())
    expect(result).toMatchObject({ checked: true, rounds: 0 })
  })

  it('a peer has one proof stream at a time: its second, while the first waits for its ask, is busy at once', async () => {
    const staller = await peer()
    await open(staller)
    const second = await open(staller)
    await second.send(ask)
    expect(await second.summary()).toMatchObject({ t: 'error', code: 'ERR_PEER_BUSY' })
  })

  it('two free keys that ask and never pick do not keep the prover from answering others', async () => {
    for (let i = 0; i < 2; i++) {
      const staller = await open(await peer())
      await staller.send(ask)
      expect(await staller.summary()).toMatchObject({ t: 'summary', rounds: [] })
    }
    const result = await checker(await peer()).check(prover.peerId.toString())
    expect(result).toMatchObject({ checked: true, rounds: 0 })
  })

  const strangersHeld = PROOFS_HELD - PROOFS_RESERVED.held

  it(`free keys that ask and never pick make the prover hold at most ${strangersHeld} proofs; established checkers still get theirs, and the stallers' places free when the pick is late`, async () => {
    for (let i = 0; i < strangersHeld; i++) {
      const staller = await open(await peer())
      await staller.send(ask)
      expect(await staller.summary()).toMatchObject({ t: 'summary' })
    }
    const late = await open(await peer())
    await late.send(ask)
    expect(await late.summary()).toMatchObject({ t: 'error', code: 'ERR_PEER_BUSY' })
    expect(await checker(await establishedPeer()).check(prover.peerId.toString())).toMatchObject({ checked: true, rounds: 0 })
    // The stallers' picks are late after ASK_TIMEOUT_MS: then a stranger's check gets its answer too.
    const stranger = checker(await peer())
    const deadline = Date.now() + 4 * ASK_TIMEOUT_MS
    let result = await stranger.check(prover.peerId.toString())
    while (!result.checked && Date.now() < deadline) {
      await new Promise(resolve => setTimeout(resolve, 250))
      result = await stranger.check(prover.peerId.toString())
    }
    expect(result).toMatchObject({ checked: true, rounds: 0 })
  }, 30_000)

  it(`established peers may hold all ${PROOFS_HELD} places, strangers never the reserved ones`, async () => {
    for (let i = 0; i < PROOFS_HELD; i++) {
      const staller = await open(await establishedPeer())
      await staller.send(ask)
      expect(await staller.summary()).toMatchObject({ t: 'summary' })
    }
    for (const from of [await establishedPeer(), await peer()]) {
      const late = await open(from)
      await late.send(ask)
      expect(await late.summary()).toMatchObject({ t: 'error', code: 'ERR_PEER_BUSY' })
    }
  }, 30_000)

  it(`proofs being prepared hold the prover's places: strangers prepare ${PROOFS_AT_ONCE - PROOFS_RESERVED.preparing} at once, established peers up to ${PROOFS_AT_ONCE}`, async () => {
    let done = (): void => {}
    readsStarted = 0
    reading = new Promise(resolve => { done = resolve })
    const preparing: Array<{ summary: () => Promise<ProverFrame> }> = []
    const ask1 = async (from: Libp2p): Promise<{ summary: () => Promise<ProverFrame> }> => {
      const asker = await open(from)
      await asker.send(ask)
      return asker
    }
    for (let i = 0; i < PROOFS_AT_ONCE - PROOFS_RESERVED.preparing; i++) preparing.push(await ask1(await peer()))
    await until(() => readsStarted === preparing.length, 'the strangers\' proofs to be prepared')
    expect(await (await ask1(await peer())).summary()).toMatchObject({ t: 'error', code: 'ERR_PEER_BUSY' })
    while (preparing.length < PROOFS_AT_ONCE) preparing.push(await ask1(await establishedPeer()))
    await until(() => readsStarted === PROOFS_AT_ONCE, 'the proofs to be prepared')
    expect(await (await ask1(await establishedPeer())).summary()).toMatchObject({ t: 'error', code: 'ERR_PEER_BUSY' })
    done()
    reading = undefined
    for (const asker of preparing) expect(await asker.summary()).toMatchObject({ t: 'summary' })
  })
})

describe('a prover that withdraws once it sees the picks', () => {
  let liar: Libp2p
  let checkerNode: Libp2p
  let checks: PointsService
  /** What the liar does after reading the checker's pick. */
  let afterPick: (stream: Stream, lp: ReturnType<typeof lpStream>) => Promise<void> = async () => {}

  beforeAll(async () => {
    liar = await memoryLibp2p('withdrawing-prover')
    checkerNode = await memoryLibp2p('checker')
    await connect(checkerNode, liar)
    checks = new PointsService(checkerNode, { networkId: NET, roundMs: ROUND_MS, scheduler: steppedClock(ROUND * ROUND_MS), verify: verifyPulseSignature, history: { self: checkerNode.peerId.toString(), rounds: () => [], attestations: async () => [], served: () => [] }, counts: () => true })
    await liar.handle(POINTS_PROTOCOL, stream => {
      const lp = lpStream(stream, { maxDataLength: FRAME_LIMITS.pick })
      void (async () => {
        const ask = decodeCheckerFrame((await lp.read()).subarray(), 'ask')
        await lp.write(encodeProofFrame({ t: 'summary', from: ask.from, to: ask.to, rounds: [], receipts: [] }))
        await lp.read()
        await afterPick(stream, lp)
      })().catch(() => {})
    })
  }, 20_000)

  afterAll(async () => {
    await Promise.all([liar, checkerNode].map(async node => { await node.stop() }))
  })

  it('an error or a closed stream after the pick is "withdrew", not "refused" or "unreachable"', async () => {
    afterPick = async (_stream, lp) => { await lp.write(encodeProofFrame({ t: 'error', code: 'ERR_PEER_BUSY', message: 'busy after all' })) }
    expect(await checks.check(liar.peerId.toString())).toMatchObject({ checked: false, reason: 'withdrew' })
    afterPick = async stream => { stream.abort(new Error('gone')) }
    expect(await checks.check(liar.peerId.toString())).toMatchObject({ checked: false, reason: 'withdrew' })
  })
})
