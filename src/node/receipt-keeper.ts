import { errorMessage } from '../core/errors.ts'
import type { Startable } from '../core/lifecycle.ts'
import type { SignedReceipt } from '../core/receipts/receipt.ts'
import type { ReceiptSink } from './job-context.ts'

/** Where receipts are logged: the identity's hash-chained log (ReceiptBook). */
export interface ReceiptLog {
  append: (receipt: SignedReceipt) => Promise<void>
}

/** Where receipts are published for anyone to check: the receipts topic (ReceiptGossip). */
export interface ReceiptPublisher extends Startable {
  publish: (receipt: SignedReceipt) => Promise<void>
}

/**
 * The one home of the receipts every job kind ends with: each countersigned receipt this node takes
 * part in, as server or client, is logged, then published. Publishing is best effort: once logged,
 * the receipt backs this node's work points whether or not gossip carried it.
 */
export class ReceiptKeeper implements ReceiptSink, Startable {
  constructor (private readonly log: ReceiptLog, private readonly publisher: ReceiptPublisher) {}

  async start (): Promise<void> {
    await this.publisher.start()
  }

  async stop (): Promise<void> {
    await this.publisher.stop()
  }

  async keep (receipt: SignedReceipt): Promise<void> {
    await this.log.append(receipt)
    this.publisher.publish(receipt).catch(err => { console.warn('hyperspace: could not gossip receipt', errorMessage(err)) })
  }
}
