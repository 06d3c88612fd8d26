import { errorMessage } from '../core/errors.ts'
import { TypedEventEmitter } from 'main-event'
import { HyperspaceNode } from './hyperspace-node.ts'
import type { NodeComponents } from './components.ts'
import type { NodeApi } from './api.ts'
import type { TabLock } from './tab-lock.ts'

/**
 * loading: deciding whether this tab runs the node; running: it does; elsewhere: another tab of this
 * browser profile runs it; failed: it could not start (the error says why).
 */
export type HostState =
  | { phase: 'loading' }
  | { phase: 'running', node: NodeApi }
  | { phase: 'elsewhere' }
  | { phase: 'failed', error: string }

export interface NodeHostEvents {
  change: CustomEvent<HostState>
}

/** Runs the node in this tab while this tab holds the tab lock, and hands it over when asked. */
export class NodeHost extends TypedEventEmitter<NodeHostEvents> {
  state: HostState = { phase: 'loading' }
  private node?: HyperspaceNode

  constructor (private readonly components: NodeComponents, private readonly lock: TabLock) {
    super()
    lock.addEventListener('acquired', () => { void this.startNode() })
    lock.addEventListener('takeover-requested', () => {
      void this.stopNode().then(() => { lock.release() })
    })
    lock.addEventListener('lost', () => { void this.stopNode() })
  }

  async start (): Promise<void> {
    await this.lock.join()
    if (this.lock.role === 'follower') this.setState({ phase: 'elsewhere' })
  }

  /** The page is going away: drop every connection now (see HyperspaceNode.abortConnections). */
  pageClosing (): void {
    this.node?.abortConnections()
  }

  async takeOver (): Promise<void> {
    this.setState({ phase: 'loading' })
    await this.lock.takeOver()
  }

  private async startNode (): Promise<void> {
    this.setState({ phase: 'loading' })
    try {
      const node = await HyperspaceNode.start(this.components)
      // The lock may have moved on while the node started: never run beside another tab's node.
      if (!this.lock.isLeader()) {
        await node.stop()
        return
      }
      this.node = node
      this.setState({ phase: 'running', node })
    } catch (err) {
      console.error('hyperspace: node failed to start', err)
      this.setState({ phase: 'failed', error: errorMessage(err) })
    }
  }

  private async stopNode (): Promise<void> {
    const node = this.node
    this.node = undefined
    this.setState({ phase: 'elsewhere' })
    await node?.stop()
  }

  private setState (state: HostState): void {
    this.state = state
    this.safeDispatchEvent('change', { detail: state })
  }
}
