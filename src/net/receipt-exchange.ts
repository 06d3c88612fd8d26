import { MalformedMessageError } from '../core/errors.ts'
import { checkFreshness, checkMatches, countersign, decodeSignedReceipt, encodeSignedReceipt, signAsClient, type ReceiptBody, type ReceiptExpectation, type SignedReceipt } from '../core/receipts/receipt.ts'
import type { PulseSigner, PulseVerifier } from '../core/crypto/signing.ts'

/**
 * The receipt step that ends every served job (DESIGN section 6), the same for each stream protocol:
 * the client signs what it got and sends it, the server checks it against the job it ran,
 * countersigns and sends it back, and both keep the result. Each protocol carries the receipt bytes
 * in its own frames; the channels below are how this module reaches them.
 */

export interface ReceiptParty {
  signer: PulseSigner
  verify: PulseVerifier
  /** A countersigned receipt this node took part in, as server or client. */
  onReceipt: (receipt: SignedReceipt) => Promise<void>
}

export interface ClientReceiptChannel {
  /** Sends the client-signed receipt (the protocol's sign frame). */
  send: (receipt: Uint8Array) => Promise<void>
  /** The server's countersigned receipt (its countersign frame); throws on any other frame. */
  receive: () => Promise<Uint8Array>
}

/** Client side: signs the body, sends it, and checks that what comes back is that receipt countersigned. */
export async function exchangeAsClient (party: ReceiptParty, body: ReceiptBody, channel: ClientReceiptChannel): Promise<SignedReceipt> {
  const signed = await signAsClient(body, party.signer)
  await channel.send(encodeSignedReceipt(signed))
  const receipt = await decodeSignedReceipt(await channel.receive(), party.verify, true)
  checkMatches(receipt.body, expectationOf(body))
  await party.onReceipt(receipt)
  return receipt
}

export interface ServerReceiptParty extends ReceiptParty {
  /** The current pulse round, to refuse stale receipts. */
  currentRound: () => number
}

/** The job as the server ran it: what the client's receipt must say. */
export interface ServedJob extends ReceiptExpectation {
  /** The units this server counts: the most it countersigns. */
  units: number
  /** What a unit is, for the error when the counts differ ("tokens", "texts"). */
  unitName: string
}

export interface ServerReceiptChannel {
  /** The client-signed receipt (the protocol's sign frame); throws on any other frame. */
  receive: () => Promise<Uint8Array>
  send: (receipt: Uint8Array) => Promise<void>
  /** Tells the client why its receipt was refused (the protocol's error frame). */
  sendError: (err: unknown) => Promise<void>
}

/** Server side: checks the client's receipt against the job, countersigns, keeps and returns it. */
export async function countersignAsServer (party: ServerReceiptParty, job: ServedJob, channel: ServerReceiptChannel): Promise<SignedReceipt> {
  try {
    const receipt = await decodeSignedReceipt(await channel.receive(), party.verify, false)
    checkMatches(receipt.body, job)
    // The client counts what it received and may count fewer than this server did (see
    // completionTokenBound): fewer still beats no receipt, more would pay for work not done.
    if (receipt.body.units > job.units) throw new MalformedMessageError(`the receipt counts ${receipt.body.units} ${job.unitName}, more than ${job.units}`)
    checkFreshness(receipt.body, party.currentRound())
    const full = await countersign(receipt, party.signer)
    await party.onReceipt(full)
    await channel.send(encodeSignedReceipt(full))
    return full
  } catch (err) {
    await channel.sendError(err).catch(() => {})
    throw err
  }
}

function expectationOf (body: ReceiptBody): ReceiptExpectation {
  return { job: body.job, nonce: body.nonce, server: body.server, client: body.client, model: body.model, output: body.output, kind: body.kind, cached: body.cached }
}
