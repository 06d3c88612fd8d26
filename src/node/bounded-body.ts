import { concatAll } from '../core/crypto/bytes.ts'

/**
 * A response's body, read chunk by chunk whatever Content-Length claims: once it passes `maxBytes`
 * the read is cancelled (the rest is never read) and `tooLarge()` is thrown. No body reads as empty.
 */
export async function readBoundedBody (response: Response, maxBytes: number, tooLarge: () => Error): Promise<Uint8Array> {
  const reader = response.body?.getReader()
  if (reader === undefined) return new Uint8Array(0)
  const chunks: Uint8Array[] = []
  let length = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    length += value.byteLength
    if (length > maxBytes) {
      await reader.cancel().catch(() => {})
      throw tooLarge()
    }
    chunks.push(value)
  }
  return concatAll(chunks)
}
