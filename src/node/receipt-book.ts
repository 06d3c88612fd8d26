import { TypedEventEmitter } from 'main-event'
import { errorMessage, ReceiptMismatchError } from '../core/errors.ts'
import { appendEntry, checkEntry, GENESIS_HASH, type LogEntry } from '../core/receipts/log.ts'
import { decodeLoggedReceipt, encodeSignedReceipt, RECEIPT_MAX_AGE_ROUNDS, receiptId, type ReceiptBody, type SignedReceipt, type WorkKind } from '../core/receipts/receipt.ts'
import { pointsOf, WorkTally } from '../core/receipts/work-points.ts'

/** A receipt as the UI lists it, from this node's side. */
export interface ReceiptSummary {
  id: string
  kind: WorkKind
  role: 'server' | 'client'
  /** The other party. */
  peer: string
  model: string
  units: number
  /** Answered from the server's cache: paid at the cache rate. */
  cached: boolean
  /** Work points it earned this node (0 as the client). */
  points: number
  round: number
  ts: number
}

export interface ReceiptLogState {
  entries: number
  /** Null while the chain verifies; the first break otherwise. */
  broken: string | null
}

/** One log per network and identity. */
export interface ReceiptLogStore {
  /** Up to `limit` entries from sequence number `from` on, in order. */
  page: (networkId: string, peerId: string, from: number, limit: number) => Promise<LogEntry[]>
  append: (networkId: string, peerId: string, entry: LogEntry) => Promise<void>
}

/** Entries read from the store at a time while loading: memory holds a page, not the log. */
const LOAD_PAGE = 256
/** The newest receipts held in memory to list (`recent`); the log itself stays in the store. */
export const RECENT_RECEIPTS = 1000
/** The newest receipts this identity served, kept signed for points proofs: a proof lists at most this many. */
export const SERVED_KEPT = 2048
/**
 * How many rounds before its newest receipt the book remembers receipt ids, so that a copy heard
 * again (the other party's gossip) is not logged twice. A receipt is taken only while fresh
 * (RECEIPT_MAX_AGE_ROUNDS, one round of clock skew), so this spans that with room to spare.
 */
export const KNOWN_ROUNDS = 4 * (RECEIPT_MAX_AGE_ROUNDS + 2)
/** At most this many ids remembered, whatever the rounds: the oldest go first. */
export const KNOWN_MAX = 100_000

/**
 * One identity's receipts: its hash-chained log in IndexedDB, checked page by page when loaded, and
 * the work points it backs (as the server only). Memory holds the last entry (to chain the next),
 * the newest RECENT_RECEIPTS receipts and running totals, whatever the log's length. Appends run one
 * at a time so the chain stays a chain.
 */
export class ReceiptBook extends TypedEventEmitter<{ change: CustomEvent<ReceiptLogState> }> {
  private last?: LogEntry
  private entries = 0
  /** The newest receipts this identity is a party to, oldest first. */
  private readonly newest: ReceiptBody[] = []
  /** The newest SERVED_KEPT receipts it served, signed as logged, oldest first. */
  private readonly servedReceipts: Array<{ round: number, bytes: Uint8Array }> = []
  private readonly tally: WorkTally
  private broken: string | null = null
  private readonly pending: LogEntry[] = []
  private writes = Promise.resolve()
  /** Ids of the receipts of the last KNOWN_ROUNDS rounds it holds, with their rounds, in the order taken. */
  private readonly known = new Map<string, number>()
  private newestRound = 0

  constructor (private readonly store: ReceiptLogStore, private readonly networkId: string, private readonly self: string) {
    super()
    this.tally = new WorkTally(self)
  }

  async load (): Promise<void> {
    for (let from = 0; ;) {
      const page = await this.store.page(this.networkId, this.self, from, LOAD_PAGE)
      for (const entry of page) this.read(entry)
      const last = page.at(-1)
      if (last === undefined || page.length < LOAD_PAGE) break
      // From the last sequence number read, not the count: a log with a gap (reported as broken) is still read once.
      from = last.seq + 1
    }
    if (this.broken !== null) console.warn('hyperspace: receipt log', this.broken)
  }

  /** One stored entry, in order: its place in the chain checked, its receipt counted. */
  private read (entry: LogEntry): void {
    if (this.broken === null) {
      try {
        checkEntry(entry, this.entries, this.last?.hash ?? GENESIS_HASH)
      } catch (err) {
        this.broken = errorMessage(err)
      }
    }
    this.last = entry
    this.entries++
    try {
      const body = decodeLoggedReceipt(entry.receipt)
      // A log kept before history was per identity may hold receipts of an identity the device
      // had before this one (docs/internals.md, Storage): they stay in the chain, and count
      // for nothing here.
      if (this.isParty(body)) this.count(body, entry.receipt)
    } catch (err) {
      this.broken ??= `entry ${entry.seq} is not a receipt: ${errorMessage(err)}`
    }
  }

  private count (body: ReceiptBody, bytes: Uint8Array): void {
    this.remember(body)
    this.newest.push(body)
    if (this.newest.length > RECENT_RECEIPTS) this.newest.shift()
    if (body.server === this.self) {
      this.servedReceipts.push({ round: body.round, bytes })
      if (this.servedReceipts.length > SERVED_KEPT) this.servedReceipts.shift()
    }
    this.tally.add(body)
  }

  /** Remembers a held receipt's id; ids KNOWN_ROUNDS older than the newest are forgotten. */
  private remember (body: ReceiptBody): void {
    this.newestRound = Math.max(this.newestRound, body.round)
    this.known.set(receiptId(body), body.round)
    for (const [id, round] of this.known) {
      if (round >= this.newestRound - KNOWN_ROUNDS && this.known.size <= KNOWN_MAX) break
      this.known.delete(id)
    }
  }

  /** Whether it holds the receipt with this id (of those of the last KNOWN_ROUNDS rounds). */
  has (id: string): boolean {
    return this.known.has(id)
  }

  /**
   * Adds a countersigned receipt, unless it holds it already (then false): both the job and the
   * other party's gossip can bring the same receipt, and it is logged and counted once. Entries are
   * stored strictly in order: one that could not be written (a full disk) stays pending and is
   * written before the next, so the stored chain never has a gap; meanwhile the receipt still
   * counts in this session.
   */
  async append (receipt: SignedReceipt): Promise<boolean> {
    if (!this.isParty(receipt.body)) throw new ReceiptMismatchError(`${this.self} is neither the server nor the client`)
    if (this.known.has(receiptId(receipt.body))) return false
    const entry = appendEntry(this.last, encodeSignedReceipt(receipt))
    this.last = entry
    this.entries++
    this.count(receipt.body, entry.receipt)
    this.pending.push(entry)
    this.safeDispatchEvent('change', { detail: this.state() })
    this.writes = this.writes.then(async () => { await this.flush() })
    await this.writes
    return true
  }

  private async flush (): Promise<void> {
    try {
      for (let next = this.pending[0]; next !== undefined; next = this.pending[0]) {
        await this.store.append(this.networkId, this.self, next)
        this.pending.shift()
      }
    } catch (err) {
      console.warn(`hyperspace: ${this.pending.length} receipt(s) not stored yet`, err)
    }
  }

  isParty (body: ReceiptBody): boolean {
    return body.server === this.self || body.client === this.self
  }

  /** The signed receipts it served dated rounds `from` to `to` (of the newest SERVED_KEPT). */
  served (from: number, to: number): Uint8Array[] {
    return this.servedReceipts.filter(r => r.round >= from && r.round <= to).map(r => r.bytes)
  }

  state (): ReceiptLogState {
    return { entries: this.entries, broken: this.broken }
  }

  work (now: number): { work: number, today: number } {
    return this.tally.points(now)
  }

  /** The newest n receipts (at most RECENT_RECEIPTS), newest first. */
  recent (n: number): ReceiptSummary[] {
    return this.newest.slice(-n).reverse().map(b => {
      const role = b.server === this.self ? 'server' : 'client'
      return {
        id: receiptId(b),
        kind: b.kind,
        role,
        peer: role === 'server' ? b.client : b.server,
        model: b.model,
        units: b.units,
        cached: b.cached,
        points: role === 'server' ? pointsOf(b) : 0,
        round: b.round,
        ts: b.ts
      }
    })
  }
}
