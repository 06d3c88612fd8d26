import { execFileSync } from 'node:child_process'
import { X509Certificate, createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface TestCertificates {
  dir: string
  /** The server certificate for 127.0.0.1 and localhost, signed by the test CA. */
  certFile: string
  keyFile: string
  cert: string
  key: string
  /**
   * Base64 SHA-256 of the server certificate's SubjectPublicKeyInfo: the value Chromium's
   * `--ignore-certificate-errors-spki-list` takes, so it trusts this certificate and still does a
   * real TLS handshake, without trusting anything else.
   */
  spkiSha256: string
}

function openssl (dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] })
}

/** A throw-away CA and a server certificate it signed, valid for two days, made with the openssl CLI. */
export function makeTestCertificates (dir = mkdtempSync(join(tmpdir(), 'hs-tls-'))): TestCertificates {
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  openssl(dir, ['req', '-x509', ...ecKey, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=Hyperspace test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
  openssl(dir, ['req', ...ecKey, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1'])
  writeFileSync(join(dir, 'server.ext'), [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=serverAuth',
    'subjectAltName=IP:127.0.0.1,DNS:localhost'
  ].join('\n') + '\n')
  openssl(dir, ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'server.crt', '-days', '2', '-extfile', 'server.ext'])
  const cert = readFileSync(join(dir, 'server.crt'), 'utf8')
  const spki = new X509Certificate(cert).publicKey.export({ type: 'spki', format: 'der' })
  return {
    dir,
    certFile: join(dir, 'server.crt'),
    keyFile: join(dir, 'server.key'),
    cert,
    key: readFileSync(join(dir, 'server.key'), 'utf8'),
    spkiSha256: createHash('sha256').update(spki).digest('base64')
  }
}
