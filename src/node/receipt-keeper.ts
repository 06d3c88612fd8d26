import { errorMessage, ReplayedReceiptError } from '../core/errors.ts'
import { checkFreshness, decodeSignedReceipt, encodeSignedReceipt, receiptId, type ReceiptBody, type SignedReceipt } from '../core/receipts/receipt.ts'
import type { Startable } from '../core/lifecycle.ts'
import type { PulseVerifier } from '../core/crypto/signing.ts'
import type { ReceiptSink } from './job-context.ts'
import type { TypedEventTarget } from 'main-event'

/** Where receipts are logged: the identity's hash-chained log (ReceiptBook). */
export interface ReceiptLog {
  /** Logs a receipt this node is a party to; false when it held it already. */
  append: (receipt: SignedReceipt) => Promise<boolean>
  /** Whether it holds the receipt with this id (of the recent rounds a receipt can be fresh in). */
  has: (id: string) => boolean
  /** Whether this node is the receipt's server or client. */
  isParty: (body: ReceiptBody) => boolean
}

/**
 * Where receipts are published for anyone to check, and heard from (the receipts topic,
 * ReceiptGossip): its `receipt` events carry the countersigned receipts other nodes published.
 */
export interface ReceiptPublisher extends Startable, Pick<TypedEventTarget<{ receipt: CustomEvent<SignedReceipt> }>, 'addEventListener' | 'removeEventListener'> {
  publish: (receipt: SignedReceipt) => Promise<void>
}

export interface ReceiptKeeperOptions {
  verify: PulseVerifier
  /** The current pulse round: a receipt heard from the network is taken only while fresh. */
  currentRound: () => number
}

/**
 * The one home of the receipts every job kind ends with: each countersigned receipt this node takes
 * part in, as server or client, is logged, then published. Publishing is best effort: once logged,
 * the receipt backs this node's work points whether or not gossip carried it.
 *
 * A job's two parties cannot both be sure to keep its receipt: the server logs it before sending the
 * countersign frame, and a client that gives up or loses the stream after that never reads it. So a
 * receipt heard from the network that names this node as a party and that it lacks is logged too,
 * once both signatures check (one of them is this node's own, so it agreed to it) and while it is
 * fresh; the log takes each receipt once, so neither party counts one twice.
 */
export class ReceiptKeeper implements ReceiptSink, Startable {
  constructor (private readonly log: ReceiptLog, private readonly publisher: ReceiptPublisher, private readonly options: ReceiptKeeperOptions) {}

  async start (): Promise<void> {
    this.publisher.addEventListener('receipt', this.onHeard)
    await this.publisher.start()
  }

  async stop (): Promise<void> {
    this.publisher.removeEventListener('receipt', this.onHeard)
    await this.publisher.stop()
  }

  async keep (receipt: SignedReceipt): Promise<void> {
    // Held already: heard from the other party, who published it.
    if (!await this.log.append(receipt)) return
    this.publisher.publish(receipt).catch(err => {
      // Heard from the other party while this copy was being logged: it is on the topic already.
      if (!(err instanceof ReplayedReceiptError)) console.warn('hyperspace: could not gossip receipt', errorMessage(err))
    })
  }

  /**
   * Logs a receipt heard from the network when it names this node and is not held yet; resolves to
   * whether it was logged. Anything else (another pair's receipt, a bad signature, a stale one) is
   * left alone.
   */
  async adopt (heard: SignedReceipt): Promise<boolean> {
    if (!this.log.isParty(heard.body) || this.log.has(receiptId(heard.body))) return false
    // Checked again from its bytes, whoever heard it: the fields logged are the ones both signed.
    const receipt = await decodeSignedReceipt(encodeSignedReceipt(heard), this.options.verify, true)
    if (!this.log.isParty(receipt.body)) return false
    checkFreshness(receipt.body, this.options.currentRound())
    return await this.log.append(receipt)
  }

  private readonly onHeard = (evt: CustomEvent<SignedReceipt>): void => {
    this.adopt(evt.detail).catch(err => { console.warn('hyperspace: a heard receipt was not taken', errorMessage(err)) })
  }
}
