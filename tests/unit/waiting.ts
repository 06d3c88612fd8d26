/** Waiting helpers for the tests that run real libp2p nodes and promises to their end. */

export const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/** A tick of the event loop: lets settled promises run their continuations. */
export async function tick (): Promise<void> {
  await sleep(0)
}

/** Polls `condition` until it holds; fails naming `what` after `timeoutMs` (a bound for a loaded machine, not a wait). */
export async function until (condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

/** What the promise was rejected with; undefined when it resolved. */
export async function rejectionOf (promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (err) {
    return err
  }
  return undefined
}

/** Polls an asynchronous check until it holds; fails naming `what` after `timeoutMs`. */
export async function eventually (check: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}
