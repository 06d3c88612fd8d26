import { peerIdFromString } from '@libp2p/peer-id'
import type { JobStreamOpener } from '../net/job-streams.ts'
import { BLOCK_MAX_BYTES, cidForBlock, parseBlockCid, verifyBlock, type BlockCid } from '../core/blocks/cid.ts'
import { BlockNotFoundError } from '../core/blocks/errors.ts'
import { assembleFile, chunkFile, decodeManifest, type FileManifest } from '../core/blocks/file.ts'
import { BlockHashMismatchError, HyperspaceError, InvalidRequestError, MalformedMessageError, NoProviderError, OversizeMessageError, UnsupportedVersionError, errorMessage } from '../core/errors.ts'
import { JobQueue, PeerRateLimit } from '../core/inference/admission.ts'
import { routeWithFailover, type Provider, type Tier } from '../core/inference/routing.ts'
import { BlockService } from '../net/block-service.ts'
import type { BlockStats } from './api.ts'
import type { Availability } from '../core/capabilities.ts'
import type { PulseSigner, PulseVerifier } from '../core/pulse/messages.ts'
import type { SignedReceipt } from '../core/receipts/receipt.ts'
import type { Scheduler } from '../core/scheduler.ts'
import type { BlockStore } from '../storage/block-store.ts'
import type { Libp2p } from '@libp2p/interface'

export interface BlockCoordinatorOptions {
  /** How job streams reach peers (see src/net/job-streams.ts). */
  streams?: JobStreamOpener
  store: BlockStore
  scheduler: Scheduler
  signer: PulseSigner
  verify: PulseVerifier
  /** The storage capability is on: this node announces and serves its blocks. */
  serving: () => boolean
  /** Connected peers whose announcement says their storage works: the tier after the DHT. */
  storagePeers: () => string[]
  /** The current pulse round: receipts are dated by it. */
  currentRound: () => number
  /** Keeps and gossips a countersigned receipt (the node's ReceiptBook and ReceiptGossip). */
  keepReceipt: (receipt: SignedReceipt) => Promise<void>
  /** A peer sent bytes or frames that cannot be honest: the node's misbehaviour tracker. */
  onInvalid: (peerId: string, reason: string) => void
}

/** Blocks sent at once to peers, and requests that may wait: each holds up to 1 MiB in memory. */
const SERVE_SLOTS = 4
const SERVE_WAITING = 16
/** Providers tried for one block before giving up. */
const MAX_ATTEMPTS = 6
const FIND_TIMEOUT_MS = 5_000
const MAX_PROVIDERS = 8
const PROVIDE_TIMEOUT_MS = 60_000
/** Chunks of one file fetched at once: enough to fill a WebRTC path, few enough to keep memory bounded. */
const CHUNK_CONCURRENCY = 4

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
export class BlockCoordinator {
  private readonly service: BlockService

  constructor (private readonly libp2p: Libp2p, private readonly o: BlockCoordinatorOptions) {
    this.service = new BlockService(libp2p, {
      ...(o.streams !== undefined ? { streams: o.streams } : {}),
      signer: o.signer,
      verify: o.verify,
      scheduler: o.scheduler,
      serving: o.serving,
      read: async cid => await o.store.get(cid),
      queue: new JobQueue(SERVE_SLOTS, SERVE_WAITING, o.signer.peerId),
      rateLimit: new PeerRateLimit(600, 64),
      currentRound: o.currentRound,
      onReceipt: o.keepReceipt
    })
  }

  async start (): Promise<void> {
    await this.service.start()
  }

  async stop (): Promise<void> {
    await this.service.stop()
  }

  /** The store was opened before the node started, so storage works whenever the node runs. */
  availability (): Availability {
    return { available: true }
  }

  /** Stores the content and returns its CID: the block's own, or for more than a block its manifest's. */
  async put (input: Uint8Array | Blob): Promise<string> {
    const bytes = await bytesOf(input)
    // Content that is itself a manifest is wrapped as a one-chunk file, so get() returns it unchanged.
    if (bytes.byteLength <= BLOCK_MAX_BYTES && manifestIn(bytes) === undefined) {
      const cid = await cidForBlock(bytes)
      await this.o.store.put([{ cid, bytes }])
      this.announce([cid])
      return cid.toString()
    }
    const file = await chunkFile(bytes)
    await this.o.store.put([...file.blocks, { cid: file.root, bytes: file.manifest }])
    this.announce([file.root, ...file.blocks.map(b => b.cid)])
    return file.root.toString()
  }

  /** The content under the CID, verified; a manifest's file is assembled from its chunks. */
  async get (cidText: string, options: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    const cid = parseBlockCid(cidText)
    const { bytes, from } = await this.block(cid, [], options.signal)
    const manifest = manifestIn(bytes)
    if (manifest === undefined) return bytes
    const chunks: Uint8Array[] = new Array<Uint8Array>(manifest.blocks.length)
    let next = 0
    // The peer that had the manifest most likely has the chunks: it is asked first for each.
    const preferred = from === undefined ? [] : [from]
    const worker = async (): Promise<void> => {
      while (next < manifest.blocks.length) {
        const i = next++
        chunks[i] = (await this.block(manifest.blocks[i] as BlockCid, preferred, options.signal)).bytes
      }
    }
    await Promise.all(Array.from({ length: Math.min(CHUNK_CONCURRENCY, manifest.blocks.length) }, worker))
    return await assembleFile(manifest, chunks)
  }

  /** Peers the DHT names as providers of the CID (this node included when it holds the block). */
  async providers (cidText: string, options: { signal?: AbortSignal } = {}): Promise<string[]> {
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

  /** One block: from the store when it holds a good copy, else from the network (then kept). */
  private async block (cid: BlockCid, preferred: string[], signal?: AbortSignal): Promise<{ bytes: Uint8Array, from?: string }> {
    const local = await this.o.store.get(cid)
    if (local !== undefined) {
      try {
        await verifyBlock(cid, local)
        return { bytes: local }
      } catch (err) {
        if (!(err instanceof BlockHashMismatchError)) throw err
        // The copy on disk went bad: drop it, so it is neither served nor read again, and refetch.
        console.warn('hyperspace: stored block', cid.toString(), 'was corrupt; fetching it again')
        await this.o.store.delete(cid)
      }
    }
    const self = this.o.signer.peerId
    const tiers: Tier[] = [
      async exclude => preferred.filter(id => !exclude.has(id)).map(id => this.candidate(id, 'registry')),
      async exclude => await this.dhtProviders(cid, new Set([...exclude, self]), signal),
      async exclude => this.o.storagePeers().filter(id => id !== self && !exclude.has(id)).map(id => this.candidate(id, 'registry'))
    ]
    let routed
    try {
      routed = await routeWithFailover(tiers, async provider => {
        try {
          return await this.service.fetch(provider.peerId, cid, signal)
        } catch (err) {
          if (isMisbehaviour(err)) this.o.onInvalid(provider.peerId, `blocks: ${errorMessage(err)}`)
          throw err
        }
      }, { model: cid.toString(), maxAttempts: MAX_ATTEMPTS, ...(signal !== undefined ? { signal } : {}) })
    } catch (err) {
      if (err instanceof NoProviderError) throw new BlockNotFoundError(cid.toString(), err.message)
      throw err
    }
    const { bytes } = routed.result
    await this.o.store.put([{ cid, bytes }])
    this.announce([cid])
    return { bytes, from: routed.provider.peerId }
  }

  /** Asks this one peer for a block, without routing or failover: a spot-check of its storage (capability-prober.ts). */
  async fetchFrom (peerId: string, cid: BlockCid, signal: AbortSignal): Promise<void> {
    await this.service.fetch(peerId, cid, signal)
  }

  private candidate (peerId: string, source: Provider['source']): Provider {
    const connected = this.libp2p.getConnections(peerIdFromString(peerId)).some(c => c.status === 'open')
    return { peerId, source, latencyMs: null, queue: 0, slots: SERVE_SLOTS, connected }
  }

  private async dhtProviders (cid: BlockCid, exclude: ReadonlySet<string>, signal?: AbortSignal): Promise<Provider[]> {
    const found: Provider[] = []
    const timeout = AbortSignal.timeout(FIND_TIMEOUT_MS)
    try {
      for await (const peer of this.libp2p.contentRouting.findProviders(cid, { signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]) })) {
        const id = peer.id.toString()
        if (exclude.has(id) || found.some(p => p.peerId === id)) continue
        found.push(this.candidate(id, 'dht'))
        if (found.length >= MAX_PROVIDERS) break
      }
    } catch (err) {
      // No DHT reachable yet, or the lookup ran out of time: the next tier is asked instead.
      if (signal?.aborted === true) throw err
    }
    return found
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
