import type { JobClientCodec, JobServerCodec } from './job-stream.ts'
import type { JobFrames } from '../core/wire/frame.ts'

/** The named error a peer's error frame becomes on the client's side. */
export type RemoteErrorOf = (peerId: string, code: string, message: string) => Error

/** The client's codec of a job protocol, from its wire module's frames. */
export function jobClientCodec<C extends { t: string }, S extends { t: string }> (frames: JobFrames<C, S>, remoteError: RemoteErrorOf): JobClientCodec<C, S> {
  return { protocol: frames.protocol, maxBytes: frames.serverMaxBytes, encode: frames.encodeClient, decode: frames.decodeServer, remoteError }
}

/** The server's codec of a job protocol; `writeTimeoutMs` is how long a client may leave a frame untaken. */
export function jobServerCodec<C extends { t: string }, S extends { t: string }> (frames: JobFrames<C, S>, writeTimeoutMs?: number): JobServerCodec<C, S> {
  return { maxBytes: frames.clientMaxBytes, encode: frames.encodeServer, decode: frames.decodeClient, writeTimeoutMs }
}
