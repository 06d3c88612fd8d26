import type { Stream } from '@libp2p/interface'

/**
 * Streams of one protocol each peer has open here, over all its connections. A stream holds its
 * unread request frame until it is read (hundreds of KiB for a job), so a peer past `max` is answered
 * at once without its frame being read: what one peer can park is `max` frames.
 */
export class PeerStreams {
  private readonly open = new Map<string, number>()

  constructor (readonly max: number) {}

  /** Counts one stream of `peer` until the returned release is called; undefined when it has `max` open. */
  take (peer: string): (() => void) | undefined {
    const open = this.open.get(peer) ?? 0
    if (open >= this.max) return undefined
    this.open.set(peer, open + 1)
    let released = false
    return () => {
      if (released) return
      released = true
      const left = (this.open.get(peer) ?? 1) - 1
      if (left > 0) this.open.set(peer, left)
      else this.open.delete(peer)
    }
  }

  /** Counts `stream` for `peer` until it closes; false (nothing counted) when the peer has `max` open. */
  track (peer: string, stream: Stream): boolean {
    const release = this.take(peer)
    if (release === undefined) return false
    stream.addEventListener('close', release, { once: true })
    return true
  }
}
