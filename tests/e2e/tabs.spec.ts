import { expect, test } from '@playwright/test'
import { decodeHistory } from '../../src/core/identity-history.ts'
import { appUrl, gotoApp, openNode, statusOf, waitForNode } from './nodes.ts'
import { startRelayDeployment, type RelayProcess } from './relay-process.ts'
import type { IdentityFile } from '../../src/core/identity-envelope.ts'
import type { PointsCheck } from '../../src/core/points-proof/check.ts'
import type { RoundSummary } from '../../src/node/api.ts'

let relay: RelayProcess
/**
 * A second relay for the identity test: a carried round needs two voters, and in a network nobody has
 * aged in, the relays are the only ones. Each is told the other's peer id (`--anchor`), so both follow one leader.
 */
let second: RelayProcess

test.beforeAll(async () => { [relay, second] = await startRelayDeployment(2) as [RelayProcess, RelayProcess] })
test.afterAll(async () => { await Promise.all([relay.stop(), second.stop()]) })

/** How many rounds an exported file's history carries. */
function carriedRounds (file: IdentityFile): number {
  return file.history === undefined ? 0 : decodeHistory(Uint8Array.from(Buffer.from(file.history, 'base64'))).rounds.length
}

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

test('identity export and import between two profiles, asking before it replaces a key, and the points move with it', async ({ browser }) => {
  test.setTimeout(300_000)
  const relays = [relay.addr, second.addr]
  const settings = '&round=6&profile=relay'
  const source = await browser.newContext()
  const a = await source.newPage()
  await gotoApp(a, appUrl(relays, settings))
  const { peerId: exported } = await waitForNode(a)
  // A third profile checks the points of whoever holds the key, before and after the move.
  const checker = await openNode(browser, relays, settings)

  // The source earns until its file carries rounds that two relays passed.
  let file: IdentityFile | undefined
  await expect.poll(async () => {
    file = await a.evaluate(async () => await window.hyperspace?.identity.export('correct horse battery')) as IdentityFile
    return carriedRounds(file)
  }, { timeout: 150_000, intervals: [6_000] }).toBeGreaterThanOrEqual(2)
  const carried = carriedRounds(file as IdentityFile)
  const text = JSON.stringify(file)
  const verifiedAtHome = (await a.evaluate(() => window.hyperspace?.pulse.history(100) ?? [])).filter((r: RoundSummary) => r.verified).length
  await source.close()

  const target = await browser.newContext()
  const b = await target.newPage()
  await gotoApp(b, appUrl(relays, settings))
  const { peerId: own } = await waitForNode(b)
  expect(own).not.toBe(exported)

  // Inspecting names the file's identity and stores nothing.
  const inspected = await b.evaluate(async t => await window.hyperspace?.identity.inspect(t, 'correct horse battery'), text)
  expect(inspected).toEqual({ peerId: exported, current: own })
  expect(await b.evaluate(async t => await window.hyperspace?.identity.inspect(t, 'wrong passphrase!').then(() => 'ok', (err: Error) => err.name), text)).toBe('WrongPassphraseError')
  expect((await statusOf(b)).peerId).toBe(own)

  const wrong = await b.evaluate(async t => await window.hyperspace?.identity.import(t, 'wrong passphrase!').then(() => 'ok', (err: Error) => err.name), text)
  expect(wrong).toBe('WrongPassphraseError')
  const refused = await b.evaluate(async t => await window.hyperspace?.identity.import(t, 'correct horse battery').then(() => 'ok', (err: Error) => err.name), text)
  expect(refused).toBe('IdentityReplaceRefusedError')
  // A file whose history was edited is refused whole, even with replace.
  const edited = JSON.stringify({ ...file, history: Buffer.from(Uint8Array.from(Buffer.from((file as IdentityFile).history as string, 'base64')).map((byte, i, all) => i === all.length - 10 ? byte ^ 1 : byte)).toString('base64') })
  const tampered = await b.evaluate(async t => await window.hyperspace?.identity.import(t, 'correct horse battery', { replace: true }).then(() => 'ok', (err: Error) => err.name), edited)
  expect(tampered).toBe('IdentityHistoryError')
  expect((await statusOf(b)).peerId).toBe(own)

  await b.evaluate(async t => await window.hyperspace?.identity.import(t, 'correct horse battery', { replace: true }), text)
  await expect.poll(async () => (await statusOf(b)).peerId).toBe(exported)
  await b.reload()
  expect((await waitForNode(b)).peerId).toBe(exported)
  // The rounds earned at home are this profile's now, and another node checks them from here.
  const moved = (await b.evaluate(() => window.hyperspace?.pulse.history(100) ?? [])).filter((r: RoundSummary) => r.verified).length
  expect(moved).toBeGreaterThanOrEqual(Math.min(carried, verifiedAtHome))
  expect(await b.evaluate(() => window.hyperspace?.points().presence ?? 0)).toBeGreaterThan(0)
  let check: PointsCheck | undefined
  await expect.poll(async () => {
    check = await checker.page.evaluate(async id => await window.hyperspace?.points.of(id), exported)
    return check?.checked === true ? check.rounds : `${check?.reason}: ${check?.detail}`
  }, { timeout: 60_000, intervals: [3_000] }).toBeGreaterThanOrEqual(carried)
  if (check?.checked !== true) throw new Error('not checked')
  expect(check.presence).toBeGreaterThan(0)
  await target.close()
  await checker.context.close()
})
