import { expect, test, type Page } from '@playwright/test'
import { peersOf, statusOf, type TestNode } from './nodes.ts'
import { startNetwork, type TestNetwork } from './network.ts'
import type { ChatCompletion, NodeChatRequest } from '../../src/core/inference/chat.ts'
import type { ModelListing } from '../../src/core/inference/listing.ts'

/**
 * The DHT and broadcast routing tiers serve real requests (issue 19). A page serving its models
 * `unlisted` is named in no capability announcement, so a client finds it through its DHT provider
 * record; one serving `on-request` leaves no DHT record either and is found only by answering the
 * client's want on the inference topic. Each test starts its own relay: no DHT record of another
 * test's server is left on it.
 */
const MODEL = 'stories260K'
const PROMPT = 'Once upon a time'

let net: TestNetwork | undefined

test.afterEach(async () => {
  await net?.close()
  net = undefined
})

async function setListing (page: Page, listing: ModelListing): Promise<void> {
  await page.evaluate(async l => { await window.hyperspace?.setModelListing(l) }, listing)
}

async function pull (page: Page): Promise<void> {
  await page.evaluate(async model => { await window.hyperspace?.models.pull(model) }, MODEL)
}

async function chat (page: Page, route: NodeChatRequest['route']): Promise<ChatCompletion> {
  const request: NodeChatRequest = { model: MODEL, messages: [{ role: 'user', content: PROMPT }], max_tokens: 12, temperature: 0, route }
  return await page.evaluate(async req => await window.hyperspace?.chat.completions.create({ ...req, stream: false }), request) as ChatCompletion
}

/** What the latest announcement of `server` that `client` holds says works, empty until it holds one. */
async function announcedWorking (client: TestNode, server: TestNode): Promise<string[]> {
  return (await peersOf(client.page)).find(p => p.peerId === server.peerId)?.working ?? []
}

/** Waits until `client` holds an announcement of `server`: gossip flows between them through the relay. */
async function waitForAnnouncement (client: TestNode, server: TestNode): Promise<void> {
  await expect.poll(async () => (await peersOf(client.page)).find(p => p.peerId === server.peerId)?.capabilities ?? []).toContain('inference')
}

test('an unlisted server is found through its DHT provider record; once announced, through the registry', async ({ browser }) => {
  net = await startNetwork(browser, ['&profile=inference', '&profile=storage'])
  const [server, client] = net.nodes as [TestNode, TestNode]

  // The registry tier is asked first, so a `dht` answer shows no announcement named the model.
  // The user chooses the listing in the Models panel before pulling.
  await server.page.getByTestId('models-listing').selectOption('unlisted')
  await expect.poll(async () => (await statusOf(server.page)).modelListing).toBe('unlisted')
  await pull(server.page)
  // The relay accepted the provider record: the DHT tier can find the server.
  await expect.poll(async () => (await statusOf(server.page)).modelsInDht, { timeout: 60_000 }).toEqual([MODEL])
  await expect(server.page.getByTestId('models-in-dht')).toContainText(MODEL)
  const status = await statusOf(server.page)
  expect(status.serving?.models).toEqual([MODEL])
  // Serving, but claiming no inference that validators could not check against an announced model.
  expect(status.capabilities.inference).toMatchObject({ enabled: true, working: false })
  await waitForAnnouncement(client, server)

  // The server's own 'auto' request runs on its own model.
  expect((await chat(server.page, 'auto')).hyperspace).toMatchObject({ route: 'local', servedBy: server.peerId })
  expect((await chat(server.page, 'auto')).hyperspace.tier).toBeUndefined()

  const byDht = await chat(client.page, 'network')
  expect(byDht.hyperspace).toMatchObject({ servedBy: server.peerId, route: 'network', tier: 'dht', failedOver: [] })
  expect(byDht.choices[0]?.message.content ?? '').not.toBe('')
  const receipt = byDht.hyperspace.receipt ?? ''
  expect(receipt).toMatch(/^[0-9a-f]{32}$/)
  // The job left a countersigned receipt on the server too, as any routed job does.
  await expect.poll(async () => await server.page.evaluate(() => window.hyperspace?.receipts.recent(10) ?? []))
    .toContainEqual(expect.objectContaining({ role: 'server', peer: client.peerId, model: MODEL }))

  // 'auto' on a page without the model goes to the network, through the same tier, and the Chat panel says which.
  await client.page.getByTestId('chat-model').fill(MODEL)
  await client.page.getByTestId('chat-route').selectOption('auto')
  await client.page.getByTestId('chat-max-tokens').fill('12')
  await client.page.getByTestId('chat-prompt').fill(PROMPT)
  await client.page.getByTestId('chat-send').click()
  await expect(client.page.getByTestId('chat-served-by')).toHaveAttribute('data-peer-id', server.peerId)
  await expect(client.page.getByTestId('chat-served-by')).toHaveAttribute('data-route', 'network')
  await expect(client.page.getByTestId('chat-tier')).toHaveAttribute('data-tier', 'dht')
  await expect(client.page.getByTestId('chat-output')).toHaveText(byDht.choices[0]?.message.content ?? '')

  // Announced again, the server's announcement names the model, and the registry tier finds it first.
  await setListing(server.page, 'announced')
  await expect.poll(async () => await announcedWorking(client, server)).toContain('inference')
  const byRegistry = await chat(client.page, 'auto')
  expect(byRegistry.hyperspace).toMatchObject({ servedBy: server.peerId, route: 'network', tier: 'registry', failedOver: [] })
})

test('a server on request, in no announcement and no DHT record, is found by answering a broadcast want', async ({ browser }) => {
  net = await startNetwork(browser, ['&profile=inference', '&profile=storage'])
  const [server, client] = net.nodes as [TestNode, TestNode]

  await setListing(server.page, 'on-request')
  await pull(server.page)
  await expect.poll(async () => (await statusOf(server.page)).serving?.models).toEqual([MODEL])
  // The client hears the server on the capabilities topic, whose relay carries the inference topic too.
  await waitForAnnouncement(client, server)

  // The registry and DHT tiers come first: a `broadcast` answer shows neither knew the server.
  const byBroadcast = await chat(client.page, 'auto')
  expect(byBroadcast.hyperspace).toMatchObject({ servedBy: server.peerId, route: 'network', tier: 'broadcast', failedOver: [] })
  expect(byBroadcast.choices[0]?.message.content ?? '').not.toBe('')
  expect(byBroadcast.hyperspace.receipt ?? '').toMatch(/^[0-9a-f]{32}$/)
})

test('an unlisted server stands by: it serves only once the announced server is gone', async ({ browser }) => {
  net = await startNetwork(browser, ['&profile=inference', '&profile=inference', '&profile=storage'])
  const [announced, standby, client] = net.nodes as [TestNode, TestNode, TestNode]

  await setListing(standby.page, 'unlisted')
  await Promise.all([pull(announced.page), pull(standby.page)])
  await expect.poll(async () => (await statusOf(standby.page)).modelsInDht, { timeout: 60_000 }).toEqual([MODEL])
  await expect.poll(async () => await announcedWorking(client, announced)).toContain('inference')

  // While an announced server is there, the registry finds it and the standby is not asked.
  const first = await chat(client.page, 'auto')
  expect(first.hyperspace).toMatchObject({ servedBy: announced.peerId, tier: 'registry', failedOver: [] })

  // The announced server's tab closes; the client's registry still lists it (for up to 90 s), so it is
  // tried first, fails, and the DHT tier finds the standby.
  await announced.context.close()
  const second = await chat(client.page, 'auto')
  expect(second.hyperspace).toMatchObject({ servedBy: standby.peerId, route: 'network', tier: 'dht' })
  expect(second.hyperspace.failedOver.map(f => f.peerId)).toEqual([announced.peerId])
  expect(second.choices[0]?.message.content).toBe(first.choices[0]?.message.content)
})
