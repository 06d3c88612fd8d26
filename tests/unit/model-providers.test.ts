import { describe, expect, it, vi } from 'vitest'
import { modelKey, ModelProviders } from '../../src/net/model-providers.ts'
import { until } from './waiting.ts'
import type { HyperspaceServices } from '../../src/net/services.ts'
import type { Libp2p } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

/** A content router whose provides finish when the test says, and which records what was cancelled. */
function fakeLibp2p (): { libp2p: Libp2p<HyperspaceServices>, finish: (i: number, ok?: boolean) => void, provided: CID[], cancelled: CID[] } {
  const pending: Array<{ resolve: () => void, reject: (err: Error) => void }> = []
  const provided: CID[] = []
  const cancelled: CID[] = []
  const contentRouting = {
    provide: async (key: CID) => {
      provided.push(key)
      await new Promise<void>((resolve, reject) => { pending.push({ resolve, reject }) })
    },
    cancelReprovide: async (key: CID) => { cancelled.push(key) }
  }
  const finish = (i: number, ok = true): void => {
    const p = pending[i]
    if (p === undefined) throw new Error(`no provide ${i}`)
    if (ok) p.resolve()
    else p.reject(new Error('no relay took the record'))
  }
  return { libp2p: { contentRouting } as unknown as Libp2p<HyperspaceServices>, finish, provided, cancelled }
}

/**
 * Provides that finish in order are handled in order: a later model showing up in the DHT list is the
 * positive event that proves an earlier provide's outcome was handled.
 */
const MARKER = 'model2vec-64d'

describe('ModelProviders', () => {
  it('counts a model in the DHT once its provide went through, and says so once', async () => {
    const { libp2p, finish, provided } = fakeLibp2p()
    let changes = 0
    const providers = new ModelProviders(libp2p, 'dev', () => { changes++ })
    providers.provide('stories260K')
    expect(provided.map(String)).toEqual([modelKey('dev', 'stories260K').toString()])
    expect(providers.models()).toEqual(['stories260K'])
    expect(providers.inDht()).toEqual([])
    finish(0)
    await until(() => providers.inDht().length === 1, 'the record to count')
    expect(providers.inDht()).toEqual(['stories260K'])
    providers.reprovide()
    providers.provide(MARKER)
    finish(1)
    finish(2)
    await until(() => providers.inDht().includes(MARKER), 'the marker to count')
    // One change per model: providing stories260K again changed nothing.
    expect(changes).toBe(2)
  })

  it('a failed provide leaves the model out of the DHT list', async () => {
    const { libp2p, finish } = fakeLibp2p()
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    try {
      const providers = new ModelProviders(libp2p, 'dev')
      providers.provide('stories260K')
      finish(0, false)
      await until(() => warn.mock.calls.length > 0, 'the failure to be logged')
      expect(providers.inDht()).toEqual([])
      expect(providers.models()).toEqual(['stories260K'])
    } finally {
      warn.mockRestore()
    }
  })

  it('a model forgotten while its provide runs is not counted when the provide ends, and is no longer reprovided', async () => {
    const { libp2p, finish, provided, cancelled } = fakeLibp2p()
    const providers = new ModelProviders(libp2p, 'dev')
    providers.provide('stories260K')
    providers.forget('stories260K')
    expect(cancelled.map(String)).toEqual([modelKey('dev', 'stories260K').toString()])
    providers.provide(MARKER)
    finish(0)
    finish(1)
    await until(() => providers.inDht().includes(MARKER), 'the marker to count')
    expect(providers.inDht()).toEqual([MARKER])
    providers.reprovide()
    expect(provided.map(String)).toEqual([modelKey('dev', 'stories260K'), modelKey('dev', MARKER), modelKey('dev', MARKER)].map(String))
  })
})
