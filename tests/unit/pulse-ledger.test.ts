import 'fake-indexeddb/auto'
import { describe, expect, it, vi } from 'vitest'
import { PulseLedger } from '../../src/net/pulse-ledger.ts'
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
