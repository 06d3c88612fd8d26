import { expect, test } from '@playwright/test'
import { openNode, type TestNode } from './nodes.ts'
import { startRelayProcess, type RelayProcess } from './relay-process.ts'
import type { RoundSummary } from '../../src/node/api.ts'

let relay: RelayProcess
let nodes: TestNode[] = []

test.beforeAll(async () => { relay = await startRelayProcess() })
test.afterAll(async () => {
  await Promise.all(nodes.map(async n => { await n.context.close() }))
  await relay.stop()
})

async function history (node: TestNode, n = 20): Promise<RoundSummary[]> {
  return await node.page.evaluate(k => window.hyperspace?.pulse.history(k) ?? [], n)
}

test('three pages run pulse rounds, each verified every round after joining, points by the formula', async ({ browser }) => {
  test.setTimeout(180_000)
  nodes = await Promise.all([0, 1, 2].map(async () => await openNode(browser, [relay.addr], '&round=6')))
  // Joining takes a round to learn the beacon; then every round must verify.
  for (const node of nodes) node.page.on('console', m => { if (m.type() === 'warning' || m.type() === 'error') console.log(node.peerId.slice(-6), m.text().slice(0, 300)) })
  await new Promise(resolve => setTimeout(resolve, 25_000))
  for (const node of nodes) {
    const rounds = await history(node)
    console.log(node.peerId.slice(-6), JSON.stringify(await node.page.evaluate(() => window.hyperspace?.pulse.current())), JSON.stringify(rounds.map(r => [r.round % 1000, r.committed ? 'C' : '-', r.revealed ? 'R' : '-', r.verified ? 'V' : '-', r.strike?.reason ?? r.skipped ?? ''])))
  }
  await expect.poll(async () => (await history(nodes[0] as TestNode)).filter(r => r.verified).length, { timeout: 90_000, intervals: [1000] }).toBeGreaterThanOrEqual(3)
  for (const node of nodes) {
    const rounds = await history(node)
    console.log(node.peerId.slice(-6), JSON.stringify(rounds.map(r => [r.round % 1000, r.committed ? 'C' : '-', r.revealed ? 'R' : '-', r.verified ? 'V' : '-', r.strike?.reason ?? r.skipped ?? ''])))
  }
})
