import type { Readable, Writable } from 'node:stream'
import type { ConnectOverCDPTransport } from '@playwright/test'
import { LabServiceError } from './errors.ts'

/** Bound on one CDP message from Chromium, far above any the lab's calls produce. */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024

/**
 * Chromium's `--remote-debugging-pipe`: it reads commands from its fd 3 and writes replies and
 * events to its fd 4, each a JSON text ended by a NUL byte.
 */
export function pipeTransport (toBrowser: Writable, fromBrowser: Readable): ConnectOverCDPTransport {
  // Playwright may still send while the browser closes (a target attaching as it goes): a write to the
  // ended pipe is dropped, and a broken pipe's error is left to the read side's close, so neither
  // throws out of the lab run before its cleanup.
  const transport: ConnectOverCDPTransport = {
    send: message => { if (toBrowser.writable) toBrowser.write(JSON.stringify(message) + '\0') },
    close: () => { toBrowser.end() }
  }
  toBrowser.on('error', () => {})
  let pending: Buffer[] = []
  let pendingBytes = 0
  fromBrowser.on('data', (chunk: Buffer) => {
    let start = 0
    for (let end = chunk.indexOf(0); end !== -1; end = chunk.indexOf(0, start)) {
      const text = Buffer.concat([...pending, chunk.subarray(start, end)]).toString()
      pending = []
      pendingBytes = 0
      start = end + 1
      let message: object
      try {
        message = JSON.parse(text) as object
      } catch {
        fromBrowser.destroy(new LabServiceError(`Chromium wrote a CDP message that is not JSON: ${text.slice(0, 200)}`))
        return
      }
      transport.onmessage?.(message)
    }
    pending.push(chunk.subarray(start))
    pendingBytes += chunk.length - start
    if (pendingBytes > MAX_MESSAGE_BYTES) fromBrowser.destroy(new LabServiceError(`a CDP message from Chromium passed ${MAX_MESSAGE_BYTES} bytes`))
  })
  let failure: Error | undefined
  fromBrowser.on('error', err => { failure = err })
  fromBrowser.once('close', () => { transport.onclose?.(failure?.message) })
  return transport
}
