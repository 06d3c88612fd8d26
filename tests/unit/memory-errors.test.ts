import { afterAll, describe, expect, it } from 'vitest'
import { MemoryPutError } from '../../src/node/memory-coordinator.ts'
import { closeAll } from './helpers.ts'
import { makeNode, registry, startAll, stopNode, type TestNode } from './memory-nodes.ts'
import { rejectionOf } from './waiting.ts'

afterAll(() => { closeAll() })

/**
 * The memory API's errors by name (issue 19): a put with nobody to hold it, and a put whose only
 * holder has turned memory off since it was announced (its answer, ERR_MEMORY_OFF, reaches the
 * caller as a RemoteMemoryError in the put's failures).
 */
describe('memory errors through the API', () => {
  const started: TestNode[] = []

  afterAll(async () => {
    for (const node of started) {
      await node.departures.stop()
      await node.memory.stop()
      await stopNode(node)
    }
  })

  it('a put with no memory peer fails with MemoryPutError, naming nobody', async () => {
    const alone = await makeNode('alone', { holding: false })
    started.push(alone)
    await startAll([alone], () => false)
    const err = await rejectionOf(alone.memory.put('lonely', [1, 0, 0, 0], 'nobody holds this'))
    expect(err).toBeInstanceOf(MemoryPutError)
    expect(err).toMatchObject({ name: 'MemoryPutError', code: 'ERR_MEMORY_PUT', message: expect.stringContaining('No memory peer to store lonely') })
  })

  it('a holder that turned memory off answers ERR_MEMORY_OFF: the put fails by name and says why', async () => {
    const client = await makeNode('client', { holding: false })
    const off = await makeNode('off', { holding: false })
    started.push(client, off)
    await startAll([client, off], () => false)
    // Still listed as a memory peer: its last announcement predates the switch.
    registry.set(off.peerId, Date.now())
    client.memory.peersChanged()
    const err = await rejectionOf(client.memory.put('switched', [0, 1, 0, 0], 'meta'))
    expect(err).toBeInstanceOf(MemoryPutError)
    // The holder's refusal, as the RemoteMemoryError the put met: "Peer <id>: <its message>".
    expect(err).toMatchObject({ code: 'ERR_MEMORY_PUT', message: expect.stringContaining(`Peer ${off.peerId}: This node does not serve memory`) })
    expect(off.store.has('switched')).toBe(false)
  })
})
