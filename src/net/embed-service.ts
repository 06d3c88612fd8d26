import { JobClientStream, JobServerStream } from './job-stream.ts'
import { jobClientCodec, jobServerCodec } from './job-codecs.ts'
import { JobService, type ReceiptedJobServiceOptions } from './job-service.ts'
import { ModelJobIntake, type ModelJobServing } from './model-job-intake.ts'
import { resetAfter, withTimeout } from './stream-helpers.ts'
import { JobDeadlineError, MalformedMessageError } from '../core/errors.ts'
import {
  EMBED_JOB_FRAMES, EMBED_JOB_ID_BYTES, EMBED_NONCE_BYTES, EMBED_PROTOCOL, RemoteEmbeddingError, decodeVectors, encodeVectors, type EmbedClientFrame
} from '../core/wire/embed.ts'
import { sha256Of } from '../core/crypto/bytes.ts'
import type { JobRequestOptions } from '../core/jobs/admission.ts'
import type { SignedReceipt } from '../core/receipts/receipt.ts'
import type { Libp2p, Stream } from '@libp2p/interface'

/** Vectors computed on this device. */
export interface LocalEmbedding {
  dims: number
  vectors: Float32Array[]
}

export interface EmbedServiceOptions extends ReceiptedJobServiceOptions, ModelJobServing {
  run: (texts: string[], signal: AbortSignal) => Promise<LocalEmbedding>
}

export interface RemoteEmbedding extends LocalEmbedding {
  receipt: SignedReceipt
}

const ACCEPT_TIMEOUT_MS = 15_000
/** A full batch of long texts on a slow CPU, plus the wait for a slot. */
const RESULT_TIMEOUT_MS = 60_000

type EmbedJobFrame = Extract<EmbedClientFrame, { t: 'job' }>

const CLIENT_CODEC = jobClientCodec(EMBED_JOB_FRAMES, (peerId, code, message) => new RemoteEmbeddingError(peerId, code, message))

/**
 * `/hyperspace/embed/1.0.0` on both sides: serves this node's embedding model to peers (admission,
 * per-peer rate limit, receipt countersigning) and sends this node's texts to a chosen peer.
 */
export class EmbedService extends JobService {
  private readonly intake = new ModelJobIntake((frame: EmbedJobFrame) => frame.model, model => `embeddings of ${model}`)

  constructor (libp2p: Libp2p, private readonly options: EmbedServiceOptions) {
    super(libp2p, EMBED_PROTOCOL, 64, options.streams)
  }

  /** Embeds the texts on a peer; both sides end up with the countersigned receipt. */
  async request (peerId: string, model: string, texts: string[], { signal, forStranger }: JobRequestOptions = {}): Promise<RemoteEmbedding> {
    return await JobClientStream.run(this.streams, peerId, CLIENT_CODEC, withTimeout(signal, ACCEPT_TIMEOUT_MS), async client => {
      const job = crypto.getRandomValues(new Uint8Array(EMBED_JOB_ID_BYTES))
      await client.send({ t: 'job', job, model, texts, ...(forStranger === true ? { stranger: true } : {}) }, signal)
      const first = await client.accepted(withTimeout(signal, ACCEPT_TIMEOUT_MS))
      const result = await client.read(withTimeout(signal, RESULT_TIMEOUT_MS))
      if (result.t !== 'result') throw new MalformedMessageError(`expected result, got ${result.t}`)
      if (result.count !== texts.length) throw new MalformedMessageError(`${result.count} vectors for ${texts.length} texts`)
      const vectors = decodeVectors(result.vectors, result.dims, result.count)
      const receipt = await client.exchangeReceipt(this.options, {
        job, nonce: first.nonce, kind: 'embedding', server: peerId, client: this.options.signer.peerId, model,
        units: texts.length, cached: false, output: sha256Of(result.vectors), round: this.options.currentRound(), ts: Date.now()
      }, signal)
      return { dims: result.dims, vectors, receipt }
    })
  }

  protected async serve (stream: Stream, client: string): Promise<void> {
    const o = this.options
    const server = new JobServerStream(stream, client, jobServerCodec(EMBED_JOB_FRAMES, o.writeTimeoutMs))
    const taken = await this.intake.take(server, stream, client, o)
    if (taken === undefined) return
    const { frame: { job, model, texts }, release } = taken
    const nonce = crypto.getRandomValues(new Uint8Array(EMBED_NONCE_BYTES))
    let bytes: Uint8Array
    // The client waits no longer for its result: however slowly it reads, the slot is back by then.
    const cancelDeadline = resetAfter(stream, RESULT_TIMEOUT_MS, () => new JobDeadlineError(client, RESULT_TIMEOUT_MS))
    try {
      await server.send({ t: 'accept', nonce })
      const { dims, vectors } = await o.run(texts, AbortSignal.any([server.gone, AbortSignal.timeout(RESULT_TIMEOUT_MS)]))
      if (vectors.length !== texts.length) throw new MalformedMessageError(`the engine returned ${vectors.length} vectors for ${texts.length} texts`)
      bytes = encodeVectors(vectors, dims)
      await server.send({ t: 'result', dims, count: vectors.length, vectors: bytes })
    } catch (err) {
      cancelDeadline()
      release()
      await server.fail(err)
      return
    } finally {
      cancelDeadline()
      release()
    }
    await server.countersign(o, {
      job, nonce, server: o.signer.peerId, client, model, output: sha256Of(bytes), kind: 'embedding', cached: false, units: texts.length, unitName: 'texts'
    })
  }
}
