/** A function that, called any number of times in one task, runs `fn` once in a microtask. */
export function coalesced (fn: () => void): () => void {
  let queued = false
  return () => {
    if (queued) return
    queued = true
    queueMicrotask(() => {
      queued = false
      fn()
    })
  }
}
