import { TypedEventEmitter } from 'main-event'
import { errorMessage, ReceiptMismatchError } from '../core/errors.ts'
import { appendEntry, verifyChain, type LogEntry } from '../core/receipts/log.ts'
import { decodeLoggedReceipt, encodeSignedReceipt, receiptId, type ReceiptBody, type SignedReceipt, type WorkKind } from '../core/receipts/receipt.ts'
import { pointsOf, workPoints } from '../core/receipts/work-points.ts'

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
  entries: (networkId: string, peerId: string) => Promise<LogEntry[]>
  append: (networkId: string, peerId: string, entry: LogEntry) => Promise<void>
}

/**
 * One identity's receipts: its hash-chained log in IndexedDB, checked when loaded, and the work
 * points it backs (as the server only). Appends run one at a time so the chain stays a chain.
 */
export class ReceiptBook extends TypedEventEmitter<{ change: CustomEvent<ReceiptLogState> }> {
  private readonly log: LogEntry[] = []
  private readonly bodies: ReceiptBody[] = []
  private broken: string | null = null
  private readonly pending: LogEntry[] = []
  private writes = Promise.resolve()

  constructor (private readonly store: ReceiptLogStore, private readonly networkId: string, private readonly self: string) {
    super()
  }

  async load (): Promise<void> {
    const entries = await this.store.entries(this.networkId, this.self)
    try {
      verifyChain(entries)
    } catch (err) {
      this.broken = errorMessage(err)
      console.warn('hyperspace: receipt log', this.broken)
    }
    for (const entry of entries) {
      this.log.push(entry)
      try {
        const body = decodeLoggedReceipt(entry.receipt)
        // A log kept before history was per identity may hold receipts of an identity the device
        // had before this one (docs/architecture.md, Storage): they stay in the chain, and count
        // for nothing here.
        if (this.isParty(body)) this.bodies.push(body)
      } catch (err) {
        this.broken ??= `entry ${entry.seq} is not a receipt: ${errorMessage(err)}`
      }
    }
  }

  /**
   * Adds a countersigned receipt. Entries are stored strictly in order: one that could not be
   * written (a full disk) stays pending and is written before the next, so the stored chain never
   * has a gap; meanwhile the receipt still counts in this session.
   */
  async append (receipt: SignedReceipt): Promise<void> {
    if (!this.isParty(receipt.body)) throw new ReceiptMismatchError(`${this.self} is neither the server nor the client`)
    const entry = appendEntry(this.log.at(-1), encodeSignedReceipt(receipt))
    this.log.push(entry)
    this.bodies.push(receipt.body)
    this.pending.push(entry)
    this.safeDispatchEvent('change', { detail: this.state() })
    this.writes = this.writes.then(async () => { await this.flush() })
    await this.writes
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

  private isParty (body: ReceiptBody): boolean {
    return body.server === this.self || body.client === this.self
  }

  state (): ReceiptLogState {
    return { entries: this.log.length, broken: this.broken }
  }

  work (now: number): { work: number, today: number } {
    return workPoints(this.bodies, this.self, now)
  }

  /** The newest n receipts, newest first. */
  recent (n: number): ReceiptSummary[] {
    return this.bodies.slice(-n).reverse().map(b => {
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
