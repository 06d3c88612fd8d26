import type { Startable } from '../core/lifecycle.ts'

/** A coordinator whose running is its protocol's: it starts and stops with the service it serves through. */
export abstract class ServingCoordinator<S extends Startable> implements Startable {
  protected abstract readonly service: S

  async start (): Promise<void> {
    await this.service.start()
  }

  async stop (): Promise<void> {
    await this.service.stop()
  }
}
