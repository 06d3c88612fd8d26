import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { startVisibleClock, type PageVisibility } from '../../src/ui/visible-clock.ts'

/** A page whose visibility the test sets, telling its listeners as a document does. */
class TestPage implements PageVisibility {
  visibilityState: DocumentVisibilityState = 'visible'
  private readonly listeners = new Set<() => void>()

  addEventListener (_type: 'visibilitychange', listener: () => void): void { this.listeners.add(listener) }
  removeEventListener (_type: 'visibilitychange', listener: () => void): void { this.listeners.delete(listener) }

  show (state: DocumentVisibilityState): void {
    this.visibilityState = state
    for (const listener of this.listeners) listener()
  }

  get listening (): number {
    return this.listeners.size
  }
}

describe('the UI clock', () => {
  beforeEach(() => { vi.useFakeTimers() })
  afterEach(() => { vi.useRealTimers() })

  it('ticks every interval while the page is shown (the first after one interval), not at all while it is hidden, and at once when shown again', () => {
    const page = new TestPage()
    let ticks = 0
    const stop = startVisibleClock(page, () => { ticks++ }, 1000)
    // Not at once: the caller's state is fresh when it starts the clock.
    expect(ticks).toBe(0)
    vi.advanceTimersByTime(3000)
    expect(ticks).toBe(3)
    page.show('hidden')
    vi.advanceTimersByTime(60_000)
    expect(ticks).toBe(3)
    page.show('visible')
    expect(ticks).toBe(4)
    vi.advanceTimersByTime(1000)
    expect(ticks).toBe(5)
    stop()
    vi.advanceTimersByTime(5000)
    expect(ticks).toBe(5)
    expect(page.listening).toBe(0)
  })

  it('starts stopped in a page that opens hidden, and a second showing does not start a second timer', () => {
    const page = new TestPage()
    page.visibilityState = 'hidden'
    let ticks = 0
    const stop = startVisibleClock(page, () => { ticks++ }, 1000)
    vi.advanceTimersByTime(5000)
    expect(ticks).toBe(0)
    page.show('visible')
    page.show('visible')
    vi.advanceTimersByTime(1000)
    expect(ticks).toBe(3)
    stop()
  })
})
