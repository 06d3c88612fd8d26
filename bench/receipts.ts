/**
 * `npx tsx bench/receipts.ts`: how many countersigned receipts a node verifies per second, the way
 * the receipts topic's validator does (strict CBOR decode of the envelope and body, two Ed25519
 * signature checks through the peer ids' public keys), against the bare Ed25519 verifications alone
 * on the same messages through the same library, and through Node's native (OpenSSL) Ed25519, in the
 * same run.
 */
import { createPublicKey, verify as nativeVerify } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { countersign, decodeSignedReceipt, encodeSignedReceipt, signAsClient, type ReceiptBody } from '../src/core/receipts/receipt.ts'
import { pulseSigner, verifyPulseSignature } from '../src/net/pulse-keys.ts'
import { peerIdFromString } from '@libp2p/peer-id'
import { figure, recordFigures } from './figures.ts'
import { fmtRatio, table } from './stats.ts'

const COUNT = 2_000
const RUNS = 3

const clientKey = await generateKeyPair('Ed25519')
const serverKey = await generateKeyPair('Ed25519')
const client = pulseSigner(clientKey)
const server = pulseSigner(serverKey)

const receipts: Uint8Array[] = []
for (let i = 0; i < COUNT; i++) {
  const body: ReceiptBody = {
    job: crypto.getRandomValues(new Uint8Array(16)),
    nonce: crypto.getRandomValues(new Uint8Array(16)),
    kind: 'inference',
    server: server.peerId,
    client: client.peerId,
    model: 'stories260K',
    units: 40 + (i % 200),
    cached: i % 10 === 0,
    output: crypto.getRandomValues(new Uint8Array(32)),
    round: 19_000_000 + i,
    ts: Date.now()
  }
  receipts.push(encodeSignedReceipt(await countersign(await signAsClient(body, client), server)))
}

/** The same two signature checks per receipt, without decoding anything. */
const decoded = await Promise.all(receipts.map(async bytes => await decodeSignedReceipt(bytes, verifyPulseSignature, true)))
const clientPub = peerIdFromString(client.peerId).publicKey
const serverPub = peerIdFromString(server.peerId).publicKey
if (clientPub === undefined || serverPub === undefined) throw new Error('Ed25519 peer ids carry their keys')

async function timeIt (fn: () => Promise<void>): Promise<number> {
  const times: number[] = []
  for (let run = 0; run < RUNS; run++) {
    const start = performance.now()
    await fn()
    times.push(performance.now() - start)
  }
  return times.sort((x, y) => x - y)[Math.floor(RUNS / 2)] ?? NaN
}

const full = await timeIt(async () => {
  for (const bytes of receipts) await decodeSignedReceipt(bytes, verifyPulseSignature, true)
})
const bare = await timeIt(async () => {
  for (const r of decoded) {
    await clientPub.verify(new Uint8Array([...new TextEncoder().encode('hyperspace-receipt/client/1'), ...r.bodyBytes]), r.clientSig)
    await serverPub.verify(new Uint8Array([...new TextEncoder().encode('hyperspace-receipt/server/1'), ...r.bodyBytes, ...r.clientSig]), r.serverSig ?? new Uint8Array(64))
  }
})

/** Node's OpenSSL Ed25519 on the same messages: what the signature checks cost natively. */
const spkiPrefix = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00])
const nativeKey = (raw: Uint8Array): ReturnType<typeof createPublicKey> => createPublicKey({ key: Buffer.from([...spkiPrefix, ...raw]), format: 'der', type: 'spki' })
const clientNative = nativeKey(clientPub.raw)
const serverNative = nativeKey(serverPub.raw)
const native = await timeIt(async () => {
  for (const r of decoded) {
    if (!nativeVerify(null, Buffer.from([...new TextEncoder().encode('hyperspace-receipt/client/1'), ...r.bodyBytes]), clientNative, r.clientSig)) throw new Error('native verify failed')
    if (!nativeVerify(null, Buffer.from([...new TextEncoder().encode('hyperspace-receipt/server/1'), ...r.bodyBytes, ...r.clientSig]), serverNative, r.serverSig ?? new Uint8Array(64))) throw new Error('native verify failed')
  }
})

const perSecond = (ms: number): string => `${Math.round(COUNT / ms * 1000)}/s`
console.log(`\nReceipt verification, ${COUNT} countersigned receipts, median of ${RUNS} runs (Node ${process.version})\n`)
console.log(table(['what', 'rate', 'time vs native'], [
  ['decode + verify both signatures (validator path)', perSecond(full), fmtRatio(full / native)],
  ['@libp2p/crypto Ed25519 verify × 2, no decoding', perSecond(bare), fmtRatio(bare / native)],
  ['node:crypto (OpenSSL) Ed25519 verify × 2 (reference)', perSecond(native), '1×']
]))
recordFigures({ 'receipts.validateMs': figure(full / COUNT, 'ms', 'decode and verify one countersigned receipt vs two OpenSSL Ed25519 verifies', native / COUNT) })
