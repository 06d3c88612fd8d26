/** What the clock needs of a document: whether the page is shown, and word when that changes. */
export interface PageVisibility {
  readonly visibilityState: DocumentVisibilityState
  addEventListener: (type: 'visibilitychange', listener: () => void) => void
  removeEventListener: (type: 'visibilitychange', listener: () => void) => void
}

/**
 * Calls `tick` every `intervalMs` while the page is shown, and at once when it is shown again; while
 * it is hidden, not at all. A shown page pays a rendered frame for each tick that changes what it
 * shows (bench/idle.ts: about 0.85% of a core of an idle tab's 2.2%), and a hidden one renders
 * nothing, so ticking there would keep the page current for nobody. Returns the clock's stop.
 */
export function startVisibleClock (page: PageVisibility, tick: () => void, intervalMs: number): () => void {
  let timer: ReturnType<typeof setInterval> | undefined
  const run = (): void => {
    clearInterval(timer)
    timer = page.visibilityState === 'hidden' ? undefined : setInterval(tick, intervalMs)
  }
  // Not at once on start: the caller's state is fresh then, and a tick inside a Svelte effect would
  // make the effect depend on what the tick reads and writes.
  const follow = (): void => {
    if (page.visibilityState !== 'hidden') tick()
    run()
  }
  run()
  page.addEventListener('visibilitychange', follow)
  return () => {
    page.removeEventListener('visibilitychange', follow)
    clearInterval(timer)
  }
}
