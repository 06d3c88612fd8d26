import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it } from 'vitest'
import { webSocketsClosingAborted } from '../../src/net/websocket-dial.ts'
import type { AbortOptions } from '@libp2p/interface'

/** A browser WebSocket that never opens, as behind a dead uplink, and records whether it was closed. */
class HangingWebSocket extends EventTarget {
  static made: HangingWebSocket[] = []
  binaryType = 'blob'
  closed = false
  constructor (readonly url: string) {
    super()
    HangingWebSocket.made.push(this)
  }

  close (): void {
    this.closed = true
  }
}

const realWebSocket = globalThis.WebSocket
afterEach(() => {
  globalThis.WebSocket = realWebSocket
  HangingWebSocket.made = []
})

/** What the transport's constructor reads of its components: a logger. */
const components = { logger: { forComponent: () => Object.assign(() => {}, { error: () => {}, trace: () => {} }) } }

type Connect = (ma: ReturnType<typeof multiaddr>, options: AbortOptions) => Promise<unknown>

describe('webSocketsClosingAborted', () => {
  it('closes a socket that is still connecting when its dial is given up, so the next dial to that relay is not queued behind it', async () => {
    globalThis.WebSocket = HangingWebSocket as never
    const transport = webSocketsClosingAborted()(components as never) as unknown as { _connect: Connect }
    const controller = new AbortController()
    const dial = transport._connect(multiaddr('/ip4/198.19.0.1/tcp/4002/ws'), { signal: controller.signal })
    controller.abort()
    await expect(dial).rejects.toThrow(/Gave up connecting to ws:\/\/198.19.0.1:4002/)
    expect(HangingWebSocket.made).toHaveLength(1)
    expect(HangingWebSocket.made[0]?.closed).toBe(true)
  })

  it('resolves with the socket once it opens, and leaves it open', async () => {
    globalThis.WebSocket = HangingWebSocket as never
    const transport = webSocketsClosingAborted()(components as never) as unknown as { _connect: Connect }
    const dial = transport._connect(multiaddr('/ip4/198.19.0.1/tcp/4002/ws'), {})
    HangingWebSocket.made[0]?.dispatchEvent(new Event('open'))
    expect(await dial).toBe(HangingWebSocket.made[0])
    expect(HangingWebSocket.made[0]?.closed).toBe(false)
    expect(HangingWebSocket.made[0]?.binaryType).toBe('arraybuffer')
  })
})
