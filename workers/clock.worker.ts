/// <reference lib="webworker" />
import type { ClockFired, ClockRequest } from './clock-protocol.ts'

/**
 * The node's clock. Chrome throttles a hidden page's timers to about once a minute; a dedicated
 * worker's timers keep their rate, and each message it posts wakes the page's event loop.
 */
const scope = self as unknown as DedicatedWorkerGlobalScope
const timers = new Map<number, { handle: ReturnType<typeof setTimeout>, repeating: boolean }>()

function fire (id: number): void {
  const message: ClockFired = { type: 'fire', id }
  scope.postMessage(message)
}

scope.addEventListener('message', (event: MessageEvent<ClockRequest>) => {
  const request = event.data
  switch (request.type) {
    case 'after':
      timers.set(request.id, {
        repeating: false,
        handle: setTimeout(() => { timers.delete(request.id); fire(request.id) }, request.ms)
      })
      break
    case 'every':
      timers.set(request.id, { repeating: true, handle: setInterval(() => { fire(request.id) }, request.ms) })
      break
    case 'cancel': {
      const timer = timers.get(request.id)
      if (timer === undefined) break
      if (timer.repeating) clearInterval(timer.handle)
      else clearTimeout(timer.handle)
      timers.delete(request.id)
      break
    }
  }
})
