import { JobClientStream, JobServerStream } from './job-stream.ts'
import { jobClientCodec, jobServerCodec } from './job-codecs.ts'
import { JobService, type ReceiptedJobServiceOptions } from './job-service.ts'
import { resetAfter, withTimeout } from './stream-helpers.ts'
import { JobDeadlineError, MalformedMessageError, errorMessage } from '../core/errors.ts'
import { ProxyOffError } from '../core/proxy/errors.ts'
import { sha256Of } from '../core/crypto/bytes.ts'
import { PROXY_FETCH_TIMEOUT_MS, type ProxyFetcher } from '../core/proxy/fetcher.ts'
import { proxyErrorFromRemote } from '../core/proxy/remote-error.ts'
import { checkProxyUrl, type ProxyMethod, type ProxyUrlPolicy } from '../core/proxy/url-policy.ts'
import {
  PROXY_JOB_FRAMES, PROXY_JOB_ID_BYTES, PROXY_NONCE_BYTES, PROXY_PROTOCOL, type ProxyHeaders
} from '../core/wire/proxy.ts'
import type { SignedReceipt } from '../core/receipts/receipt.ts'
import type { Libp2p, Stream } from '@libp2p/interface'

/** One fetch this node made for a peer, as the Proxy panel lists it (the host only: the path is the peer's business). */
export interface ServedFetch {
  peer: string
  host: string
  method: ProxyMethod
  /** The target's status, or the refusal's code. */
  outcome: number | string
  bytes: number
  ms: number
  at: number
}

export interface ProxyServiceOptions extends ReceiptedJobServiceOptions {
  /** Whether this node proxies now (its proxy capability is on). */
  serving: () => boolean
  /** What this node fetches: its network's rules and its user's host lists. */
  policy: () => ProxyUrlPolicy
  fetcher: ProxyFetcher
  /** A fetch made for a peer ended, well or not. */
  onServed?: (entry: ServedFetch) => void
}

export interface ProxiedResponse {
  status: number
  headers: ProxyHeaders
  body: Uint8Array
  /** The countersigned proxy receipt; absent when the server did not countersign (the response is good all the same). */
  receipt?: SignedReceipt
}

const FETCH_READ_TIMEOUT_MS = 5_000
const ACCEPT_TIMEOUT_MS = 15_000
/** The target's time limit, plus the frame's way back. */
const RESPONSE_TIMEOUT_MS = PROXY_FETCH_TIMEOUT_MS + 10_000
const BUSY_RETRY_MS = 2_000

/**
 * `/hyperspace/proxy/1.0.0` on both sides: fetches URLs for peers (URL policy, host lists,
 * admission, per-peer rate, receipt countersigning), and asks a chosen peer to fetch one.
 */
export class ProxyService extends JobService {
  /** Fetches in flight for peers: switching the capability off aborts them at once. */
  private readonly inFlight = new Set<AbortController>()

  constructor (libp2p: Libp2p, private readonly options: ProxyServiceOptions) {
    super(libp2p, PROXY_PROTOCOL, 32, options.streams)
  }

  override async stop (): Promise<void> {
    this.abortAll()
    await super.stop()
  }

  /** Stops every fetch in flight for peers; each gets ERR_PROXY_OFF. */
  abortAll (): void {
    for (const controller of this.inFlight) controller.abort(new ProxyOffError(this.options.signer.peerId))
    this.inFlight.clear()
  }

  /**
   * Asks the peer to fetch `url` (checked already by the caller). Throws the named proxy errors the
   * peer answers with, PeerBusyError, or a decoding error for a broken frame.
   */
  async request (peerId: string, url: URL, method: ProxyMethod, maxBytes: number, signal?: AbortSignal): Promise<ProxiedResponse> {
    const codec = jobClientCodec(PROXY_JOB_FRAMES, (peer, code, message) => proxyErrorFromRemote(peer, code, message, url, maxBytes))
    return await JobClientStream.run(this.streams, peerId, codec, withTimeout(signal, ACCEPT_TIMEOUT_MS), async client => {
      const job = crypto.getRandomValues(new Uint8Array(PROXY_JOB_ID_BYTES))
      await client.send({ t: 'fetch', job, url: url.href, method, max: maxBytes }, signal)
      const first = await client.accepted(withTimeout(signal, ACCEPT_TIMEOUT_MS))
      const answer = await client.read(withTimeout(signal, RESPONSE_TIMEOUT_MS))
      if (answer.t !== 'response') throw new MalformedMessageError(`expected response, got ${answer.t}`)
      if (answer.body.byteLength > maxBytes) throw new MalformedMessageError(`a body of ${answer.body.byteLength} bytes, more than the ${maxBytes} asked for`)
      const response = { status: answer.status, headers: answer.headers, body: answer.body }
      try {
        const receipt = await client.exchangeReceipt(this.options, {
          job, nonce: first.nonce, kind: 'proxy', server: peerId, client: this.options.signer.peerId, model: method,
          units: answer.body.byteLength, cached: false, output: sha256Of(answer.body), round: this.options.currentRound(), ts: Date.now()
        }, signal)
        return { ...response, receipt }
      } catch (err) {
        // The receipt's failure costs the proxy its points, not the client its response.
        signal?.throwIfAborted()
        console.warn('hyperspace: no proxy receipt from', peerId, errorMessage(err))
        return response
      }
    })
  }

  protected async serve (stream: Stream, client: string): Promise<void> {
    const o = this.options
    const server = new JobServerStream(stream, client, jobServerCodec(PROXY_JOB_FRAMES, o.writeTimeoutMs))
    const frame = await server.first('fetch', FETCH_READ_TIMEOUT_MS)
    if (frame === undefined) return
    const { job, method, max } = frame
    const started = o.scheduler.now()
    const log = (host: string, outcome: number | string, bytes: number): void => {
      o.onServed?.({ peer: client, host, method, outcome, bytes, ms: o.scheduler.now() - started, at: Date.now() })
    }
    let url: URL
    try {
      if (!o.serving()) throw new ProxyOffError(o.signer.peerId)
      url = checkProxyUrl(frame.url, o.policy())
    } catch (err) {
      log(hostOf(frame.url), codeOf(err), 0)
      await server.fail(err)
      return
    }
    const release = await server.admit(o, AbortSignal.any([server.gone, AbortSignal.timeout(RESPONSE_TIMEOUT_MS)]), BUSY_RETRY_MS)
    if (release === undefined) {
      log(url.hostname, 'ERR_PEER_BUSY', 0)
      return
    }
    const nonce = crypto.getRandomValues(new Uint8Array(PROXY_NONCE_BYTES))
    const controller = new AbortController()
    this.inFlight.add(controller)
    // The client waits no longer for its response: however slowly it reads, the slot is back by then.
    const cancelDeadline = resetAfter(stream, RESPONSE_TIMEOUT_MS, () => new JobDeadlineError(client, RESPONSE_TIMEOUT_MS))
    let body: Uint8Array
    try {
      await server.send({ t: 'accept', nonce })
      // Switched off while waiting for a slot: nothing is fetched.
      if (!o.serving()) throw new ProxyOffError(o.signer.peerId)
      const answer = await o.fetcher.fetch({ url, method, maxBytes: max, signal: AbortSignal.any([server.gone, controller.signal]) })
      body = answer.body
      await server.send({ t: 'response', ...answer })
      log(url.hostname, answer.status, body.byteLength)
    } catch (err) {
      cancelDeadline()
      release()
      const reason = controller.signal.aborted ? controller.signal.reason : err
      log(url.hostname, codeOf(reason), 0)
      await server.fail(reason)
      return
    } finally {
      cancelDeadline()
      release()
      this.inFlight.delete(controller)
    }
    await server.countersign(o, {
      job, nonce, server: o.signer.peerId, client, model: method, output: sha256Of(body), kind: 'proxy', cached: false, units: body.byteLength, unitName: 'bytes'
    })
  }
}

function codeOf (err: unknown): string {
  const code = (err as { code?: unknown } | undefined)?.code
  return typeof code === 'string' ? code.slice(0, 64) : 'ERR_INTERNAL'
}

/** The host of a URL a peer sent, for the log only; what does not parse is shown as such. */
function hostOf (url: string): string {
  try {
    return new URL(url).hostname.slice(0, 253)
  } catch {
    return '(not a URL)'
  }
}
