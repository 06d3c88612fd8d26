import { describe, expect, it } from 'vitest'
import { parseRelayArgs } from '../../src/relay/args.ts'

describe('parseRelayArgs', () => {
  it('uses the defaults with no arguments', () => {
    expect(parseRelayArgs([])).toEqual({
      host: '127.0.0.1',
      port: 4002,
      announce: [],
      network: 'dev',
      maxReservations: 512,
      maxReservationsPerHost: 64
    })
  })

  it('parses every option', () => {
    expect(parseRelayArgs([
      '--host', '0.0.0.0',
      '--port', '443',
      '--announce', '/dns4/relay.example.org/tcp/443/wss',
      '--key-file', 'relay.key',
      '--network', 'mainnet',
      '--max-reservations', '100',
      '--max-per-host', '4',
      '--bootstrap-out', 'public/bootstrap.json'
    ])).toEqual({
      host: '0.0.0.0',
      port: 443,
      announce: ['/dns4/relay.example.org/tcp/443/wss'],
      keyFile: 'relay.key',
      network: 'mainnet',
      maxReservations: 100,
      maxReservationsPerHost: 4,
      bootstrapOut: 'public/bootstrap.json'
    })
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
