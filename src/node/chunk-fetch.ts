import { pauseFor, type Scheduler } from '../core/scheduler.ts'
import { PeerLacksBlockError } from '../core/blocks/errors.ts'
import { SlowPeerError } from '../core/errors.ts'

/** Chunks of one file fetched at once: enough to fill a WebRTC path, few enough to keep memory bounded. */
const CHUNK_CONCURRENCY = 8
/**
 * At a get's end, a chunk still in flight is asked of another holder once it has been in flight this
 * long, and ENDGAME_SLOWNESS times the get's mean chunk so far: an honest WebRTC path carries a 1 MiB
 * chunk in well under a second, so a fast peer's chunks are not asked twice.
 */
const ENDGAME_WAIT_MS = 2_000
const ENDGAME_SLOWNESS = 3

/**
 * What one get learns about the peers it fetches from. The manifest's peer is asked first for each
 * chunk, but at most for a server's share of them at once (what a server runs for one peer): a chunk
 * worker claims it before asking, and past the share asks other peers first. So a manifest's peer
 * serving under the transfer floor holds two of the get's workers until it is cut off, not all eight.
 * A peer that lacked one chunk, or was cut off for its rate, is not asked first for the others.
 */
export class GetPeers {
  private readonly claims = new Map<string, number>()
  readonly served = new Set<string>()
  private readonly passedOver = new Set<string>()

  /** `share`: what a server runs for one peer at once. */
  constructor (private readonly share: number) {}

  /** Claims one of the peer's share of this get, at once (no await between the check and the count); false when it is taken. */
  claim (peerId: string): boolean {
    const held = this.claims.get(peerId) ?? 0
    if (held >= this.share) return false
    this.claims.set(peerId, held + 1)
    return true
  }

  unclaim (peerId: string): void {
    const left = (this.claims.get(peerId) ?? 1) - 1
    if (left > 0) this.claims.set(peerId, left)
    else this.claims.delete(peerId)
  }

  /** Not asked first for this get's chunks: it lacked one, or sent too slowly. */
  passesOver (peerId: string): boolean {
    return this.passedOver.has(peerId)
  }

  /**
   * Runs a fetch from the peer. A chunk it lacks passes it over for the others (not the manifest:
   * chunks are shared between files); so does any block it sent under the floor (its rate is its own).
   */
  async fetch<T> (peerId: string, chunk: boolean, task: () => Promise<T>): Promise<T> {
    try {
      const result = await task()
      this.served.add(peerId)
      return result
    } catch (err) {
      if (err instanceof SlowPeerError || (chunk && err instanceof PeerLacksBlockError)) this.passedOver.add(peerId)
      throw err
    }
  }
}

/** How a chunk is routed: `from` is the manifest's peer (none for the manifest itself), asked first when `first`. */
export interface ChunkRoute {
  from?: string
  first?: boolean
  /** A second ask for a chunk this peer is serving (the get's end, see fetchChunks): it is not asked. */
  elsewhere?: string
}

export interface ChunkFetchOptions<T> {
  /** Chunks of the file, asked for in order. */
  count: number
  /** Chunk `i` is in this node's store: its fetch is a read, not timed. */
  local: (i: number) => boolean
  /** The peer that sent the manifest, asked first for each chunk (within its share, GetPeers.claim). */
  preferred: string | undefined
  peers: GetPeers
  scheduler: Scheduler
  signal?: AbortSignal
  /**
   * Fetches chunk `i` by `route`; stopped through `signal` when another ask for it answered first.
   * `asking` names each peer as it is asked (failover asks several in turn).
   */
  fetch: (i: number, route: ChunkRoute, signal: AbortSignal, asking: (peerId: string) => void) => Promise<T>
  /** Chunk `i`'s first answer, once. */
  take: (i: number, found: T) => void
}

/** A chunk being fetched: since when, the peer asked last, and what stops its asks once one has it. */
interface ChunkAsk {
  done: AbortController
  askedElsewhere: boolean
  since: number
  peer?: string
}

/**
 * Fetches a file's chunks, CHUNK_CONCURRENCY at once. One chunk that cannot be had fails the whole:
 * the other workers stop with it, or a manifest naming one missing chunk among 1,023 held ones would
 * have them fetch a gigabyte for nothing.
 *
 * The get's end: with no chunk left to ask for, a worker asks other holders for a chunk a peer has
 * been serving for long (ENDGAME_WAIT_MS), the manifest's or any other. That peer may send just above
 * the transfer floor (16 s a chunk) and hold the get to its pace; the first answer is taken and the
 * other ask given up. At most the chunks in flight (CHUNK_CONCURRENCY MiB) are fetched twice, and a
 * second ask that finds no holder leaves the first.
 */
export async function fetchChunks<T> (o: ChunkFetchOptions<T>): Promise<void> {
  const { preferred, peers, scheduler } = o
  const failed = new AbortController()
  const signal = o.signal === undefined ? failed.signal : AbortSignal.any([o.signal, failed.signal])
  const taken = new Set<number>()
  let next = 0
  const inFlight = new Map<number, ChunkAsk>()
  const fetched = { chunks: 0, ms: 0 }
  /** Asks for chunk `i`; false when the other ask for it got it first and this one was stopped. */
  const fetchChunk = async (i: number, route: ChunkRoute, done: AbortController, asking: (peerId: string) => void = () => {}): Promise<boolean> => {
    try {
      const found = await o.fetch(i, route, AbortSignal.any([signal, done.signal]), asking)
      if (taken.has(i)) return false
      taken.add(i)
      o.take(i, found)
      done.abort()
      return true
    } catch (err) {
      if (taken.has(i) && !signal.aborted) return false
      throw err
    }
  }
  const askElsewhere = async (): Promise<void> => {
    for (const [i, ask] of inFlight) {
      if (ask.askedElsewhere || ask.peer === undefined) continue
      ask.askedElsewhere = true
      const slowAfter = Math.max(ENDGAME_WAIT_MS, fetched.chunks === 0 ? 0 : ENDGAME_SLOWNESS * fetched.ms / fetched.chunks)
      try {
        await pauseFor(scheduler, Math.max(0, ask.since + slowAfter - scheduler.now()), AbortSignal.any([signal, ask.done.signal]))
        // The peer asked last is the one holding the chunk back (failover may have moved it on since the pause began).
        await fetchChunk(i, { from: preferred, elsewhere: ask.peer }, ask.done)
      } catch (err) {
        if (signal.aborted) throw err
      }
    }
  }
  const worker = async (): Promise<void> => {
    try {
      while (next < o.count) {
        signal.throwIfAborted()
        const i = next++
        const first = preferred !== undefined && peers.claim(preferred)
        const done = new AbortController()
        const since = scheduler.now()
        const ask: ChunkAsk = { done, askedElsewhere: false, since }
        inFlight.set(i, ask)
        try {
          if (await fetchChunk(i, { from: preferred, first }, done, peer => { ask.peer = peer }) && !o.local(i)) {
            fetched.chunks++
            fetched.ms += scheduler.now() - since
          }
        } finally {
          inFlight.delete(i)
          if (first) peers.unclaim(preferred)
        }
      }
      await askElsewhere()
    } catch (err) {
      failed.abort(err)
      throw err
    }
  }
  await Promise.all(Array.from({ length: Math.min(CHUNK_CONCURRENCY, o.count) }, worker))
}
