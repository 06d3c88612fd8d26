import type { ClockFired, ClockRequest } from './clock-protocol.ts'

/**
 * The node's clock, run by the pulse worker. Chrome throttles a hidden page's timers to about once
 * a minute; a dedicated worker's timers keep their rate, and each message it posts wakes the page's
 * event loop. No worker globals here: the caller passes how to post a firing.
 */
export interface Clock {
  handle: (request: ClockRequest) => void
  /** Clears every timer (worker shutdown, tests). */
  clear: () => void
}

export function createClock (post: (message: ClockFired) => void): Clock {
  const timers = new Map<number, { handle: ReturnType<typeof setTimeout>, repeating: boolean }>()

  const fire = (id: number): void => { post({ type: 'fire', id }) }

  const cancel = (id: number): void => {
    const timer = timers.get(id)
    if (timer === undefined) return
    if (timer.repeating) clearInterval(timer.handle)
    else clearTimeout(timer.handle)
    timers.delete(id)
  }

  return {
    handle (request) {
      switch (request.type) {
        case 'after':
          cancel(request.id)
          timers.set(request.id, {
            repeating: false,
            handle: setTimeout(() => { timers.delete(request.id); fire(request.id) }, request.ms)
          })
          break
        case 'every':
          cancel(request.id)
          timers.set(request.id, { repeating: true, handle: setInterval(() => { fire(request.id) }, request.ms) })
          break
        case 'cancel':
          cancel(request.id)
          break
      }
    },
    clear () {
      for (const id of [...timers.keys()]) cancel(id)
    }
  }
}

const CLOCK_TYPES: ReadonlySet<string> = new Set<ClockRequest['type']>(['after', 'every', 'cancel'])

export function isClockRequest (message: unknown): message is ClockRequest {
  return typeof message === 'object' && message !== null && CLOCK_TYPES.has((message as { type?: unknown }).type as string)
}
