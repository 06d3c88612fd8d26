import { ServingCoordinator } from './serving-coordinator.ts'
import { jobServiceBase, type ReceiptedJobContext, type ServeLimits } from './job-context.ts'
import { BLOCK_MAX_BYTES, blockOf, parseBlockCid, verifyBlock, type BlockCid, type VerifiedBlock } from '../core/blocks/cid.ts'
import { BlockNotFoundError, PeerLacksBlockError } from '../core/blocks/errors.ts'
import { assembleFile, chunkFile, decodeManifest, type FileManifest } from '../core/blocks/file.ts'
import { BlockHashMismatchError, HyperspaceError, InvalidRequestError, MalformedMessageError, NoProviderError, OversizeMessageError, PeerBusyError, SlowPeerError, UnsupportedVersionError, errorMessage } from '../core/errors.ts'
import { MAX_MISSES, missesOn, routeWithFailover, type Provider, type Tier } from '../core/jobs/routing.ts'
import { pauseFor } from '../core/scheduler.ts'
import { BlockService } from '../net/block-service.ts'
import { findProviders } from '../net/dht-providers.ts'
import { hasUnlimitedConnection } from '../net/job-streams.ts'
import type { BlockSession, FetchedBlock } from '../net/block-session.ts'
import type { BlockStats } from './api.ts'
import type { BlockProgress, CancelOptions, LongCallOptions } from '../core/progress.ts'
import type { Availability } from '../core/capabilities.ts'
import type { TransferFloor } from '../core/jobs/transfer-floor.ts'
import type { BlockStore } from '../storage/block-store.ts'
import type { Libp2p } from '@libp2p/interface'

export interface BlockCoordinatorOptions extends ReceiptedJobContext {
  store: BlockStore
  /** The storage capability is on: this node announces and serves its blocks. */
  serving: () => boolean
  /** Connected peers whose announcement says their storage works: the tier after the DHT. */
  storagePeers: () => string[]
  /** A peer sent bytes or frames that cannot be honest: the node's misbehaviour tracker. */
  onInvalid: (peerId: string, reason: string) => void
  /** What a get holds its providers to (BLOCK_TRANSFER_FLOOR unless a test shortens it). */
  transferFloor?: TransferFloor
}

/**
 * Blocks sent at once to peers, and requests that may wait (each holds up to 1 MiB in memory); per
 * peer 600 a minute, 64 at once, 2 running: a pipelining client has up to 4 blocks prepared ahead, all
 * waiting on its reading, and one slow reader must not hold every slot. One slot is kept for
 * established peers: fresh keys cost nothing, and their wants must not keep established peers' out.
 */
const PER_PEER_RUNNING = 2
const SERVE: ServeLimits = { slots: 4, waiting: 16, perPeer: PER_PEER_RUNNING, reserved: 1, perMinute: 600, burst: 64 }
/** Providers tried for one block before giving up. */
const MAX_ATTEMPTS = 6
/**
 * Pauses before busy holders are asked again, when no other holder served a block: a holder's line
 * waits less than the transfer floor's slack (block-service.ts), and slow readers holding its slots
 * are cut off by the floor within 5 s plus their block at 64 KiB/s (21 s for 1 MiB).
 */
const BUSY_PAUSES = 5
const BUSY_PAUSE_MS = 1_000
/**
 * "Not held" and "busy" answers are taken for one block besides (routing.ts, missesOn): fresh keys
 * announcing blocks they do not hold must not use up the attempts before a holder is asked (in a
 * young network nobody is established, and the DHT's order decides who is asked first).
 */
const MISSES = missesOn(['ERR_PEER_LACKS_BLOCK', 'ERR_PEER_BUSY'])
const FIND_TIMEOUT_MS = 5_000
const MAX_PROVIDERS = 8
const PROVIDE_TIMEOUT_MS = 60_000
/** Chunks of one file fetched at once: enough to fill a WebRTC path, few enough to keep memory bounded. */
const CHUNK_CONCURRENCY = 8
/** Other peers asked for a chunk while the manifest's peer has its share in flight, before it is asked anyway. */
const ALTERNATES_PER_CHUNK = 2
/**
 * At a get's end, a chunk the manifest's peer is serving is asked of another holder once it has been
 * in flight this long, and ENDGAME_SLOWNESS times the get's mean chunk so far: an honest WebRTC path
 * carries a 1 MiB chunk in well under a second, so a fast peer's chunks are not asked twice.
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
class GetPeers {
  private readonly claims = new Map<string, number>()
  readonly served = new Set<string>()
  private readonly passedOver = new Set<string>()

  /** Claims one of the peer's share of this get, at once (no await between the check and the count); false when it is taken. */
  claim (peerId: string): boolean {
    const held = this.claims.get(peerId) ?? 0
    if (held >= PER_PEER_RUNNING) return false
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

/** Errors only a broken or dishonest peer produces; "not found", "busy" and timeouts are not among them. */
function isMisbehaviour (err: unknown): boolean {
  return err instanceof BlockHashMismatchError || err instanceof MalformedMessageError ||
    err instanceof OversizeMessageError || err instanceof UnsupportedVersionError
}

/** The manifest a block holds, or undefined for a plain block. */
function manifestIn (bytes: Uint8Array): FileManifest | undefined {
  try {
    return decodeManifest(bytes)
  } catch (err) {
    if (err instanceof HyperspaceError) return undefined
    throw err
  }
}

/** How a chunk is routed: `from` is the manifest's peer (none for the manifest itself), asked first when `first`. */
interface ChunkRoute {
  from?: string
  first?: boolean
  /** A second ask for a chunk `from` is serving (the get's end, see content): `from` is not asked. */
  elsewhere?: boolean
}

/** A verified block, and the peer it came from when it was not in the store. */
interface Found {
  block: VerifiedBlock
  from?: string
}

/**
 * Puts fetched blocks in the store behind the fetch. A block that arrives while a write runs waits
 * for the next write, which takes all that waited in one transaction: a transaction per block costs
 * about as much as the transfer and trailed the network by a block per write.
 */
class WriteBehind {
  readonly written: BlockCid[] = []
  private waiting: VerifiedBlock[] = []
  private last: Promise<void> = Promise.resolve()

  constructor (private readonly store: BlockStore) {}

  add (block: VerifiedBlock): void {
    this.waiting.push(block)
    // A write is queued already and will take this block too.
    if (this.waiting.length > 1) return
    this.last = this.last.then(async () => {
      const batch = this.waiting
      this.waiting = []
      await this.store.put(batch)
      this.written.push(...batch.map(b => b.cid))
    })
    // Awaited in done(); until then a failed write must not surface as an unhandled rejection.
    this.last.catch(() => {})
  }

  /** Resolves once every block added is stored; rejects with the first write that failed (later ones do not run). */
  async done (): Promise<void> {
    await this.last
  }
}

async function bytesOf (input: Uint8Array | Blob): Promise<Uint8Array> {
  if (input instanceof Uint8Array) return input
  if (input instanceof Blob) return new Uint8Array(await input.arrayBuffer())
  throw new InvalidRequestError('blocks.put takes a Uint8Array or a Blob')
}

/**
 * `blocks.*` of the node: content-addressed storage. A put stores one block, or for larger content
 * its chunks and a manifest, and announces them in the DHT; a get reads the local store, else finds
 * providers (DHT, then connected storage peers), fetches with hash verification, keeps the block and
 * becomes a provider of it too.
 */
export class BlockCoordinator extends ServingCoordinator<BlockService> {
  protected readonly service: BlockService

  constructor (private readonly libp2p: Libp2p, private readonly o: BlockCoordinatorOptions) {
    super()
    this.service = new BlockService(libp2p, {
      ...jobServiceBase(o, SERVE),
      serving: o.serving,
      read: async cid => await o.store.get(cid),
      ...(o.transferFloor !== undefined ? { transferFloor: o.transferFloor } : {})
    })
  }

  /** The store was opened before the node started, so storage works whenever the node runs. */
  availability (): Availability {
    return { available: true }
  }

  /**
   * Stores the content and returns its CID: the block's own, or for more than a block its manifest's.
   * Progress goes 'hashing' then 'storing'; a cancelled put stores nothing (the store's write is one
   * transaction) and announces nothing.
   */
  async put (input: Uint8Array | Blob, options: LongCallOptions<BlockProgress> = {}): Promise<string> {
    options.signal?.throwIfAborted()
    const bytes = await bytesOf(input)
    // Content that is itself a manifest is wrapped as a one-chunk file, so get() returns it unchanged.
    if (bytes.byteLength <= BLOCK_MAX_BYTES && manifestIn(bytes) === undefined) {
      const block = await blockOf(bytes)
      options.onProgress?.({ phase: 'hashing', loaded: bytes.byteLength, total: bytes.byteLength })
      await this.o.store.put([block], options)
      this.announce([block.cid])
      return block.cid.toString()
    }
    const file = await chunkFile(bytes, BLOCK_MAX_BYTES, options)
    await this.o.store.put([...file.blocks, file.manifest], options)
    this.announce([file.manifest.cid, ...file.blocks.map(b => b.cid)])
    return file.manifest.cid.toString()
  }

  /**
   * The content under the CID, verified; a manifest's file is assembled from its chunks. Blocks from
   * the network are kept as they arrive, while the next ones are fetched, and announced once at the end.
   * Progress ('fetching') counts the content's bytes read or fetched, once the size is known.
   */
  async get (cidText: string, options: LongCallOptions<BlockProgress> = {}): Promise<Uint8Array> {
    options.signal?.throwIfAborted()
    // The blocks of this get from one peer follow each other on one stream (see block-session.ts).
    const session = this.service.session()
    try {
      return await this.content(session, cidText, options)
    } finally {
      session.close()
    }
  }

  private async content (session: BlockSession, cidText: string, options: LongCallOptions<BlockProgress>): Promise<Uint8Array> {
    const writes = new WriteBehind(this.o.store)
    const keep = (found: Found): Found => {
      if (found.from !== undefined) writes.add(found.block)
      return found
    }
    const cid = parseBlockCid(cidText)
    const peers = new GetPeers()
    const { block, from } = keep(await this.block(session, peers, cid, await this.o.store.get(cid), {}, options.signal))
    const manifest = manifestIn(block.bytes)
    const total = manifest?.size ?? block.bytes.byteLength
    let loaded = manifest === undefined ? total : 0
    options.onProgress?.({ phase: 'fetching', loaded, total })
    const chunks: VerifiedBlock[] = new Array<VerifiedBlock>(manifest?.blocks.length ?? 0)
    if (manifest !== undefined) {
      // Read at once, before the first write: a read queued behind the writes would wait for them.
      const stored = await this.o.store.getMany(manifest.blocks)
      let next = 0
      // The peer that had the manifest most likely has the chunks: it is asked first for each.
      const preferred = from
      // One chunk that cannot be had fails the get: the other workers stop with it, or a manifest naming
      // one missing chunk among 1,023 held ones would have them fetch a gigabyte for nothing.
      const failed = new AbortController()
      const signal = options.signal === undefined ? failed.signal : AbortSignal.any([options.signal, failed.signal])
      const take = (i: number, chunk: VerifiedBlock): void => {
        chunks[i] = chunk
        loaded += chunk.bytes.byteLength
        options.onProgress?.({ phase: 'fetching', loaded, total })
      }
      // Chunks the manifest's peer is serving, each with what stops its asks once one has it.
      const atPreferred = new Map<number, { done: AbortController, askedElsewhere: boolean, since: number }>()
      const fetched = { chunks: 0, ms: 0 }
      /** Asks for chunk `i`; false when the other ask for it got it first and this one was stopped. */
      const fetchChunk = async (i: number, route: ChunkRoute, done: AbortController): Promise<boolean> => {
        try {
          const found = await this.block(session, peers, manifest.blocks[i] as BlockCid, stored[i], route, AbortSignal.any([signal, done.signal]))
          if (chunks[i] !== undefined) return false
          take(i, keep(found).block)
          done.abort()
          return true
        } catch (err) {
          if (chunks[i] !== undefined && !signal.aborted) return false
          throw err
        }
      }
      /**
       * The get's end: with no chunk left to ask for, a worker asks other holders for a chunk the
       * manifest's peer has been serving for long (ENDGAME_WAIT_MS). That peer may send just above the
       * transfer floor (16 s a chunk) and hold the get to its pace; the first answer is taken and the
       * other ask given up. At most its share of chunks (2 MiB) is fetched twice, and a second ask that
       * finds no holder leaves the first.
       */
      const askElsewhere = async (): Promise<void> => {
        for (const [i, ask] of atPreferred) {
          if (ask.askedElsewhere) continue
          ask.askedElsewhere = true
          const slowAfter = Math.max(ENDGAME_WAIT_MS, fetched.chunks === 0 ? 0 : ENDGAME_SLOWNESS * fetched.ms / fetched.chunks)
          try {
            await pauseFor(this.o.scheduler, Math.max(0, ask.since + slowAfter - this.o.scheduler.now()), AbortSignal.any([signal, ask.done.signal]))
            await fetchChunk(i, { from: preferred, elsewhere: true }, ask.done)
          } catch (err) {
            if (signal.aborted) throw err
          }
        }
      }
      const worker = async (): Promise<void> => {
        try {
          while (next < manifest.blocks.length) {
            signal.throwIfAborted()
            const i = next++
            const first = preferred !== undefined && peers.claim(preferred)
            const done = new AbortController()
            const since = this.o.scheduler.now()
            if (first) atPreferred.set(i, { done, askedElsewhere: false, since })
            try {
              if (await fetchChunk(i, { from: preferred, first }, done) && stored[i] === undefined) {
                fetched.chunks++
                fetched.ms += this.o.scheduler.now() - since
              }
            } finally {
              atPreferred.delete(i)
              if (first) peers.unclaim(preferred)
            }
          }
          await askElsewhere()
        } catch (err) {
          failed.abort(err)
          throw err
        }
      }
      await Promise.all(Array.from({ length: Math.min(CHUNK_CONCURRENCY, manifest.blocks.length) }, worker))
    }
    await writes.done()
    this.announce(writes.written)
    return manifest === undefined ? block.bytes : assembleFile(manifest, chunks)
  }

  /** Peers the DHT names as providers of the CID (this node included when it holds the block). */
  async providers (cidText: string, options: CancelOptions = {}): Promise<string[]> {
    const cid = parseBlockCid(cidText)
    // The DHT lists this node too once it has announced the block; it is named once, first.
    const found = (await this.dhtProviders(cid, new Set([this.o.signer.peerId]), options.signal)).map(p => p.peerId)
    return await this.o.store.has(cid) ? [this.o.signer.peerId, ...found] : found
  }

  async stats (): Promise<BlockStats> {
    const usage = await this.o.store.usage()
    return { ...usage, quotaBytes: this.o.store.quotaBytes }
  }

  /** Announces every stored block again (the relays that hold the DHT came back), one after another. */
  reprovide (): void {
    if (!this.o.serving()) return
    this.o.store.cids().then(cids => { this.announce(cids.map(parseBlockCid)) })
      .catch(err => { console.warn('hyperspace: could not list blocks to announce', errorMessage(err)) })
  }

  /**
   * One block: the stored copy (`local`, as the caller read it) when it is good, else from the network
   * (`from` is the peer; the caller keeps it).
   */
  private async block (session: BlockSession, peers: GetPeers, cid: BlockCid, local: Uint8Array | undefined, chunk: ChunkRoute, signal?: AbortSignal): Promise<Found> {
    if (local !== undefined) {
      try {
        return { block: await verifyBlock(cid, local) }
      } catch (err) {
        if (!(err instanceof BlockHashMismatchError)) throw err
        // The copy on disk went bad: drop it, so it is neither served nor read again, and refetch.
        console.warn('hyperspace: stored block', cid.toString(), 'was corrupt; fetching it again')
        await this.o.store.delete(cid)
      }
    }
    const self = this.o.signer.peerId
    const { from } = chunk
    const notAsked = new Set([self, ...(chunk.elsewhere === true && from !== undefined ? [from] : [])])
    const others = (ids: Iterable<string>, exclude: ReadonlySet<string>): string[] =>
      [...new Set(ids)].filter(id => id !== self && id !== from && !exclude.has(id) && !peers.passesOver(id))
    const asPeers = (ids: string[]): Provider[] => ids.map(id => this.candidate(id, 'registry'))
    const askFrom = (exclude: ReadonlySet<string>): boolean => from !== undefined && chunk.elsewhere !== true && !exclude.has(from) && !peers.passesOver(from)
    const tiers: Tier[] = from === undefined ? [] : [
      async exclude => asPeers(chunk.first === true && askFrom(exclude) ? [from] : []),
      // While the manifest's peer has its share: peers that served this get, then storage peers.
      async exclude => asPeers(others([...peers.served, ...this.o.storagePeers()], exclude).slice(0, ALTERNATES_PER_CHUNK)),
      async exclude => asPeers(askFrom(exclude) ? [from] : [])
    ]
    tiers.push(
      // A connected holder first; the whole lookup only when it fails.
      async exclude => await this.dhtProviders(cid, new Set([...exclude, ...notAsked]), signal, true),
      async exclude => await this.dhtProviders(cid, new Set([...exclude, ...notAsked]), signal),
      async exclude => this.o.storagePeers().filter(id => !notAsked.has(id) && !exclude.has(id)).map(id => this.candidate(id, 'registry'))
    )
    const busy = new Set<string>()
    const attempt = async (provider: Provider): Promise<FetchedBlock> => {
      try {
        return await peers.fetch(provider.peerId, from !== undefined, async () => await session.fetch(provider.peerId, cid, signal))
      } catch (err) {
        if (err instanceof PeerBusyError) busy.add(provider.peerId)
        if (isMisbehaviour(err)) this.o.onInvalid(provider.peerId, `blocks: ${errorMessage(err)}`)
        throw err
      }
    }
    const route = { model: cid.toString(), maxAttempts: MAX_ATTEMPTS, miss: MISSES, established: this.o.established, ...(signal !== undefined ? { signal } : {}) }
    // A holder whose line is full says so (busy) rather than keep the want past the floor's slack: when
    // only busy holders are left, they are asked again after a pause, as a holder's slots free.
    let asked = tiers
    for (let pause = 0; ; pause++) {
      try {
        const routed = await routeWithFailover(asked, attempt, route)
        return { block: routed.result.block, from: routed.provider.peerId }
      } catch (err) {
        if (!(err instanceof NoProviderError)) throw err
        if (busy.size === 0 || pause === BUSY_PAUSES) throw new BlockNotFoundError(cid.toString(), err.message)
      }
      await pauseFor(this.o.scheduler, BUSY_PAUSE_MS, signal)
      const again = asPeers([...busy])
      busy.clear()
      asked = [async () => again]
    }
  }

  /** Asks this one peer for a block, without routing or failover: a spot-check of its storage (capability-prober.ts). */
  async fetchFrom (peerId: string, cid: BlockCid, { signal }: CancelOptions = {}): Promise<void> {
    await this.service.fetch(peerId, cid, signal)
  }

  private candidate (peerId: string, source: Provider['source']): Provider {
    return { peerId, source, latencyMs: null, queue: 0, slots: SERVE.slots, connected: hasUnlimitedConnection(this.libp2p, peerId) }
  }

  private async dhtProviders (cid: BlockCid, exclude: ReadonlySet<string>, signal?: AbortSignal, untilConnected = false): Promise<Provider[]> {
    // The whole lookup collects as many providers as misses are taken: fresh keys' records must not crowd out a holder's.
    const max = untilConnected ? MAX_PROVIDERS : MAX_MISSES
    return await findProviders(this.libp2p, cid, { exclude, timeoutMs: FIND_TIMEOUT_MS, max, slots: SERVE.slots, untilConnected, ...(signal !== undefined ? { signal } : {}) })
  }


  /** Provider records in the background, one at a time; the DHT may need the relays first, so failures are only logged. */
  private announce (cids: BlockCid[]): void {
    if (!this.o.serving() || cids.length === 0) return
    const step = async (): Promise<void> => {
      for (const cid of cids) {
        await this.libp2p.contentRouting.provide(cid, { signal: AbortSignal.timeout(PROVIDE_TIMEOUT_MS) })
          .catch(err => { console.warn('hyperspace: could not announce block', cid.toString(), 'in the DHT:', errorMessage(err)) })
      }
    }
    void step()
  }
}
