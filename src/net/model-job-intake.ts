import { PeerStreams } from './peer-streams.ts'
import { asStrangers, type JobAdmission } from './stream-helpers.ts'
import type { JobServerStream } from './job-stream.ts'
import type { Stream } from '@libp2p/interface'

/** How long a client has, once its stream is open, to send its job frame. */
const JOB_READ_TIMEOUT_MS = 5_000
/**
 * Job streams one peer may have open here at once. Each holds its unread job frame (up to 160 KiB
 * for inference, 514 KiB for embed) until it is read; a client keeps at most two jobs in flight to
 * one server (src/core/tasks), and the queue refuses more than its few places anyway. Past it the
 * client is told busy before its frame is read.
 */
const MAX_STREAMS_PER_PEER = 8
/** What a busy answer asks a client to wait. */
const BUSY_RETRY_MS = 2_000

/** A model job's first frame: it names the model in its own way, and may be run for a stranger. */
interface ModelJobFrame { t: 'job', stranger?: true }

/** The serving side of a model job's stream (a JobServerStream of the protocol's frames), as the intake uses it. */
type ModelJobStream<J extends ModelJobFrame> = Pick<JobServerStream<J, unknown>, 'busy' | 'refuse' | 'admit' | 'gone'> & {
  first: (t: 'job', timeoutMs: number) => Promise<J | undefined>
}

/** What a model job's server is asked besides its admission. */
export interface ModelJobServing {
  /** Whether this node serves the model now. */
  serves: (model: string) => boolean
}

/**
 * How the servers of model jobs (inference, embed) take a job in before running it: a peer past
 * MAX_STREAMS_PER_PEER open streams is told busy unread; then the job frame, refused unless this node
 * serves its model; then a place in the queue, taken as strangers' when the client runs the job for
 * one (ForStranger).
 */
export class ModelJobIntake<J extends ModelJobFrame> {
  private readonly streamsByPeer = new PeerStreams(MAX_STREAMS_PER_PEER)

  /** `modelOf` reads a job's model; `served` names what a refusal says this node does not serve. */
  constructor (private readonly modelOf: (frame: J) => string, private readonly served: (model: string) => string) {}

  /** The admitted job's frame and its place's release; undefined once the client has been answered (busy, refused or failed). */
  async take (server: ModelJobStream<J>, stream: Stream, client: string, o: ModelJobServing & JobAdmission): Promise<{ frame: J, release: () => void } | undefined> {
    if (!this.streamsByPeer.track(client, stream)) {
      await server.busy(BUSY_RETRY_MS)
      return undefined
    }
    const frame = await server.first('job', JOB_READ_TIMEOUT_MS)
    if (frame === undefined) return undefined
    const model = this.modelOf(frame)
    if (!o.serves(model)) {
      await server.refuse('ERR_MODEL_NOT_SERVED', `this node does not serve ${this.served(model)}`)
      return undefined
    }
    const release = await server.admit(frame.stranger === true ? asStrangers(o) : o, server.gone, BUSY_RETRY_MS)
    return release === undefined ? undefined : { frame, release }
  }
}
