import { errorMessage, HyperspaceError, NoProviderError } from '../errors.ts'

/**
 * Inference routing (DESIGN section 4): candidates come in tiers — the capability registry, then DHT
 * providers of the model, then offers to a broadcast — and within a tier the best is tried first,
 * failing over to the next on error, timeout or "busy". Established peers come first within a tier:
 * what a provider says of its queue is a claim, and a fresh key's claims cost it nothing.
 */
export type ProviderSource = 'registry' | 'dht' | 'broadcast'

export interface Provider {
  peerId: string
  source: ProviderSource
  /** Ping round trip, null when not measured. */
  latencyMs: number | null
  /** Jobs queued or running at the provider, as it last announced. */
  queue: number
  /** Jobs it runs at once. */
  slots: number
  /** Already connected directly: no dial before the request. */
  connected: boolean
}

/** A guess at one job's length, to weigh a queue against a round trip. */
const JOB_ESTIMATE_MS = 1_500
const UNMEASURED_LATENCY_MS = 250
const DIAL_COST_MS = 500

/** Expected wait before the provider starts on a new job. */
export function expectedWaitMs (p: Provider): number {
  const latency = p.latencyMs ?? UNMEASURED_LATENCY_MS
  const queueWait = p.queue / Math.max(1, p.slots) * JOB_ESTIMATE_MS
  return latency + queueWait + (p.connected ? 0 : DIAL_COST_MS)
}

/**
 * Whether this node counts a peer as established: aged in its pulse history or one of its anchors, a
 * key that has done verified work round after round (JobContext.established).
 */
export type Established = (peerId: string) => boolean

const nobody: Established = () => false

/**
 * Established peers first, then connected ones, then the rest; within each, best first by expected
 * wait; peer id breaks ties so every run orders the same way. Without the first rule, fresh keys
 * announcing an empty queue would take every attempt a request has (maxAttempts) before an honest
 * provider was tried. Without the second, in a young network where nobody is established yet, one
 * connection relaying hundreds of fresh keys' announcements (an empty queue, an address that leads
 * nowhere) would do the same: a key this node has a connection to cost its owner a connection, and
 * the node dials the peers that serve something, so honest providers are connected soon.
 */
export function rankProviders (providers: readonly Provider[], exclude: ReadonlySet<string>, established: Established = nobody): Provider[] {
  const rankOf = (p: Provider): number => established(p.peerId) ? 0 : p.connected ? 1 : 2
  const unique = new Map<string, { provider: Provider, rank: number }>()
  for (const p of providers) if (!exclude.has(p.peerId) && !unique.has(p.peerId)) unique.set(p.peerId, { provider: p, rank: rankOf(p) })
  return [...unique.values()]
    .sort((a, b) => a.rank - b.rank || expectedWaitMs(a.provider) - expectedWaitMs(b.provider) || (a.provider.peerId < b.provider.peerId ? -1 : a.provider.peerId > b.provider.peerId ? 1 : 0))
    .map(entry => entry.provider)
}

export interface Failure {
  peerId: string
  error: string
  /** The error's code (HyperspaceError), ERR_TIMEOUT for a timeout, else ERR_UNKNOWN. */
  code: string
}

export interface Routed<T> {
  result: T
  provider: Provider
  failed: Failure[]
}

/** A tier returns its candidates, given the peers already tried (and this node's own id) to leave out. */
export type Tier = (exclude: ReadonlySet<string>) => Promise<Provider[]>

/** Failures counted apart from the attempts (RouteOptions.miss). */
export interface MissRule {
  is: (err: unknown) => boolean
  max: number
}

/** Answers a peer gives at once, without end, that take a round trip on an open connection. */
export const MAX_MISSES = 24

/**
 * A peer's refusal with one of these codes is a miss: "busy", "I do not serve that model", "I do not
 * hold that block". An honest peer gives them too, so they are not misbehaviour; fresh keys give
 * them at once, and must not use up a request's attempts before an honest provider is asked.
 */
export function missesOn (codes: readonly string[]): MissRule {
  return { is: err => err instanceof HyperspaceError && codes.includes(err.code), max: MAX_MISSES }
}

export interface RouteOptions {
  model: string
  maxAttempts: number
  signal?: AbortSignal
  /** Errors that must not be retried elsewhere (the request itself is wrong, or the user stopped). */
  isFinal?: (err: unknown) => boolean
  /** Peers tried first within a tier (rankProviders). */
  established?: Established
  /**
   * Failures that cost one round trip on a connection already open, such as "I do not hold it":
   * they count against `maxMisses` rather than `maxAttempts`, so that fresh keys answering at once,
   * ahead of an honest provider in a young network where nobody is established, cannot use up the
   * attempts. Without it every failure counts against `maxAttempts`.
   */
  miss?: MissRule
}

/**
 * Tries providers tier by tier, best first, until one succeeds; each tier is asked only when the
 * ones before it are used up. Throws NoProviderError listing every failure.
 */
export async function routeWithFailover<T> (tiers: readonly Tier[], attempt: (p: Provider) => Promise<T>, options: RouteOptions): Promise<Routed<T>> {
  const failed: Failure[] = []
  const tried = new Set<string>()
  let attempts = 0
  let misses = 0
  for (const tier of tiers) {
    const candidates = rankProviders(await tier(tried), tried, options.established)
    for (const provider of candidates) {
      if (attempts >= options.maxAttempts || misses >= (options.miss?.max ?? Infinity)) throw new NoProviderError(options.model, failed.map(describe), failed.map(f => f.code))
      options.signal?.throwIfAborted()
      tried.add(provider.peerId)
      try {
        return { result: await attempt(provider), provider, failed }
      } catch (err) {
        if (options.signal?.aborted === true || options.isFinal?.(err) === true) throw err
        if (options.miss?.is(err) === true) misses++
        else attempts++
        failed.push({ peerId: provider.peerId, error: err instanceof HyperspaceError ? err.message : errorMessage(err), code: codeOf(err) })
      }
    }
  }
  throw new NoProviderError(options.model, failed.map(describe), failed.map(f => f.code))
}

function codeOf (err: unknown): string {
  if (err instanceof HyperspaceError) return err.code
  return err instanceof Error && err.name === 'TimeoutError' ? 'ERR_TIMEOUT' : 'ERR_UNKNOWN'
}

function describe (f: Failure): string {
  return `${f.peerId.slice(-8)}: ${f.error}`
}
