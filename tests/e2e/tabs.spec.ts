import { expect, test } from '@playwright/test'
import { appUrl, gotoApp, statusOf, waitForNode } from './nodes.ts'
import { startRelayProcess, type RelayProcess } from './relay-process.ts'

let relay: RelayProcess

test.beforeAll(async () => { relay = await startRelayProcess() })
test.afterAll(async () => { await relay.stop() })

test('a second tab of one profile does not start a second node, and can take over', async ({ browser }) => {
  const context = await browser.newContext()
  const first = await context.newPage()
  await gotoApp(first, appUrl([relay.addr]))
  const { peerId } = await waitForNode(first)

  // The same profile accepted these settings in the first tab: the second is not asked again.
  const second = await context.newPage()
  await second.goto(appUrl([relay.addr]))
  await expect(second.getByTestId('elsewhere')).toContainText('running in another tab')
  expect(await second.evaluate(() => window.hyperspace === undefined)).toBe(true)
  expect((await statusOf(first)).state).not.toBe('stopped')

  // Take over: the first tab stops its node before the second starts one with the same identity.
  await second.getByTestId('take-over').click()
  const moved = await waitForNode(second)
  expect(moved.peerId).toBe(peerId)
  await expect(first.getByTestId('elsewhere')).toBeVisible()
  expect(await first.evaluate(() => window.hyperspace === undefined)).toBe(true)
  // And it stays handed over: the first tab queues again behind the second, whose lock it cannot take back.
  await expect.poll(async () => await first.evaluate(async () => {
    const { held = [], pending = [] } = await navigator.locks.query()
    return { held: held.length, pending: pending.length }
  })).toEqual({ held: 1, pending: 1 })
  expect(await first.evaluate(() => window.hyperspace === undefined)).toBe(true)
  expect((await second.evaluate(() => window.hyperspace?.status().state))).not.toBe('stopped')

  // Closing the running tab hands the node back to the waiting one by itself.
  await second.close()
  const back = await waitForNode(first)
  expect(back.peerId).toBe(peerId)
  await context.close()
})

test('identity export and import between two profiles, asking before it replaces a key', async ({ browser }) => {
  const source = await browser.newContext()
  const a = await source.newPage()
  await gotoApp(a, appUrl([relay.addr]))
  const { peerId: exported } = await waitForNode(a)
  const file = await a.evaluate(async () => JSON.stringify(await window.hyperspace?.identity.export('correct horse battery')))
  await source.close()

  const target = await browser.newContext()
  const b = await target.newPage()
  await gotoApp(b, appUrl([relay.addr]))
  const { peerId: own } = await waitForNode(b)
  expect(own).not.toBe(exported)

  // Inspecting names the file's identity and stores nothing.
  const inspected = await b.evaluate(async text => await window.hyperspace?.identity.inspect(text, 'correct horse battery'), file)
  expect(inspected).toEqual({ peerId: exported, current: own })
  expect(await b.evaluate(async text => await window.hyperspace?.identity.inspect(text, 'wrong passphrase!').then(() => 'ok', (err: Error) => err.name), file)).toBe('WrongPassphraseError')
  expect((await statusOf(b)).peerId).toBe(own)

  const wrong = await b.evaluate(async text => await window.hyperspace?.identity.import(text, 'wrong passphrase!').then(() => 'ok', (err: Error) => err.name), file)
  expect(wrong).toBe('WrongPassphraseError')
  const refused = await b.evaluate(async text => await window.hyperspace?.identity.import(text, 'correct horse battery').then(() => 'ok', (err: Error) => err.name), file)
  expect(refused).toBe('IdentityReplaceRefusedError')
  expect((await statusOf(b)).peerId).toBe(own)

  await b.evaluate(async text => await window.hyperspace?.identity.import(text, 'correct horse battery', { replace: true }), file)
  await expect.poll(async () => (await statusOf(b)).peerId).toBe(exported)
  await b.reload()
  expect((await waitForNode(b)).peerId).toBe(exported)
  await target.close()
})
