import { TypedEventEmitter } from 'main-event'

export type TabRole = 'leader' | 'follower'

export interface TabLockEvents {
  /** This tab became the one that runs the node. */
  acquired: CustomEvent
  /** Another tab asked to take over: stop the node, then call release(). */
  'takeover-requested': CustomEvent
  /** The lock was stolen from this tab (it was frozen when asked): stop the node now. */
  lost: CustomEvent
}

type Signal = { type: 'takeover' } | { type: 'released' } | { type: 'taken' }

const RELEASE_WAIT_MS = 3_000
/** A tab that handed over queues again once the new holder has the lock, or after this at the latest. */
const REQUEUE_WAIT_MS = 5_000

/**
 * One node per browser profile. The tab holding the Web Lock runs the node; every other tab waits in
 * the lock's queue, so it starts by itself when the running tab closes, and can ask to take over.
 * Take-over asks the running tab (BroadcastChannel) to stop first, so two nodes with one identity never
 * overlap; a frozen tab that cannot answer has its lock stolen after a few seconds.
 */
export class TabLock extends TypedEventEmitter<TabLockEvents> {
  private readonly channel: BroadcastChannel
  private releaseHeld?: () => void
  private queued?: AbortController
  role: TabRole = 'follower'

  constructor (private readonly name = 'hyperspace-node') {
    super()
    this.channel = new BroadcastChannel(`${name}-tabs`)
    this.channel.addEventListener('message', (event: MessageEvent<Signal>) => {
      if (event.data?.type === 'takeover' && this.role === 'leader') this.safeDispatchEvent('takeover-requested')
    })
  }

  /** Resolves once this tab holds the lock or has joined the queue for it. */
  async join (): Promise<void> {
    await new Promise<void>(joined => {
      this.request({ ifAvailable: true }, joined)
    })
  }

  /** Gives up the lock (after the node stopped) and queues again behind the new holder. */
  release (): void {
    if (this.role !== 'leader') return
    this.role = 'follower'
    this.releaseHeld?.()
    this.releaseHeld = undefined
    this.channel.postMessage({ type: 'released' } satisfies Signal)
    // Queueing at once would take the lock straight back before the asking tab gets it.
    this.requeueAfterHandover()
  }

  private requeueAfterHandover (): void {
    let requeued = false
    const requeue = (): void => {
      if (requeued) return
      requeued = true
      this.channel.removeEventListener('message', onMessage)
      clearTimeout(timer)
      if (this.role === 'follower' && this.queued === undefined) this.waitInQueue()
    }
    const onMessage = (event: MessageEvent<Signal>): void => { if (event.data?.type === 'taken') requeue() }
    const timer = setTimeout(requeue, REQUEUE_WAIT_MS)
    this.channel.addEventListener('message', onMessage)
  }

  /** A method, not a field read: the role changes across awaits. */
  isLeader (): boolean { return this.role === 'leader' }

  async takeOver (): Promise<void> {
    if (this.isLeader()) return
    const released = new Promise<void>(resolve => {
      const done = (): void => {
        this.channel.removeEventListener('message', onMessage)
        clearTimeout(timer)
        resolve()
      }
      const onMessage = (event: MessageEvent<Signal>): void => { if (event.data?.type === 'released') done() }
      const timer = setTimeout(done, RELEASE_WAIT_MS)
      this.channel.addEventListener('message', onMessage)
    })
    this.channel.postMessage({ type: 'takeover' } satisfies Signal)
    await released
    if (this.isLeader()) return
    this.queued?.abort()
    this.request({ steal: true })
  }

  private waitInQueue (): void {
    this.queued = new AbortController()
    this.request({ signal: this.queued.signal })
  }

  /**
   * Requests the lock; when granted, holds it until release(). `onSettled` runs once the request is
   * granted or, with ifAvailable, refused (the tab then queues).
   */
  private request (options: LockOptions, onSettled?: () => void): void {
    navigator.locks.request(this.name, options, async lock => {
      if (lock === null) {
        this.waitInQueue()
        onSettled?.()
        return
      }
      this.queued = undefined
      const held = new Promise<void>(resolve => { this.releaseHeld = resolve })
      this.role = 'leader'
      onSettled?.()
      this.channel.postMessage({ type: 'taken' } satisfies Signal)
      this.safeDispatchEvent('acquired')
      await held
    }).catch((err: unknown) => {
      if ((err as Error).name !== 'AbortError') {
        console.warn('hyperspace: tab lock', err)
        return
      }
      // A stolen lock rejects the holder's request: this tab no longer owns the node.
      if (this.role === 'leader') {
        this.role = 'follower'
        this.releaseHeld = undefined
        this.safeDispatchEvent('lost')
        this.waitInQueue()
      }
    })
  }
}
