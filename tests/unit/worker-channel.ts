import type { RpcPort } from '../../src/core/worker-rpc/messages.ts'

/** The two ends of a MessageChannel as a page's worker and the worker's scope: structured clone and transfers as in a browser. */
export interface WorkerChannel {
  page: MessagePort & RpcPort & { terminate: () => void }
  worker: RpcPort
  close: () => void
}

export function workerChannel (): WorkerChannel {
  const { port1, port2 } = new MessageChannel()
  port1.start()
  port2.start()
  const close = (): void => { port1.close(); port2.close() }
  return { page: Object.assign(port1, { terminate: close }), worker: port2, close }
}
