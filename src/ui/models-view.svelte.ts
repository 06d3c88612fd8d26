import type { CatalogModel, DownloadedModel } from '../core/models/catalog.ts'
import type { ModelsState, NodeApi } from '../node/api.ts'
import { errorMessage } from './format.ts'

/**
 * The node's models as reactive state: pulls and loaded models live from the 'models' event, the
 * catalog and the downloaded list read again whenever a pull starts or ends or the loaded set changes.
 */
export class ModelsView {
  state: ModelsState
  catalog: CatalogModel[]
  downloaded: DownloadedModel[]
  /** False until the first read of the catalog has finished. */
  ready: boolean
  /** Why the catalog or the downloaded list could not be read; empty when they could. */
  error: string
  private reads = 0

  constructor (readonly node: NodeApi) {
    this.state = $state.raw(node.models.state())
    this.catalog = $state.raw([])
    this.downloaded = $state.raw([])
    this.ready = $state(false)
    this.error = $state('')
  }

  /** Follows the 'models' event until the returned cleanup runs (meant for an $effect). */
  connect (): () => void {
    let shape = ''
    const onModels = (evt: CustomEvent<ModelsState>): void => {
      this.state = evt.detail
      // Progress ticks often; only a pull starting or ending, or a load, changes the lists.
      const next = shapeOf(evt.detail)
      if (next === shape) return
      shape = next
      void this.refresh()
    }
    // Read from the node, not from this.state: an $effect running connect() must not depend on what it writes.
    const state = this.node.models.state()
    this.state = state
    shape = shapeOf(state)
    void this.refresh()
    this.node.addEventListener('models', onModels)
    return () => { this.node.removeEventListener('models', onModels) }
  }

  /** Stops serving a model and deletes its files; the lists are read again since no event may follow. */
  async delete (id: string): Promise<void> {
    await this.node.models.delete(id)
    await this.refresh()
  }

  /** Reads the catalog and the downloaded list again; of overlapping reads only the newest lands. */
  async refresh (): Promise<void> {
    const read = ++this.reads
    try {
      const [catalog, downloaded] = await Promise.all([this.node.models.catalog(), this.node.models.downloaded()])
      if (read !== this.reads) return
      this.catalog = catalog
      this.downloaded = downloaded
      this.error = ''
    } catch (err) {
      if (read === this.reads) this.error = errorMessage(err)
    } finally {
      if (read === this.reads) this.ready = true
    }
  }
}

function shapeOf (state: ModelsState): string {
  return JSON.stringify([Object.keys(state.pulls).sort(), [...state.loaded].sort()])
}
