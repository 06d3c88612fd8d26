import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { HyperspaceError, errorMessage } from '../core/errors.ts'
import type { RelayTlsFiles } from './args.ts'

/** The relay's certificate or key cannot be used; the message names the file and the flag. */
export class RelayTlsError extends HyperspaceError {
  override name = 'RelayTlsError'

  constructor (message: string, options?: { cause?: unknown }) { super('ERR_RELAY_TLS', message, options) }
}

/** PEM text the https server takes as is. */
export interface RelayTls {
  cert: string
  key: string
}

async function readPem (path: string, flag: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be read (${errorMessage(err)})`
    throw new RelayTlsError(`${flag} ${path} ${reason}`, { cause: err })
  }
}

/**
 * Reads and checks the relay's certificate and key before anything listens: a mismatched pair would
 * otherwise only show as failed TLS handshakes in the browsers that dial it.
 */
export async function readRelayTls (files: RelayTlsFiles): Promise<RelayTls> {
  const [cert, key] = await Promise.all([readPem(files.certFile, '--tls-cert'), readPem(files.keyFile, '--tls-key')])
  let certificate: X509Certificate
  try {
    certificate = new X509Certificate(cert)
  } catch (err) {
    throw new RelayTlsError(`--tls-cert ${files.certFile} is not a PEM certificate`, { cause: err })
  }
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey(key)
  } catch (err) {
    throw new RelayTlsError(`--tls-key ${files.keyFile} is not a PEM private key`, { cause: err })
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new RelayTlsError(`--tls-key ${files.keyFile} is not the private key of --tls-cert ${files.certFile}`)
  }
  return { cert, key }
}
