import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import { errorMessage } from '../core/errors.ts'
import { findProviders } from './dht-providers.ts'
import { sha256Of, utf8 } from '../core/crypto/bytes.ts'
import type { Provider } from '../core/jobs/routing.ts'
import type { HyperspaceServices } from './services.ts'
import type { Libp2p } from '@libp2p/interface'

const RAW_CODEC = 0x55
const SHA2_256 = 0x12
const FIND_TIMEOUT_MS = 4_000
const MAX_PROVIDERS = 8
const PROVIDE_TIMEOUT_MS = 60_000

/** The DHT key under which the servers of a model announce themselves, per network. */
export function modelKey (networkId: string, model: string): CID {
  return CID.createV1(RAW_CODEC, createDigest(SHA2_256, sha256Of(utf8(`hyperspace-model/${networkId}/${model}`))))
}

/**
 * The DHT tier of inference routing: servers of a model are providers of its key. Browsers are DHT
 * clients and the relays hold the records.
 */
export class ModelProviders {
  private readonly provided = new Set<string>()
  /** Models whose last provide the DHT accepted and that were not forgotten since. */
  private readonly recorded = new Set<string>()

  constructor (
    private readonly libp2p: Libp2p<HyperspaceServices>,
    private readonly networkId: string,
    /** The models in the DHT changed (the status shows them). */
    private readonly onRecorded: () => void = () => {}
  ) {}

  /** Announces in the background; the DHT may need the relays first, so failures are only logged. */
  provide (model: string): void {
    this.provided.add(model)
    this.libp2p.contentRouting.provide(modelKey(this.networkId, model), { signal: AbortSignal.timeout(PROVIDE_TIMEOUT_MS) })
      .then(() => { this.accepted(model) }, err => { console.warn('hyperspace: could not announce', model, 'in the DHT:', errorMessage(err)) })
  }

  /** A provide went through; one that finished after forget() leaves no record here (the relays keep theirs). */
  private accepted (model: string): void {
    if (!this.provided.has(model) || this.recorded.has(model)) return
    this.recorded.add(model)
    this.onRecorded()
  }

  /** Models the relays hold a provider record of this node for, as far as this node knows. */
  inDht (): string[] {
    return [...this.recorded]
  }

  /** Models provided (or being provided) now. */
  models (): string[] {
    return [...this.provided]
  }

  /** Announces every served model again (after the relays come back, for instance). */
  reprovide (): void {
    for (const model of this.provided) this.provide(model)
  }

  /** Stops providing; a record the relays already hold stays until it expires. */
  forget (model: string): void {
    this.provided.delete(model)
    this.recorded.delete(model)
    this.libp2p.contentRouting.cancelReprovide?.(modelKey(this.networkId, model)).catch(() => {})
  }

  /** Servers of the model the DHT names, this node and `exclude` left out (see findProviders). */
  async find (model: string, exclude: ReadonlySet<string>, signal?: AbortSignal): Promise<Provider[]> {
    return await findProviders(this.libp2p, modelKey(this.networkId, model), {
      exclude: new Set([...exclude, this.libp2p.peerId.toString()]), timeoutMs: FIND_TIMEOUT_MS, max: MAX_PROVIDERS, slots: 1, ...(signal !== undefined ? { signal } : {})
    })
  }
}
