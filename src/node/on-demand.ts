import { HyperspaceError, NodeNotRunningError, errorMessage } from '../core/errors.ts'

/** The node's job services (chat, embeddings, blocks, memory, proxy, tasks) could not be loaded. */
export class JobsUnavailableError extends HyperspaceError {
  override name = 'JobsUnavailableError'

  constructor (cause: unknown) {
    super('ERR_JOBS_UNAVAILABLE', `The node's job services could not be loaded: ${errorMessage(cause)}`, { cause })
  }
}

/** What a loader builds: the parts, started, and how to stop them. */
export interface Loaded<T> {
  parts: T
  stop: () => Promise<void>
}

/**
 * Parts of a session that are built the first time they are needed (the node's job coordinators,
 * whose code a page does not need to come online: the node asks for them once it is). A caller that needs them before they are ready waits; a load that fails is retried by the
 * next caller (a chunk the network did not deliver may come the next time).
 */
export class OnDemand<T> {
  private loaded?: Loaded<T>
  private loading?: Promise<T>
  private stopped = false

  constructor (private readonly loader: () => Promise<Loaded<T>>) {}

  /** The parts, once built and started; undefined before, and after stop(). */
  get current (): T | undefined {
    return this.stopped ? undefined : this.loaded?.parts
  }

  /**
   * The parts, built now if nothing has asked for them yet.
   * @throws NodeNotRunningError when the session stopped first; JobsUnavailableError when they could not be built.
   */
  async ready (): Promise<T> {
    if (this.stopped) throw new NodeNotRunningError()
    if (this.loaded !== undefined) return this.loaded.parts
    this.loading ??= this.build()
    return await this.loading
  }

  /** Stops the parts, also those a load still in flight builds; later callers get NodeNotRunningError. */
  async stop (): Promise<void> {
    this.stopped = true
    await this.loading?.catch(() => {})
    const loaded = this.loaded
    this.loaded = undefined
    await loaded?.stop()
  }

  private async build (): Promise<T> {
    let loaded: Loaded<T>
    try {
      loaded = await this.loader()
    } catch (err) {
      this.loading = undefined
      if (this.stopped) throw new NodeNotRunningError()
      throw new JobsUnavailableError(err)
    }
    if (this.stopped) {
      // stop() waits for this load, so nothing it built stays running.
      await loaded.stop()
      throw new NodeNotRunningError()
    }
    this.loaded = loaded
    return loaded.parts
  }
}
