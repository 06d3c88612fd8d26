import type { NodeApi, NodeStatus, PeerInfo } from '../node/api.ts'

/** The running node's status and peers as reactive state, plus a clock for relative times. */
export class NodeView {
  status: NodeStatus
  peers: PeerInfo[]
  now: number

  constructor (readonly node: NodeApi) {
    this.status = $state.raw(node.status())
    this.peers = $state.raw(node.peers())
    this.now = $state(Date.now())
  }

  /** Follows the node's events until the returned cleanup runs (meant for an $effect). */
  connect (): () => void {
    const onStatus = (): void => { this.status = this.node.status() }
    const onPeers = (evt: CustomEvent<PeerInfo[]>): void => { this.peers = evt.detail }
    // Events may have fired between construction and subscription.
    onStatus()
    this.peers = this.node.peers()
    this.node.addEventListener('status', onStatus)
    this.node.addEventListener('peers', onPeers)
    // "retry in Ns" and "connected for" must advance between node events.
    const tick = setInterval(() => { this.now = Date.now() }, 1000)
    return () => {
      this.node.removeEventListener('status', onStatus)
      this.node.removeEventListener('peers', onPeers)
      clearInterval(tick)
    }
  }
}
