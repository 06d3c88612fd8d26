import { ServingCoordinator } from './serving-coordinator.ts'
import { jobServiceBase, type ReceiptedJobContext, type ServeLimits } from './job-context.ts'
import { BLOCK_MAX_BYTES, blockOf, parseBlockCid, verifyBlock, type BlockCid, type VerifiedBlock } from '../core/blocks/cid.ts'
import { BlockNotFoundError } from '../core/blocks/errors.ts'
import { assembleFile, chunkFile, decodeManifest, type FileManifest } from '../core/blocks/file.ts'
import { BlockHashMismatchError, HyperspaceError, InvalidRequestError, MalformedMessageError, NoProviderError, OversizeMessageError, PeerBusyError, UnsupportedVersionError, errorMessage } from '../core/errors.ts'
import { MAX_MISSES, missesOn, routeWithFailover, type Provider, type Tier } from '../core/jobs/routing.ts'
import { pauseFor } from '../core/scheduler.ts'
import { compacted } from '../core/crypto/bytes.ts'
import { BlockService } from '../net/block-service.ts'
import { fetchChunks, GetPeers, type ChunkRoute } from './chunk-fetch.ts'
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
/** Other peers asked for a chunk while the manifest's peer has its share in flight, before it is asked anyway. */
const ALTERNATES_PER_CHUNK = 2

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
    const peers = new GetPeers(PER_PEER_RUNNING)
    const { block, from } = keep(await this.block(session, peers, cid, await this.o.store.get(cid), {}, options.signal))
    const manifest = manifestIn(block.bytes)
    const total = manifest?.size ?? block.bytes.byteLength
    let loaded = manifest === undefined ? total : 0
    options.onProgress?.({ phase: 'fetching', loaded, total })
    const chunks: VerifiedBlock[] = new Array<VerifiedBlock>(manifest?.blocks.length ?? 0)
    if (manifest !== undefined) {
      // Read at once, before the first write: a read queued behind the writes would wait for them.
      const stored = await this.o.store.getMany(manifest.blocks)
      await fetchChunks({
        count: manifest.blocks.length,
        local: i => stored[i] !== undefined,
        // The peer that had the manifest most likely has the chunks: it is asked first for each.
        preferred: from,
        peers,
        scheduler: this.o.scheduler,
        ...(options.signal !== undefined ? { signal: options.signal } : {}),
        fetch: async (i, route, signal, asking) => await this.block(session, peers, manifest.blocks[i] as BlockCid, stored[i], route, signal, asking),
        take: (i, found) => {
          const chunk = keep(found).block
          chunks[i] = chunk
          loaded += chunk.bytes.byteLength
          options.onProgress?.({ phase: 'fetching', loaded, total })
        }
      })
    }
    await writes.done()
    this.announce(writes.written)
    // A block's bytes may be a view of the frame it came in: the caller gets bytes of its own.
    return manifest === undefined ? compacted(block.bytes) : assembleFile(manifest, chunks)
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
  private async block (session: BlockSession, peers: GetPeers, cid: BlockCid, local: Uint8Array | undefined, chunk: ChunkRoute, signal?: AbortSignal, asking: (peerId: string) => void = () => {}): Promise<Found> {
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
    const { from, elsewhere } = chunk
    const notAsked = new Set([self, ...(elsewhere !== undefined ? [elsewhere] : [])])
    const others = (ids: Iterable<string>, exclude: ReadonlySet<string>): string[] =>
      [...new Set(ids)].filter(id => !notAsked.has(id) && id !== from && !exclude.has(id) && !peers.passesOver(id))
    const asPeers = (ids: string[]): Provider[] => ids.map(id => this.candidate(id, 'registry'))
    const askFrom = (exclude: ReadonlySet<string>): boolean => from !== undefined && !notAsked.has(from) && !exclude.has(from) && !peers.passesOver(from)
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
      asking(provider.peerId)
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
