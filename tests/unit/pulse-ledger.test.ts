import 'fake-indexeddb/auto'
import { describe, expect, it, vi } from 'vitest'
import { multiplierOf } from '../../src/core/capabilities.ts'
import { presencePoints, summarize, type AttestedRound } from '../../src/core/points.ts'
import { FOLD_BATCH, PulseLedger, ROUNDS_KEPT } from '../../src/core/pulse/ledger.ts'
import { openHyperspaceDb } from '../../src/storage/database.ts'
import { PulseStore } from '../../src/storage/pulse-store.ts'

const T = 6_000
const SELF = '12D3KooWLedgerOwner'

describe('PulseLedger', () => {
  it('keeps round records across instances through IndexedDB, and derives points from them', async () => {
    const db = await openHyperspaceDb(`ledger-${crypto.randomUUID()}`)
    const ledger = new PulseLedger('dev-t6', SELF, T, new PulseStore(db))
    await ledger.load()
    await ledger.update(100, r => { r.committed = true; r.revealed = true; r.verified = true })
    await ledger.update(101, r => { r.committed = true; r.strikes.push({ validator: 'v', reason: 'wrong-row' }) })
    const reopened = new PulseLedger('dev-t6', SELF, T, new PulseStore(db))
    await reopened.load()
    expect(reopened.history(5).map(r => [r.round, r.verified, r.strike?.reason])).toEqual([[101, false, 'wrong-row'], [100, true, undefined]])
    expect(reopened.summary(101 * T).presence).toBeCloseTo(100 * T / 86_400_000 * 0.5, 12)
    // Another network's rounds are not this one's.
    const other = new PulseLedger('dev-t7', SELF, 7_000, new PulseStore(db))
    await other.load()
    expect(other.history(5)).toEqual([])
  })

  it('keeps the newest ROUNDS_KEPT records, folds the older ones, and its points stay equal (across a reload too)', async () => {
    const T90 = 90_000
    const db = await openHyperspaceDb(`ledger-${crypto.randomUUID()}`)
    const store = new PulseStore(db)
    const ledger = new PulseLedger('dev', SELF, T90, store)
    await ledger.load()
    // Four days at T = 90 s with missed rounds, long gaps (streaks that end) and confirmed capabilities.
    const start = 20_000 * 960
    const all: AttestedRound[] = []
    for (let i = 0; i < 2 * ROUNDS_KEPT; i++) {
      const round = start + i + (i > 1500 ? 40 : 0) + (i > 3000 ? 400 : 0)
      const verified = i % 7 !== 3
      const confirmed = i % 5 === 0 ? ['relay' as const] : []
      await ledger.update(round, r => { r.committed = true; r.verified = verified; r.confirmedCaps = confirmed })
      all.push({ round, verified, capability: multiplierOf(confirmed) })
    }
    const now = ((all.at(-1)?.round ?? 0) + 10) * T90
    const whole = summarize(presencePoints(all, T90), T90, now)
    expect(ledger.summary(now)).toEqual(whole)
    expect(ledger.history(10 * ROUNDS_KEPT).length).toBeLessThanOrEqual(ROUNDS_KEPT + FOLD_BATCH)
    expect((await store.all('dev', SELF)).length).toBeLessThanOrEqual(ROUNDS_KEPT + FOLD_BATCH)
    expect(ledger.get(start).committed).toBe(false)

    const reopened = new PulseLedger('dev', SELF, T90, new PulseStore(db))
    await reopened.load()
    expect(reopened.summary(now)).toEqual(whole)
    expect(reopened.history(3)).toEqual(ledger.history(3))
    // A verdict for a round already folded changes nothing.
    await reopened.update(start + 1, r => { r.verified = true })
    expect(reopened.summary(now)).toEqual(whole)
  })

  it('reading a round it has no record of creates none', () => {
    const ledger = new PulseLedger('dev-t6', SELF, T)
    expect(ledger.get(5).committed).toBe(false)
    expect(ledger.history(5)).toEqual([])
  })

  it('a store that fails (a full disk) costs persistence, not the record or the node', async () => {
    const failing = { saveRound: vi.fn(async () => { throw new DOMException('quota', 'QuotaExceededError') }) }
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const ledger = new PulseLedger('dev-t6', SELF, T, failing as unknown as PulseStore)
    await expect(ledger.update(7, r => { r.verified = true })).resolves.toBeUndefined()
    expect(ledger.get(7).verified).toBe(true)
    expect(warn).toHaveBeenCalled()
    warn.mockRestore()
  })
})
