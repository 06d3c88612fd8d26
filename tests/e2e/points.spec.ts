import { expect, test } from '@playwright/test'
import { openNode, waitForFullMesh, type TestNode } from './nodes.ts'
import { startRelayDeployment, type RelayProcess } from './relay-process.ts'
import type { PeerPointsEntry, RoundSummary } from '../../src/node/api.ts'

/**
 * Points anyone can check (issue 12), in real Chromium pages: one page asks another for the proof
 * of its points and shows them, recomputed, in its Peers table. Two relays, because a proof needs two
 * voters behind every round it claims and, in a network nobody has aged in yet, the relays of the
 * bootstrap list are the only voters. Each relay is told the other's peer id (`--anchor`), so that
 * both follow one leader in the young network, as the pages listing both do.
 */

const ROUND_MS = 6_000

let relays: RelayProcess[] = []
let nodes: TestNode[] = []

test.beforeAll(async () => { relays = await startRelayDeployment(2) })
test.afterAll(async () => {
  await Promise.all(nodes.map(async n => { await n.context.close() }))
  await Promise.all(relays.map(async r => { await r.stop() }))
})

async function verifiedRounds (node: TestNode): Promise<number> {
  const current = Math.floor(Date.now() / ROUND_MS)
  const rounds: RoundSummary[] = await node.page.evaluate(() => window.hyperspace?.pulse.history(50) ?? [])
  return rounds.filter(r => r.verified && r.round < current).length
}

test('a page shows another page\'s checked points in its Peers table', async ({ browser }) => {
  test.setTimeout(240_000)
  nodes = await Promise.all([0, 1].map(async () => await openNode(browser, relays.map(r => r.addr), '&round=6&profile=relay')))
  const [checker, prover] = nodes as [TestNode, TestNode]
  await waitForFullMesh(nodes)
  await expect.poll(async () => await verifiedRounds(prover), { timeout: 120_000, intervals: [1000] }).toBeGreaterThanOrEqual(3)

  const cell = checker.page.locator(`[data-testid="peer-row"][data-peer-id="${prover.peerId}"] [data-testid="peer-points"]`)
  await expect(cell).toBeVisible()
  // On demand: the button asks for the proof. A round counts once both relays' verdicts are in, so
  // the first proofs may claim nothing yet; ask again until the points show.
  await expect.poll(async () => {
    if (await cell.getAttribute('data-state') !== 'checking') await cell.getByTestId('peer-points-check').click()
    await expect(cell).not.toHaveAttribute('data-state', 'checking', { timeout: 30_000 })
    return Number(await cell.getAttribute('data-points') ?? 0)
  }, { timeout: 120_000, intervals: [11_000] }).toBeGreaterThan(0)

  await expect(cell).toHaveAttribute('data-state', 'checked')
  const entry = (await checker.page.evaluate(id => window.hyperspace?.points.checked().find(e => e.peerId === id), prover.peerId)) as PeerPointsEntry
  if (entry.result?.checked !== true) throw new Error(`not checked: ${JSON.stringify(entry.result)}`)
  expect(entry.result.rounds).toBeGreaterThanOrEqual(1)
  expect(entry.result.sampled.rounds).toBe(Math.min(48, entry.result.rounds))
  expect(await cell.locator('.ok').textContent()).toBe(entry.result.points.toFixed(2))
  // The checked points are the prover's own presence over the same rounds, recomputed from its proof:
  // never more than it shows for itself.
  const own = await prover.page.evaluate(() => window.hyperspace?.points().presence ?? 0)
  expect(entry.result.presence).toBeLessThanOrEqual(own + 1e-9)
  expect(entry.result.presence).toBeGreaterThan(0)
})
