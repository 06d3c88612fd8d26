import { expect, test } from '@playwright/test'
import { openNode, waitForNode, type TestNode } from './nodes.ts'
import { sharedRelay } from './network.ts'
import type { PointsSummary, RoundSummary } from '../../src/node/api.ts'

const ROUND_MS = 6_000

const shared = sharedRelay()

async function history (node: TestNode, n = 50): Promise<RoundSummary[]> {
  return await node.page.evaluate(k => window.hyperspace?.pulse.history(k) ?? [], n)
}

async function points (node: TestNode): Promise<PointsSummary> {
  return await node.page.evaluate(() => window.hyperspace?.points() as PointsSummary)
}

/** Rounds whose verdicts are in: everything before the current round. */
function finished (rounds: RoundSummary[]): RoundSummary[] {
  const current = Math.floor(Date.now() / ROUND_MS)
  return rounds.filter(r => r.round < current)
}

/** DESIGN section 6 by hand, for a first-day node committing no working capability. */
function expectedPoints (verifiedRounds: number[]): number {
  const perRound = 100 * ROUND_MS / 86_400_000
  const start = Math.min(...verifiedRounds)
  return verifiedRounds.reduce((sum, round) => {
    const hours = (round - start) * ROUND_MS / 3_600_000
    return sum + perRound * (1 + 0.5 * Math.log(1 + hours) / Math.log(721)) * 0.5
  }, 0)
}

test('three pages run pulse rounds, each verified in every round after joining, points by the formula', async ({ browser }) => {
  test.setTimeout(180_000)
  // The relay profile enables nothing a browser can run, so every round's capability bonus is 1
  // (the relay process validates); other profiles start earning their bonus once a model loads.
  shared.nodes = await Promise.all([0, 1, 2].map(async () => await openNode(browser, [shared.relay.addr], '&round=6&profile=relay')))
  // The `pulse` event carries pulse.current() as the round moves on. The dashboard's countdown moves
  // with those events and, between them, with the page's clock: a change 300 ms or more after the
  // last event is the clock's.
  for (const node of shared.nodes) {
    await node.page.evaluate(() => {
      const seen: number[] = []
      const clock = { ticks: 0, lastEvent: 0 }
      Object.assign(window, { pulseRounds: seen, countdownClock: clock })
      window.hyperspace?.addEventListener('pulse', evt => {
        seen.push((evt as CustomEvent<{ round: number }>).detail.round)
        clock.lastEvent = performance.now()
      })
      const inCountdown = (record: MutationRecord): boolean => {
        const element = record.target instanceof Element ? record.target : record.target.parentElement
        return element?.closest('[data-testid="pulse-countdown"]') != null
      }
      new MutationObserver(records => { if (records.some(inCountdown) && performance.now() - clock.lastEvent >= 300) clock.ticks++ })
        .observe(document.body, { subtree: true, characterData: true, childList: true })
    })
  }
  for (const node of shared.nodes) {
    await expect.poll(async () => finished(await history(node)).filter(r => r.committed).length, { timeout: 90_000, intervals: [1000] }).toBeGreaterThanOrEqual(3)
  }
  for (const node of shared.nodes) {
    const rounds = finished(await history(node)).sort((a, b) => a.round - b.round)
    const first = rounds.findIndex(r => r.committed)
    const joined = rounds.slice(first)
    // Every round from the first commit on: committed, revealed, no strike, and verified by someone
    // else. Three pages and the relay share two cores with 6-second rounds, so one round's verdict
    // may miss its window on a loaded machine: at most one round per page goes without a verdict.
    for (const round of joined) expect([round.round, round.committed, round.revealed, round.strike]).toEqual([round.round, true, true, undefined])
    expect(joined.filter(round => !round.verified).length, 'rounds without a verdict').toBeLessThanOrEqual(1)
    for (let i = 1; i < joined.length; i++) expect((joined[i] as RoundSummary).round).toBe((joined[i - 1] as RoundSummary).round + 1)
    const summary = await points(node)
    const verified = (await history(node)).filter(r => r.verified).map(r => r.round)
    expect(summary.presence).toBeCloseTo(expectedPoints(verified), 9)
    expect(summary.total).toBeCloseTo(summary.presence, 12)
    // The dashboard shows the same: verified rounds in the strip, the total, and nothing to fix.
    await expect(node.page.locator('[data-testid="round-cell"][data-outcome="verified"]').first()).toBeVisible()
    await expect(node.page.locator('[data-testid="round-cell"][data-outcome="struck"]')).toHaveCount(0)
    const shown = Number(await node.page.getByTestId('points-total').textContent())
    expect(Math.abs(shown - (await points(node)).total)).toBeLessThan(0.01)
    await expect(node.page.getByTestId('earning-summary')).toHaveAttribute('data-ok', 'true')
    const pulseRounds = await node.page.evaluate(() => (window as unknown as { pulseRounds: number[] }).pulseRounds)
    expect(new Set(pulseRounds).size, 'rounds the pulse event named').toBeGreaterThanOrEqual(3)
    await expect.poll(async () => await node.page.evaluate(() => (window as unknown as { countdownClock: { ticks: number } }).countdownClock.ticks),
      { message: "the countdown moved by the page's clock, between pulse events", timeout: 15_000 }).toBeGreaterThan(0)
    // A young network: no page has the verified history a voter needs (docs/protocol.md, "Validators and
    // quorum"), so the relay, an anchor of every page's bootstrap list, is the one voter each round.
    await expect.poll(async () => await node.page.evaluate(() => window.hyperspace?.pulse.current()?.validators ?? 0), { timeout: 15_000, intervals: [500] }).toBe(1)
    // And the relay leads its rounds: a free key ground to rank first among the committers cannot.
    const relayId = shared.relay.addr.split('/p2p/').pop()
    await expect.poll(async () => await node.page.evaluate(() => {
      const current = window.hyperspace?.pulse.current()
      return current?.phase === 'commit' ? undefined : current?.leader
    }), { timeout: 15_000, intervals: [500] }).toBe(relayId)
    await expect(node.page.getByTestId('pulse-leader')).toContainText('relay', { timeout: 15_000 })
  }
})

test('after a reload mid-round the history and points are all still there', async () => {
  const node = shared.nodes[0] as TestNode
  const before = finished(await history(node))
  const pointsBefore = await points(node)
  // Reload in the middle of a round's reveal phase.
  const intoRound = Date.now() % ROUND_MS
  await node.page.waitForTimeout((ROUND_MS * 1.5 - intoRound) % ROUND_MS)
  await node.page.reload()
  await waitForNode(node.page)
  const after = await history(node)
  for (const round of before) expect(after.find(r => r.round === round.round)).toEqual(round)
  expect((await points(node)).presence).toBeGreaterThanOrEqual(pointsBefore.presence)
  // And it goes on earning after the reload.
  await expect.poll(async () => (await points(node)).presence, { timeout: 60_000, intervals: [1000] }).toBeGreaterThan(pointsBefore.presence)
})
