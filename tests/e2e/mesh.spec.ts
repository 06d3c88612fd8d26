import { expect, test } from '@playwright/test'
import { openNode, peersOf, statusOf, waitForFullMesh, waitForNode, type TestNode } from './nodes.ts'
import { startRelayProcess } from './relay-process.ts'
import { sharedRelay } from './network.ts'

const shared = sharedRelay()

test('three nodes form a full mesh of direct WebRTC connections and gossip reaches all', async ({ browser }) => {
  shared.nodes = await Promise.all([0, 1, 2].map(async () => await openNode(browser, [shared.relay.addr])))
  expect(new Set(shared.nodes.map(n => n.peerId)).size).toBe(3)

  for (const node of shared.nodes) {
    await expect.poll(async () => (await statusOf(node.page)).relays[0]?.reserved).toBe(true)
  }
  await waitForFullMesh(shared.nodes)

  // The UI shows the same: each page lists both others as webrtc peers.
  for (const node of shared.nodes) {
    for (const other of shared.nodes.filter(n => n !== node)) {
      await expect(node.page.locator(`[data-testid="peer-row"][data-peer-id="${other.peerId}"]`)).toHaveAttribute('data-transport', 'webrtc')
    }
  }

  // A capability announcement from A (gossip, signed by A) reaches B and C.
  const [a, b, c] = shared.nodes as [TestNode, TestNode, TestNode]
  await a.page.evaluate(async () => { await window.hyperspace?.setProfile('storage') })
  for (const receiver of [b, c]) {
    await expect.poll(async () => (await peersOf(receiver.page)).find(p => p.peerId === a.peerId)?.profile).toBe('storage')
    await expect.poll(async () => (await peersOf(receiver.page)).find(p => p.peerId === a.peerId)?.capabilities).toEqual(['storage', 'memory'])
  }
  // The relay announces itself like any node: browsers list what it offers.
  await expect.poll(async () => (await peersOf(a.page)).find(p => p.peerId === shared.relay.peerId)?.working).toEqual(['relay', 'validation'])
  // Latency comes from libp2p ping over the direct connection.
  await expect.poll(async () => (await peersOf(b.page)).find(p => p.peerId === a.peerId)?.latencyMs ?? null).not.toBeNull()
})

test('a reloaded page keeps its peer id', async () => {
  const node = shared.nodes[0]
  if (node === undefined) throw new Error('needs the mesh test first')
  const reloadedAt = await node.page.evaluate(() => Date.now())
  await node.page.reload()
  const status = await waitForNode(node.page)
  expect(status.peerId).toBe(node.peerId)
  await waitForFullMesh(shared.nodes, 30_000)
  // The others probe their connections to the page's old run as soon as its relayed connection
  // closes, and are left with connections to its new run only.
  for (const other of shared.nodes.filter(n => n !== node)) {
    await expect.poll(async () => (await peersOf(other.page)).find(p => p.peerId === node.peerId && p.transport === 'webrtc')?.connectedAt ?? 0, { timeout: 30_000 }).toBeGreaterThan(reloadedAt)
  }
})

test('after the relay is killed and restarted every page reconnects and re-reserves without a reload', async () => {
  await shared.relay.kill()
  for (const node of shared.nodes) {
    await expect.poll(async () => (await statusOf(node.page)).relays[0]?.connected).toBe(false)
  }
  shared.relay = await startRelayProcess({ port: shared.relay.port, keyFile: shared.relay.keyFile })
  for (const node of shared.nodes) {
    await expect.poll(async () => {
      const relayStatus = (await statusOf(node.page)).relays[0]
      return relayStatus?.connected === true && relayStatus.reserved
    }, { timeout: 60_000 }).toBe(true)
    await expect(node.page.getByTestId('connection-state')).toHaveText('online')
  }
  // The pages are still meshed and gossip still flows through the restarted relay.
  await waitForFullMesh(shared.nodes)
  const [a, b] = shared.nodes as [TestNode, TestNode]
  await a.page.evaluate(async () => { await window.hyperspace?.setProfile('embedding') })
  await expect.poll(async () => (await peersOf(b.page)).find(p => p.peerId === a.peerId)?.profile).toBe('embedding')
})

test('with two bootstrap relays, losing one keeps the node online and meshed through the other', async ({ browser }) => {
  const spare = await startRelayProcess()
  const pair = await Promise.all([0, 1].map(async () => await openNode(browser, [shared.relay.addr, spare.addr])))
  try {
    for (const node of pair) {
      await expect.poll(async () => (await statusOf(node.page)).relays.filter(r => r.reserved).length).toBe(2)
    }
    await waitForFullMesh(pair)
    await spare.kill()
    for (const node of pair) {
      await expect.poll(async () => (await statusOf(node.page)).relays.find(r => r.peerId === spare.peerId)?.connected).toBe(false)
      const status = await statusOf(node.page)
      expect(status.state).toBe('online')
      expect(status.relays.find(r => r.peerId === shared.relay.peerId)).toMatchObject({ connected: true, reserved: true })
    }
    // The direct connections never depended on the lost relay.
    await waitForFullMesh(pair, 5_000)
  } finally {
    await Promise.all(pair.map(async n => { await n.context.close() }))
    await spare.stop()
  }
})
