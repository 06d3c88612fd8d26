import { expect, test } from '@playwright/test'
import { openNode, statusOf, waitForNode } from './nodes.ts'
import { startRelayProcess, type RelayProcess } from './relay-process.ts'

let relay: RelayProcess

test.beforeAll(async () => { relay = await startRelayProcess() })
test.afterAll(async () => { await relay.stop() })

test('hardware detection proposes a profile and capabilities say honestly what works', async ({ browser }) => {
  const node = await openNode(browser, [relay.addr])
  const status = await statusOf(node.page)

  // Headless Chromium here has SwiftShader only: a software adapter is no reason to serve models.
  expect(status.hardware.cores).toBeGreaterThanOrEqual(1)
  expect(status.hardware.wasmSimd).toBe(true)
  expect(status.hardware.crossOriginIsolated).toBe(true)
  if (status.hardware.webgpu !== null) expect(status.hardware.webgpu.isFallbackAdapter).toBe(true)
  expect(status.profile).toBe('embedding')
  expect(status.hardware.storageQuotaBytes).toBeGreaterThan(0)

  expect(status.capabilities.relay).toMatchObject({ enabled: false, available: false, working: false })
  expect(status.capabilities.relay.reason).toContain('browser cannot accept inbound connections')
  await expect(node.page.getByTestId('capability-relay').getByTestId('capability-state')).toContainText('unavailable')
  // The embedding profile's capability works once its model (model2vec-64d, served at /models/) is loaded.
  await expect.poll(async () => (await statusOf(node.page)).capabilities.embedding).toEqual({ enabled: true, available: true, working: true })
  await expect(node.page.getByTestId('capability-embedding').getByTestId('capability-state')).toContainText('working')

  // The profile and a toggle chosen in the UI are kept across a reload.
  await node.page.getByTestId('profile-select').selectOption('storage')
  await expect.poll(async () => (await statusOf(node.page)).capabilities.memory.enabled).toBe(true)
  await node.page.getByTestId('capability-validation').getByRole('checkbox').check()
  await expect.poll(async () => (await statusOf(node.page)).capabilities.validation.enabled).toBe(true)
  await node.page.reload()
  await waitForNode(node.page)
  const after = await statusOf(node.page)
  expect(after.profile).toBe('storage')
  expect(Object.entries(after.capabilities).filter(([, s]) => s.enabled).map(([name]) => name).sort())
    .toEqual(['memory', 'storage', 'validation'])

  // ?profile= overrides the saved choice for this visit.
  await node.page.goto(`${new URL(node.page.url()).pathname}${new URL(node.page.url()).search}&profile=full`)
  await waitForNode(node.page)
  const full = await statusOf(node.page)
  expect(full.profile).toBe('full')
  // What is not built says so rather than pretend.
  expect(full.capabilities.proxy).toEqual({ enabled: true, available: true, working: false, reason: 'not implemented yet' })
  await expect(node.page.getByTestId('capability-proxy').getByTestId('capability-state')).toContainText('not implemented yet')
  await node.context.close()
})
