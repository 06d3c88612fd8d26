import { WebSocket } from 'ws'

/** Node 20 lacks Promise.withResolvers, which libp2p's queues use; without it the relay dies confusingly. */
if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers<T> () {
      let resolve!: (value: T | PromiseLike<T>) => void
      let reject!: (reason?: unknown) => void
      const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej })
      return { promise, resolve, reject }
    }
  })
}

/**
 * Node 20 has no global WebSocket, which @libp2p/websockets dials with; without it the relay can
 * listen but not dial other relays or DHT servers. Node 22 has one and keeps it.
 */
if (typeof globalThis.WebSocket === 'undefined') {
  Object.defineProperty(globalThis, 'WebSocket', { configurable: true, writable: true, value: WebSocket })
}
