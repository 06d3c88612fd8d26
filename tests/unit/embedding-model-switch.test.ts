import { describe, expect, it, vi } from 'vitest'
import { MODEL2VEC_TOKENIZATION, type EmbeddingModelSpec } from '../../src/core/embedding/models.ts'
import { systemScheduler } from '../../src/core/scheduler.ts'
import { EmbeddingCoordinator, type EmbeddingCoordinatorOptions } from '../../src/node/embedding-coordinator.ts'
import type { Embedder, EmbedderModel } from '../../src/node/embedder.ts'
import type { Libp2p } from '@libp2p/interface'

/**
 * EmbeddingCoordinator.modelChanged: after a pull or a delete (ModelHost's 'embedding-model' event)
 * the capability serves the model the host names, and a deleted model does not stay loaded.
 */

function spec (id: string): EmbeddingModelSpec {
  return { id, url: `http://models.test/${id}/model.onnx`, tokenizerUrl: `http://models.test/${id}/tokenizer.json`, dims: 8, tokenization: MODEL2VEC_TOKENIZATION }
}

/** Loads take a tick, as the worker's do; close drops the model. */
class FakeEmbedder implements Embedder {
  current: EmbedderModel | undefined
  readonly loads: string[] = []
  closes = 0

  async load (model: EmbeddingModelSpec): Promise<EmbedderModel> {
    this.loads.push(model.id)
    await new Promise(resolve => setTimeout(resolve, 5))
    this.current = { id: model.id, dims: model.dims }
    return this.current
  }

  loaded (): EmbedderModel | undefined { return this.current }
  async embed (texts: string[]): Promise<Float32Array[]> { return texts.map(() => new Float32Array(8)) }
  close (): void {
    this.closes++
    this.current = undefined
  }
}

function coordinator (embedder: Embedder, model: () => string, enabled: boolean): EmbeddingCoordinator {
  // Nothing here reaches the network: start() is never called, so libp2p and the signer stay unused.
  const options = {
    scheduler: systemScheduler,
    signer: { peerId: 'self' },
    embedder,
    model: async () => spec(model()),
    enabled: () => enabled,
    onChange: () => {}
  } as unknown as EmbeddingCoordinatorOptions
  return new EmbeddingCoordinator({} as unknown as Libp2p, options)
}

describe('EmbeddingCoordinator.modelChanged', () => {
  it('with the capability on, a newly pulled model replaces the loaded one', async () => {
    const embedder = new FakeEmbedder()
    let chosen = 'default'
    const c = coordinator(embedder, () => chosen, true)
    c.sync()
    await vi.waitFor(() => { expect(embedder.loaded()?.id).toBe('default') })
    chosen = 'pulled'
    c.modelChanged()
    await vi.waitFor(() => { expect(embedder.loaded()?.id).toBe('pulled') })
    expect(embedder.loads).toEqual(['default', 'pulled'])
    expect(c.availability()).toEqual({ available: true })
  })

  it('the same model, nothing deleted: the loaded one stays', async () => {
    const embedder = new FakeEmbedder()
    const c = coordinator(embedder, () => 'default', true)
    c.sync()
    await vi.waitFor(() => { expect(embedder.loaded()?.id).toBe('default') })
    c.modelChanged()
    await new Promise(resolve => setTimeout(resolve, 20))
    expect(embedder.closes).toBe(0)
    expect(embedder.loads).toEqual(['default'])
  })

  it('a deleted model is unloaded even when it is also the default; with the capability on the default loads again', async () => {
    const embedder = new FakeEmbedder()
    const c = coordinator(embedder, () => 'default', true)
    c.sync()
    await vi.waitFor(() => { expect(embedder.loaded()?.id).toBe('default') })
    c.modelChanged('default')
    await vi.waitFor(() => { expect(embedder.loads).toEqual(['default', 'default']) })
    expect(embedder.closes).toBe(1)
  })

  it('with the capability off, a deleted model is unloaded and nothing loads in its place', async () => {
    const embedder = new FakeEmbedder()
    const c = coordinator(embedder, () => 'default', false)
    expect((await c.embed(['hi'], { route: 'local' })).model).toBe('default')
    c.modelChanged('default')
    await vi.waitFor(() => { expect(embedder.closes).toBe(1) })
    await new Promise(resolve => setTimeout(resolve, 20))
    expect(embedder.loaded()).toBeUndefined()
    expect(embedder.loads).toEqual(['default'])
  })

  it('a load in flight when the choice changes gives way to the new model', async () => {
    const embedder = new FakeEmbedder()
    let chosen = 'default'
    const c = coordinator(embedder, () => chosen, true)
    c.sync()
    chosen = 'pulled'
    c.modelChanged()
    await vi.waitFor(() => { expect(embedder.loads).toEqual(['default', 'pulled']) })
    await vi.waitFor(() => { expect(embedder.loaded()?.id).toBe('pulled') })
    expect(c.availability()).toEqual({ available: true })
  })
})
