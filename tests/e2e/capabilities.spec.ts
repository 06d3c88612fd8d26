import { expect, test } from '@playwright/test'
import { proposeProfile } from '../../src/core/hardware.ts'
import { gotoApp, openNode, statusOf, waitForNode } from './nodes.ts'
import { startRelayProcess, type RelayProcess } from './relay-process.ts'

let relay: RelayProcess

test.beforeAll(async () => { relay = await startRelayProcess() })
test.afterAll(async () => { await relay.stop() })

test('hardware detection proposes a profile and capabilities say honestly what works', async ({ browser }) => {
  const node = await openNode(browser, [relay.addr])
  const status = await statusOf(node.page)

  // Headless Chromium here has SwiftShader only, which runs no model, but two cores: models run on the
  // CPU (wllama, onnxruntime's wasm) with a core left for the page, so the proposal is full.
  expect(status.hardware.cores).toBeGreaterThanOrEqual(2)
  expect(status.hardware.wasmSimd).toBe(true)
  expect(status.hardware.crossOriginIsolated).toBe(true)
  if (status.hardware.webgpu !== null) expect(status.hardware.webgpu.isFallbackAdapter).toBe(true)
  expect(status.profile).toBe(proposeProfile(status.hardware))
  expect(status.profile).toBe('full')
  expect(status.hardware.storageQuotaBytes).toBeGreaterThan(0)
  expect(Object.entries(status.capabilities).filter(([, s]) => s.enabled).map(([name]) => name).sort())
    .toEqual(['caching', 'embedding', 'inference', 'memory', 'orchestration', 'storage', 'validation'])

  expect(status.capabilities.relay).toMatchObject({ enabled: false, available: false, working: false })
  expect(status.capabilities.relay.reason).toContain('browser cannot accept inbound connections')
  await expect(node.page.getByTestId('capability-relay').getByTestId('capability-state')).toContainText('unavailable')
  // Embedding works once its model (model2vec-64d, served at /models/) is loaded.
  await expect.poll(async () => (await statusOf(node.page)).capabilities.embedding).toEqual({ enabled: true, available: true, working: true })
  await expect(node.page.getByTestId('capability-embedding').getByTestId('capability-state')).toContainText('working')

  // The profile and a toggle chosen in the UI are kept across a reload.
  await node.page.getByTestId('profile-select').selectOption('storage')
  await expect.poll(async () => (await statusOf(node.page)).profile).toBe('storage')
  // full had validation on; storage has not, and the box says so before it is ticked again.
  await expect(node.page.getByTestId('capability-validation').getByRole('checkbox')).not.toBeChecked()
  await node.page.getByTestId('capability-validation').getByRole('checkbox').check()
  await expect.poll(async () => (await statusOf(node.page)).capabilities.validation.enabled).toBe(true)
  await node.page.reload()
  await waitForNode(node.page)
  const after = await statusOf(node.page)
  expect(after.profile).toBe('storage')
  expect(Object.entries(after.capabilities).filter(([, s]) => s.enabled).map(([name]) => name).sort())
    .toEqual(['memory', 'storage', 'validation'])

  // ?profile= overrides the saved choice for this visit, once accepted (a link's settings are asked about).
  await gotoApp(node.page, `${new URL(node.page.url()).pathname}${new URL(node.page.url()).search}&profile=full`)
  await waitForNode(node.page)
  const full = await statusOf(node.page)
  expect(full.profile).toBe('full')
  // Orchestration is on in full, and works once there is something to orchestrate over (here: this node's own embeddings).
  expect(full.capabilities.orchestration).toMatchObject({ enabled: true, available: true })
  await expect.poll(async () => (await statusOf(node.page)).capabilities.orchestration, { timeout: 60_000 }).toEqual({ enabled: true, available: true, working: true })
  // Proxy is opt-in: full leaves it off until the user turns it on.
  expect(full.capabilities.proxy).toEqual({ enabled: false, available: true, working: false })
  await node.context.close()
})
