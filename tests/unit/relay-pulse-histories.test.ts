import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { AGE_ROUNDS, MAX_HISTORIES, parseHistorySnapshots } from '../../src/core/pulse/validators.ts'
import { MAX_KEPT_NETWORKS, RelayPulseHistories } from '../../src/relay/pulse-histories.ts'

let dir: string
let file: string

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'relay-histories-'))
  file = join(dir, 'history.json')
})
afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

async function restarted (network = 'dev'): Promise<RelayPulseHistories> {
  const histories = new RelayPulseHistories(network, [], file)
  await histories.start()
  return histories
}

describe('RelayPulseHistories', () => {
  it('keeps an aged peer aged across a restart, per network id', async () => {
    const before = await restarted()
    for (let round = 1; round <= AGE_ROUNDS; round++) before.of('dev-t6').noteVerified('veteran', round)
    before.of('dev-t12').noteVerified('newcomer', 1)
    await before.stop()

    const after = await restarted()
    expect(after.of('dev-t6').isAged('veteran')).toBe(true)
    expect(after.of('dev-t6').verifiedRounds('newcomer')).toBe(0)
    expect(after.of('dev-t12').verifiedRounds('newcomer')).toBe(1)
    // Rounds already counted stay counted once.
    after.of('dev-t6').noteVerified('veteran', AGE_ROUNDS)
    expect(after.of('dev-t6').verifiedRounds('veteran')).toBe(AGE_ROUNDS)
    await after.stop()
  })

  it('shares one history between the committees of a network', async () => {
    const histories = await restarted()
    expect(histories.of('dev-t6')).toBe(histories.of('dev-t6'))
    await histories.stop()
  })

  it('keeps what it loaded for a network no service asked for yet', async () => {
    const first = await restarted()
    first.of('dev-t6').noteVerified('p', 1)
    await first.stop()
    await (await restarted()).stop()
    expect((await restarted()).of('dev-t6').verifiedRounds('p')).toBe(1)
  })

  it('drops the networks of other relays and keeps at most MAX_KEPT_NETWORKS', async () => {
    const networks: Record<string, unknown> = { prod: [{ peer: 'p', verifiedRounds: 9, lastRound: 9 }] }
    for (let t = 1; t <= MAX_KEPT_NETWORKS + 4; t++) networks[`dev-t${t}`] = [{ peer: 'p', verifiedRounds: t, lastRound: t }]
    await writeFile(file, JSON.stringify({ version: 1, networks }))
    const histories = await restarted()
    expect(histories.of('prod').verifiedRounds('p')).toBe(0)
    expect(histories.of('dev-t3').verifiedRounds('p')).toBe(3)
    for (let t = 1; t <= MAX_KEPT_NETWORKS + 4; t++) histories.of(`dev-t${t}`)
    await histories.stop()
    const kept = JSON.parse(await readFile(file, 'utf8')) as { networks: Record<string, unknown> }
    expect(Object.keys(kept.networks)).toHaveLength(MAX_KEPT_NETWORKS)
    expect(kept.networks).toHaveProperty(`dev-t${MAX_KEPT_NETWORKS + 4}`)
  })

  it('moves a damaged file aside instead of overwriting it, and starts empty', async () => {
    await writeFile(file, '{"version":1,"networks":')
    const histories = await restarted()
    expect(histories.of('dev').verifiedRounds('p')).toBe(0)
    expect(await readFile(`${file}.damaged`, 'utf8')).toBe('{"version":1,"networks":')
    histories.of('dev').noteVerified('p', 1)
    await histories.stop()
    expect((await restarted()).of('dev').verifiedRounds('p')).toBe(1)
  })

  it('sets aside a file of another format', async () => {
    await writeFile(file, JSON.stringify([{ peer: 'p', verifiedRounds: 50, lastRound: 1 }]))
    expect((await restarted()).of('dev').verifiedRounds('p')).toBe(0)
    expect(await readFile(`${file}.damaged`, 'utf8')).toContain('verifiedRounds')
  })

  it('keeps nothing without a file', async () => {
    const histories = new RelayPulseHistories('dev', [])
    await histories.start()
    histories.of('dev').noteVerified('p', 1)
    await histories.stop()
    expect((await restarted()).of('dev').verifiedRounds('p')).toBe(0)
  })
})

describe('parseHistorySnapshots', () => {
  it('drops malformed entries one by one and reads at most MAX_HISTORIES', () => {
    expect(parseHistorySnapshots({ peer: 'p' })).toEqual([])
    expect(parseHistorySnapshots([
      { peer: 'ok', verifiedRounds: 3, lastRound: 4, extra: 'dropped' },
      { peer: 'negative', verifiedRounds: -1, lastRound: 4 },
      { peer: 'x'.repeat(129), verifiedRounds: 1, lastRound: 1 },
      { peer: 'fraction', verifiedRounds: 1.5, lastRound: 1 },
      null,
      'p'
    ])).toEqual([{ peer: 'ok', verifiedRounds: 3, lastRound: 4 }])
    const many = Array.from({ length: MAX_HISTORIES + 10 }, (_, i) => ({ peer: `p${i}`, verifiedRounds: 1, lastRound: 1 }))
    expect(parseHistorySnapshots(many)).toHaveLength(MAX_HISTORIES)
  })
})
