import { MemoryDatastore } from 'datastore-core/memory'
import { Key, type KeyQuery, type Pair, type Query } from 'interface-datastore'
import { HyperspaceError } from '../core/errors.ts'
import { decodeVarint, encodeVarint } from '../core/wire/varint.ts'
import { DHT_DATASTORE_PREFIX } from '../net/dht.ts'
import type { AbortOptions } from '@libp2p/interface'

/** Where kad-dht keeps provider records: `<prefix>/<CID multihash, base32>/<provider peer id>`. */
const PROVIDERS = `${DHT_DATASTORE_PREFIX}/provider/`

export interface RelayDatastoreLimits {
  /** Records one provider may hold; its oldest goes when it adds one more. */
  perPeer: number
  /** Records in all; past that a new record displaces the oldest of the provider holding the most. */
  total: number
  /** Providers of one key (a lookup lists them all, each with its addresses); see RelayDatastore. */
  perKey: number
  /** The largest peer-store record (a peer's addresses, protocols and keys) the relay keeps. */
  maxPeerRecordBytes: number
}

/** Where libp2p's peer store keeps a peer's record. */
const PEERS = '/peers/'

/** A peer's record would outgrow what the relay keeps for one peer; the write that grows it is refused. */
export class PeerRecordTooLargeError extends HyperspaceError {
  override name = 'PeerRecordTooLargeError'

  constructor (size: number, limit: number) { super('ERR_PEER_RECORD_TOO_LARGE', `A peer record of ${size} bytes exceeds the relay's ${limit}`) }
}

/**
 * The relay's datastore (libp2p's in-memory one) with what peers can make it store bounded.
 *
 * Peer records: an ADD_PROVIDER carries the provider's addresses, which kad-dht merges into the peer
 * store, so one peer could grow its record without end (and each merge rewrites the whole record: ten
 * messages of 2,000 addresses took the relay 20 s). A write past `maxPeerRecordBytes` is refused, which
 * fails that message; an honest peer's record (a few addresses, its protocols, keys) is a few KiB.
 *
 * Provider records: kad-dht stores every ADD_PROVIDER it is sent and has no limit of its own (its
 * `providers` options are not used by this release), so any peer could fill the relay's memory with
 * records for keys nobody wants.
 *
 * Provider records live in their own maps, by CID and by provider, rather than in the store's one
 * map: kad-dht looks providers up with a prefix query, which the plain store answers by walking every
 * key it holds, peer records included; here a lookup reads only that CID's records.
 *
 * Eviction: a provider at its bound loses its oldest record (re-announcing a key makes it its newest);
 * at the total bound, the provider holding the most loses its oldest, so identities that flood the
 * store cannot keep a newcomer's first record out.
 *
 * Providers of one key: kad-dht answers a lookup with every provider of the key (each with up to
 * MAX_ANSWER_ADDRESS_BYTES of its addresses, src/net/dht.ts), so fresh keys providing one key would
 * make every lookup of it an answer built per request and larger than an asker reads
 * (MAX_DHT_MESSAGE_BYTES): nobody would find that key's providers through the relay. At `perKey`, a newcomer takes the place of the key's
 * oldest provider that is not established (aged in the relay's pulse view, or an anchor); an
 * established newcomer takes the oldest's if all are; a stranger finding only established providers
 * is not kept. Lookups take 8 providers at most (model-providers.ts, block-coordinator.ts).
 */
export class RelayDatastore extends MemoryDatastore {
  /** CID part → provider → when it was provided (ms; kad-dht writes it as a varint, uint8-varint's format). */
  private readonly byCid = new Map<string, Map<string, number>>()
  /** Provider → its id (one string for all its records) and the CID parts of its records, oldest first. */
  private readonly byProvider = new Map<string, { id: string, cids: Set<string> }>()
  private count = 0

  constructor (private readonly limits: RelayDatastoreLimits, private readonly established: (provider: string) => boolean = () => false) {
    super()
  }

  /** Provider records held now. */
  get providerRecords (): number {
    return this.count
  }

  override put (key: Key, value: Uint8Array, options?: AbortOptions): Key | Promise<Key> {
    const record = providerRecord(key)
    if (record === undefined) {
      if (value.byteLength > this.limits.maxPeerRecordBytes && key.toString().startsWith(PEERS)) throw new PeerRecordTooLargeError(value.byteLength, this.limits.maxPeerRecordBytes)
      return super.put(key, value, options)
    }
    options?.signal?.throwIfAborted()
    this.admit(record.cid, record.provider, decodeVarint(value))
    return key
  }

  override get (key: Key, options?: AbortOptions): Uint8Array | Promise<Uint8Array> {
    const record = providerRecord(key)
    const time = record === undefined ? undefined : this.byCid.get(record.cid)?.get(record.provider)
    return time === undefined ? super.get(key, options) : encodeVarint(time)
  }

  override has (key: Key, options?: AbortOptions): boolean | Promise<boolean> {
    const record = providerRecord(key)
    if (record === undefined) return super.has(key, options)
    return this.byCid.get(record.cid)?.has(record.provider) === true
  }

  override delete (key: Key, options?: AbortOptions): void | Promise<void> {
    const record = providerRecord(key)
    if (record === undefined) return super.delete(key, options)
    this.remove(record.cid, record.provider)
  }

  override async * _all (q: Query, options?: AbortOptions): AsyncGenerator<Pair> {
    const prefix = q.prefix ?? ''
    for (const [cid, provider, time] of this.providerRecordsUnder(prefix)) yield { key: new Key(`${PROVIDERS}${cid}/${provider}`), value: encodeVarint(time) }
    if (!prefix.startsWith(PROVIDERS)) yield * super._all(q, options)
  }

  override async * _allKeys (q: KeyQuery, options?: AbortOptions): AsyncGenerator<Key> {
    const prefix = q.prefix ?? ''
    for (const [cid, provider] of this.providerRecordsUnder(prefix)) yield new Key(`${PROVIDERS}${cid}/${provider}`)
    if (!prefix.startsWith(PROVIDERS)) yield * super._allKeys(q, options)
  }

  /**
   * The provider records a prefix query may match (the caller filters by the prefix). kad-dht asks
   * for one CID's records, `<PROVIDERS><cid>`, or for all of them.
   */
  private * providerRecordsUnder (prefix: string): Generator<[string, string, number]> {
    if (prefix.startsWith(PROVIDERS)) {
      const cid = prefix.slice(PROVIDERS.length).split('/')[0] ?? ''
      for (const [provider, time] of this.byCid.get(cid) ?? []) yield [cid, provider, time]
    } else if (PROVIDERS.startsWith(prefix)) {
      for (const [cid, records] of this.byCid) for (const [provider, time] of records) yield [cid, provider, time]
    }
  }

  private admit (cid: string, provider: string, time: number): void {
    const own = this.byProvider.get(provider) ?? { id: provider, cids: new Set<string>() }
    if (!own.cids.has(cid) && !this.makeRoomAt(cid, provider)) return
    if (own.cids.has(cid)) {
      // A re-announcement: newest again.
      own.cids.delete(cid)
    } else if (own.cids.size >= this.limits.perPeer) {
      this.removeOldest(own)
    } else if (this.count >= this.limits.total) {
      const largest = this.largestProvider()
      if (largest !== undefined) this.removeOldest(largest)
    }
    own.cids.add(cid)
    this.byProvider.set(own.id, own)
    let records = this.byCid.get(cid)
    if (records === undefined) {
      records = new Map()
      this.byCid.set(cid, records)
    }
    if (!records.has(own.id)) this.count++
    records.set(own.id, time)
  }

  /** Whether a new provider of `cid` is kept: a place is free, or one is freed (see the class comment). */
  private makeRoomAt (cid: string, provider: string): boolean {
    const records = this.byCid.get(cid)
    if (records === undefined || records.size < this.limits.perKey) return true
    let oldest: [string, number] | undefined
    let oldestStranger: [string, number] | undefined
    for (const [held, time] of records) {
      if (oldest === undefined || time < oldest[1]) oldest = [held, time]
      if (!this.established(held) && (oldestStranger === undefined || time < oldestStranger[1])) oldestStranger = [held, time]
    }
    const victim = oldestStranger ?? (this.established(provider) ? oldest : undefined)
    if (victim === undefined) return false
    this.remove(cid, victim[0])
    return true
  }

  private removeOldest (provider: { id: string, cids: Set<string> }): void {
    const oldest = provider.cids.values().next()
    if (oldest.done !== true) this.remove(oldest.value, provider.id)
  }

  private largestProvider (): { id: string, cids: Set<string> } | undefined {
    let largest: { id: string, cids: Set<string> } | undefined
    for (const provider of this.byProvider.values()) if (largest === undefined || provider.cids.size > largest.cids.size) largest = provider
    return largest
  }

  private remove (cid: string, provider: string): void {
    const records = this.byCid.get(cid)
    if (records?.delete(provider) !== true) return
    this.count--
    if (records.size === 0) this.byCid.delete(cid)
    const own = this.byProvider.get(provider)
    own?.cids.delete(cid)
    if (own?.cids.size === 0) this.byProvider.delete(provider)
  }
}

function providerRecord (key: Key): { cid: string, provider: string } | undefined {
  const text = key.toString()
  if (!text.startsWith(PROVIDERS)) return undefined
  const [cid, provider, extra] = text.slice(PROVIDERS.length).split('/')
  return cid === undefined || cid === '' || provider === undefined || provider === '' || extra !== undefined ? undefined : { cid, provider }
}
