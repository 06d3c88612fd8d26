import { expect, test } from '@playwright/test'
import { openNode, statusOf, type TestNode } from './nodes.ts'
import { startRelayProcess } from './relay-process.ts'

/**
 * The job coordinators' code loads once the node is online (docs/internals.md, "Initial JS"). A
 * page whose relay never answers is never online; its API calls that need them load them and wait.
 */

let node: TestNode | undefined

test.afterAll(async () => { await node?.context.close() })

test('before the node is online, blocks and memory calls load the job services and wait for them', async ({ browser }) => {
  // A relay's real address, stopped: the page keeps trying it and stays 'connecting'.
  const relay = await startRelayProcess()
  await relay.stop()
  node = await openNode(browser, [relay.addr], '&profile=storage')

  const result = await node.page.evaluate(async () => {
    const api = window.hyperspace
    if (api === undefined) throw new Error('no node')
    const state = api.status().state
    const cid = await api.blocks.put(new TextEncoder().encode('stored before online'))
    const back = new TextDecoder().decode(await api.blocks.get(cid))
    const stats = await api.blocks.stats()
    const jobsChunk = performance.getEntriesByType('resource').some(e => /\/assets\/jobs-[^/]*\.js$/.test(new URL(e.name).pathname))
    return { state, back, blocks: stats.count, jobsChunk, held: api.memory.held() }
  })
  expect(result.state).not.toBe('online')
  expect(result).toMatchObject({ back: 'stored before online', blocks: 1, jobsChunk: true, held: 0 })
  const status = await statusOf(node.page)
  expect(status.state).not.toBe('online')
  expect(status.capabilities.storage).toEqual({ enabled: true, available: true, working: true })
})
