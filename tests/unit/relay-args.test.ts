import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { parseRelayArgs } from '../../src/relay/args.ts'
import { readRelayTls, RelayTlsError } from '../../src/relay/tls-files.ts'
import { makeTestCertificates, type TestCertificates } from '../test-certificates.ts'

describe('parseRelayArgs', () => {
  it('uses the defaults with no arguments', () => {
    expect(parseRelayArgs([])).toEqual({
      host: '127.0.0.1',
      port: 4002,
      announce: [],
      anchors: [],
      network: 'dev',
      maxReservations: 512,
      maxReservationsPerHost: 64,
      maxConnectionsPerHost: 128
    })
  })

  it('parses every option', () => {
    expect(parseRelayArgs([
      '--host', '0.0.0.0',
      '--port', '443',
      '--announce', '/dns4/relay.example.org/tcp/443/wss',
      '--key-file', 'relay.key',
      '--history-file', 'relay-history.json',
      '--anchor', '12D3KooWGRUVh2PoS7vSV7cvw1WeiRxtAn3YtFtYoXKKmvvqhNBx',
      '--network', 'mainnet',
      '--max-reservations', '100',
      '--max-per-host', '4',
      '--max-conns-per-host', '16',
      '--bootstrap-out', 'public/bootstrap.json',
      '--tls-cert', 'relay.crt',
      '--tls-key', 'relay.key'
    ])).toEqual({
      host: '0.0.0.0',
      port: 443,
      announce: ['/dns4/relay.example.org/tcp/443/wss'],
      keyFile: 'relay.key',
      historyFile: 'relay-history.json',
      anchors: ['12D3KooWGRUVh2PoS7vSV7cvw1WeiRxtAn3YtFtYoXKKmvvqhNBx'],
      network: 'mainnet',
      maxReservations: 100,
      maxReservationsPerHost: 4,
      maxConnectionsPerHost: 16,
      bootstrapOut: 'public/bootstrap.json',
      tls: { certFile: 'relay.crt', keyFile: 'relay.key' }
    })
  })

  it('--gateway takes an optional port, with the gateway\'s own options beside it', () => {
    expect(parseRelayArgs(['--gateway']).gateway).toEqual({ host: '127.0.0.1', port: 4010, apiKeysFile: '.gateway-keys.json', maxBodyBytes: 1_048_576 })
    expect(parseRelayArgs(['--gateway', '8080', '--port', '0']).gateway?.port).toBe(8080)
    expect(parseRelayArgs(['--gateway', '--port', '0']).port).toBe(0)
    expect(parseRelayArgs(['--gateway=0', '--gateway-host', '0.0.0.0', '--api-keys', 'keys.json', '--max-body', '2048', '--cors-origin', 'https://app.example.org']).gateway).toEqual({
      host: '0.0.0.0', port: 0, apiKeysFile: 'keys.json', maxBodyBytes: 2048, corsOrigin: 'https://app.example.org'
    })
    expect(parseRelayArgs([]).gateway).toBeUndefined()
  })

  it('rejects an --anchor that is not a peer id', () => {
    expect(() => parseRelayArgs(['--anchor', '/ip4/127.0.0.1/tcp/4002'])).toThrow(/--anchor .* is not a peer id/)
  })

  it('rejects gateway options without --gateway, and bad gateway values', () => {
    expect(() => parseRelayArgs(['--api-keys', 'keys.json'])).toThrow(/needs --gateway/)
    expect(() => parseRelayArgs(['--gateway=70000'])).toThrow(RangeError)
    expect(() => parseRelayArgs(['--gateway', '--max-body', '10'])).toThrow(RangeError)
    expect(() => parseRelayArgs(['--gateway', '--cors-origin', 'app.example.org'])).toThrow(RangeError)
    expect(() => parseRelayArgs(['--gateway', '--api-keys', ' '])).toThrow(RangeError)
  })

  it('allows --port 0 (a free port) and 65535', () => {
    expect(parseRelayArgs(['--port', '0']).port).toBe(0)
    expect(parseRelayArgs(['--port=65535']).port).toBe(65_535)
  })

  it('rejects bad ports with a RangeError', () => {
    for (const port of ['65536', '-1', '1.5', 'abc', '80x', 'NaN', '1048576']) {
      expect(() => parseRelayArgs([`--port=${port}`]), port).toThrow(RangeError)
    }
  })

  it('rejects an empty --port rather than picking a free port', () => {
    // Number('') is 0: `--port=$PORT` with PORT unset would silently listen on a random port.
    expect(() => parseRelayArgs(['--port='])).toThrow(RangeError)
    expect(() => parseRelayArgs(['--port', ' '])).toThrow(RangeError)
  })

  it('rejects bad reservation limits with a RangeError', () => {
    expect(() => parseRelayArgs(['--max-reservations', '0'])).toThrow(RangeError)
    expect(() => parseRelayArgs(['--max-per-host', '2.5'])).toThrow(RangeError)
    expect(() => parseRelayArgs(['--max-per-host', 'many'])).toThrow(RangeError)
    expect(() => parseRelayArgs(['--max-conns-per-host', '0'])).toThrow(RangeError)
    expect(parseRelayArgs(['--max-reservations', '1']).maxReservations).toBe(1)
  })

  it('rejects bad network names with a RangeError', () => {
    for (const network of ['Mainnet', '-dev', 'dev_1', '', 'a'.repeat(33), 'dev net']) {
      expect(() => parseRelayArgs([`--network=${network}`]), network).toThrow(RangeError)
    }
    expect(() => parseRelayArgs(['--network', 'dev-t6']), 'round suffix').toThrow(RangeError)
    expect(parseRelayArgs(['--network', 'dev-2']).network).toBe('dev-2')
  })

  it('collects repeated --announce options in order', () => {
    expect(parseRelayArgs([
      '--announce', '/ip4/1.2.3.4/tcp/4002/ws',
      '--announce', '/dns4/relay.example.org/tcp/443/wss',
      '--announce=/ip6/::1/tcp/4002/ws'
    ]).announce).toEqual(['/ip4/1.2.3.4/tcp/4002/ws', '/dns4/relay.example.org/tcp/443/wss', '/ip6/::1/tcp/4002/ws'])
  })

  it('throws on unknown flags, positionals and missing values', () => {
    expect(() => parseRelayArgs(['--verbose'])).toThrow(/Unknown option '--verbose'/)
    expect(() => parseRelayArgs(['-p', '4002'])).toThrow(/Unknown option '-p'/)
    expect(() => parseRelayArgs(['extra'])).toThrow(/Unexpected argument 'extra'/)
    expect(() => parseRelayArgs(['--port'])).toThrow(/argument missing/)
  })
})

describe('parseRelayArgs --tls-cert/--tls-key', () => {
  it('takes both files together', () => {
    expect(parseRelayArgs(['--tls-cert', 'relay.crt', '--tls-key', 'relay.key']).tls).toEqual({ certFile: 'relay.crt', keyFile: 'relay.key' })
    expect(parseRelayArgs([]).tls).toBeUndefined()
  })

  it('refuses one without the other, naming the missing one', () => {
    expect(() => parseRelayArgs(['--tls-cert', 'relay.crt'])).toThrow(/--tls-key is missing/)
    expect(() => parseRelayArgs(['--tls-key', 'relay.key'])).toThrow(/--tls-cert is missing/)
    expect(() => parseRelayArgs(['--tls-cert=', '--tls-key', 'relay.key'])).toThrow(RangeError)
  })

  it('with TLS, accepts only secure WebSocket announce addresses', () => {
    const tls = ['--tls-cert', 'relay.crt', '--tls-key', 'relay.key']
    expect(parseRelayArgs([...tls, '--announce', '/dns4/relay.example.org/tcp/443/wss', '--announce', '/ip4/1.2.3.4/tcp/443/tls/ws']).announce).toHaveLength(2)
    expect(() => parseRelayArgs([...tls, '--announce', '/ip4/1.2.3.4/tcp/4002/ws'])).toThrow(/must be a \/tls\/ws or \/wss address/)
    expect(() => parseRelayArgs([...tls, '--announce', 'relay.example.org:443'])).toThrow(/is not a multiaddr/)
    // Without TLS a /wss announcement is the reverse-proxy setup: the proxy ends TLS.
    expect(parseRelayArgs(['--announce', '/dns4/relay.example.org/tcp/443/wss']).announce).toEqual(['/dns4/relay.example.org/tcp/443/wss'])
  })
})

describe('readRelayTls', () => {
  let certs: TestCertificates
  let other: TestCertificates

  beforeAll(() => {
    certs = makeTestCertificates()
    other = makeTestCertificates()
  })

  it('reads a matching certificate and key', async () => {
    expect(await readRelayTls({ certFile: certs.certFile, keyFile: certs.keyFile })).toEqual({ cert: certs.cert, key: certs.key })
  })

  it('names a missing file and its flag', async () => {
    const missing = join(certs.dir, 'missing.pem')
    await expect(readRelayTls({ certFile: missing, keyFile: certs.keyFile })).rejects.toThrow(`--tls-cert ${missing} does not exist`)
    await expect(readRelayTls({ certFile: certs.certFile, keyFile: missing })).rejects.toThrow(`--tls-key ${missing} does not exist`)
    await expect(readRelayTls({ certFile: missing, keyFile: certs.keyFile })).rejects.toBeInstanceOf(RelayTlsError)
  })

  it('refuses files that are not PEM of the right kind', async () => {
    await expect(readRelayTls({ certFile: certs.keyFile, keyFile: certs.keyFile })).rejects.toThrow(/--tls-cert .* is not a PEM certificate/)
    await expect(readRelayTls({ certFile: certs.certFile, keyFile: certs.certFile })).rejects.toThrow(/--tls-key .* is not a PEM private key/)
  })

  it('refuses a key that belongs to another certificate', async () => {
    await expect(readRelayTls({ certFile: certs.certFile, keyFile: other.keyFile })).rejects.toThrow(/is not the private key of --tls-cert/)
  })
})
