import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  DEFAULT_ROUND_MS,
  MAX_BOOTSTRAP_ADDRS,
  isDevNetwork,
  linkSettingsKey,
  linkSettingsOf,
  isNetworkIdOf,
  looksLikeBootstrapAddr,
  networkIdFor,
  parseNodeConfig,
  withoutLinkSettings
} from '../../src/core/config.ts'
import { fakePeerId } from './helpers.ts'

const NO_BOOTSTRAP = 'no bootstrap relay is configured: this node can only be found by peers it already knows'

function addr (i: number): string {
  return `/dns4/relay${i}.example.org/tcp/443/wss/p2p/${fakePeerId(i)}`
}

function query (params: Record<string, string>): string {
  return `?${new URLSearchParams(params).toString()}`
}

describe('parseNodeConfig defaults', () => {
  it('uses mainnet, a 90 s round and warns that no bootstrap relay is configured', () => {
    expect(parseNodeConfig('', undefined)).toEqual({
      network: 'mainnet',
      networkId: 'mainnet',
      dev: false,
      bootstrap: [],
      roundMs: 90_000,
      iceServers: [],
      warnings: [NO_BOOTSTRAP]
    })
    expect(DEFAULT_ROUND_MS).toBe(90_000)
  })

  it('treats a non-object bootstrap file like a missing one', () => {
    for (const file of [null, 'text', 42, true]) {
      const config = parseNodeConfig('', file)
      expect(config.network).toBe('mainnet')
      expect(config.bootstrap).toEqual([])
      expect(config.warnings).toEqual([NO_BOOTSTRAP])
    }
  })

  it('never throws, whatever the input', () => {
    fc.assert(fc.property(fc.string(), fc.anything(), (search, file) => {
      const config = parseNodeConfig(search, file)
      expect(config.bootstrap.length).toBeLessThanOrEqual(MAX_BOOTSTRAP_ADDRS)
      expect(config.iceServers.length).toBeLessThanOrEqual(8)
    }), { numRuns: 300 })
  })
})

describe('bootstrap addresses', () => {
  it('uses the bootstrap.json list without warnings', () => {
    const config = parseNodeConfig('', { network: 'mainnet', bootstrap: [addr(1), addr(2)] })
    expect(config.bootstrap).toEqual([addr(1), addr(2)])
    expect(config.warnings).toEqual([])
  })

  it('?bootstrap= overrides the file: comma-separated, trimmed and deduplicated', () => {
    const search = query({ bootstrap: ` ${addr(3)} ,${addr(4)},, ${addr(3)}` })
    const config = parseNodeConfig(search, { bootstrap: [addr(1), addr(2)] })
    expect(config.bootstrap).toEqual([addr(3), addr(4)])
    expect(config.warnings).toEqual([])
  })

  it('an empty ?bootstrap= overrides the file with no relays', () => {
    const config = parseNodeConfig('?bootstrap=', { bootstrap: [addr(1)] })
    expect(config.bootstrap).toEqual([])
    expect(config.warnings).toEqual([NO_BOOTSTRAP])
  })

  it('turns invalid addresses into warnings and keeps the valid ones', () => {
    const bad = ['not-a-multiaddr', '/dns4/relay.example.org/tcp/443/wss', `/ip4/1.2.3.4/tcp/1/p2p/${'0'.repeat(46)}`, 42]
    const config = parseNodeConfig('', { bootstrap: [...bad, addr(1)] })
    expect(config.bootstrap).toEqual([addr(1)])
    expect(config.warnings).toEqual([
      'bootstrap.json: ignored "not-a-multiaddr", not a multiaddr ending in /p2p/<peer id>',
      'bootstrap.json: ignored "/dns4/relay.example.org/tcp/443/wss", not a multiaddr ending in /p2p/<peer id>',
      `bootstrap.json: ignored "/ip4/1.2.3.4/tcp/1/p2p/${'0'.repeat(46)}", not a multiaddr ending in /p2p/<peer id>`,
      'bootstrap.json: ignored "42", not a multiaddr ending in /p2p/<peer id>'
    ])
  })

  it('labels ?bootstrap= warnings with their source and warns when nothing valid remains', () => {
    const config = parseNodeConfig('?bootstrap=nope', { bootstrap: [addr(1)] })
    expect(config.bootstrap).toEqual([])
    expect(config.warnings).toEqual([
      '?bootstrap=: ignored "nope", not a multiaddr ending in /p2p/<peer id>',
      NO_BOOTSTRAP
    ])
  })

  it('a bootstrap entry that is not a list is ignored', () => {
    const config = parseNodeConfig('', { bootstrap: addr(1) })
    expect(config.bootstrap).toEqual([])
    expect(config.warnings).toEqual([NO_BOOTSTRAP])
  })

  it('truncates more than 16 addresses with a warning', () => {
    const list = Array.from({ length: 20 }, (_, i) => addr(i))
    const config = parseNodeConfig('', { bootstrap: list })
    expect(MAX_BOOTSTRAP_ADDRS).toBe(16)
    expect(config.bootstrap).toEqual(list.slice(0, 16))
    expect(config.warnings).toEqual(['bootstrap.json: only the first 16 bootstrap addresses are used'])

    const fromQuery = parseNodeConfig(query({ bootstrap: list.join(',') }), undefined)
    expect(fromQuery.bootstrap).toEqual(list.slice(0, 16))
    expect(fromQuery.warnings).toEqual(['?bootstrap=: only the first 16 bootstrap addresses are used'])
  })

  it('exactly 16 addresses, or 17 with a duplicate, need no warning', () => {
    const list = Array.from({ length: 16 }, (_, i) => addr(i))
    expect(parseNodeConfig('', { bootstrap: list }).warnings).toEqual([])
    const withDuplicate = parseNodeConfig('', { bootstrap: [...list, addr(0)] })
    expect(withDuplicate.bootstrap).toEqual(list)
    expect(withDuplicate.warnings).toEqual([])
  })
})

describe('looksLikeBootstrapAddr', () => {
  it('accepts multiaddrs ending in a base58 peer id of 40 to 60 characters', () => {
    expect(looksLikeBootstrapAddr(addr(0))).toBe(true)
    expect(looksLikeBootstrapAddr(`/ip4/127.0.0.1/tcp/4002/ws/p2p/${'Q'.repeat(40)}`)).toBe(true)
    expect(looksLikeBootstrapAddr(`/ip4/127.0.0.1/tcp/4002/ws/p2p/${'Q'.repeat(60)}`)).toBe(true)
  })

  it('rejects everything else', () => {
    expect(looksLikeBootstrapAddr(`/ip4/127.0.0.1/tcp/4002/ws/p2p/${'Q'.repeat(39)}`)).toBe(false)
    expect(looksLikeBootstrapAddr(`/ip4/127.0.0.1/tcp/4002/ws/p2p/${'Q'.repeat(61)}`)).toBe(false)
    expect(looksLikeBootstrapAddr(`ip4/127.0.0.1/tcp/4002/ws/p2p/${fakePeerId(1)}`)).toBe(false)
    expect(looksLikeBootstrapAddr(`/ip4/127.0.0.1/tcp/4002/ws/p2p/${fakePeerId(1)}/`)).toBe(false)
    expect(looksLikeBootstrapAddr(`/ip4/127.0.0.1/p2p/${'I'.repeat(50)}`)).toBe(false)
    expect(looksLikeBootstrapAddr(`/${'a'.repeat(1000)}/p2p/${fakePeerId(1)}`)).toBe(false)
    expect(looksLikeBootstrapAddr(undefined)).toBe(false)
    expect(looksLikeBootstrapAddr(['/p2p/x'])).toBe(false)
  })
})

describe('?round=', () => {
  it('sets roundMs on a dev network and folds it into the network id', () => {
    const config = parseNodeConfig('?network=dev&round=6', undefined)
    expect(config.roundMs).toBe(6000)
    expect(config.networkId).toBe('dev-t6')
    expect(config.network).toBe('dev')
    expect(config.dev).toBe(true)
    expect(config.warnings).toEqual([NO_BOOTSTRAP])
  })

  it('applies to a dev network named in bootstrap.json and at the 2 s and 3600 s bounds', () => {
    expect(parseNodeConfig('?round=2', { network: 'dev-local' })).toMatchObject({ roundMs: 2000, networkId: 'dev-local-t2' })
    expect(parseNodeConfig('?round=3600', { network: 'dev' })).toMatchObject({ roundMs: 3_600_000, networkId: 'dev-t3600' })
  })

  it('the default round length keeps the plain network id', () => {
    expect(parseNodeConfig('?network=dev&round=90', undefined)).toMatchObject({ roundMs: 90_000, networkId: 'dev' })
  })

  it('is ignored with a warning on mainnet', () => {
    const config = parseNodeConfig('?round=6', undefined)
    expect(config.roundMs).toBe(90_000)
    expect(config.networkId).toBe('mainnet')
    expect(config.warnings).toEqual(['?round= only applies to dev networks', NO_BOOTSTRAP])
  })

  it('is ignored with a warning when out of range or not whole seconds', () => {
    for (const round of ['1', '3601', '2.5', 'abc', '', '-6', 'Infinity']) {
      const config = parseNodeConfig(`?network=dev&round=${round}`, undefined)
      expect(config.roundMs, round).toBe(90_000)
      expect(config.networkId, round).toBe('dev')
      expect(config.warnings, round).toEqual(['?round= must be whole seconds between 2 and 3600', NO_BOOTSTRAP])
    }
  })
})

describe('?network=', () => {
  it('accepts lower-case names and marks dev networks', () => {
    expect(parseNodeConfig('?network=testnet', undefined)).toMatchObject({ network: 'testnet', networkId: 'testnet', dev: false })
    expect(parseNodeConfig('?network=dev-alice', undefined)).toMatchObject({ network: 'dev-alice', dev: true })
    expect(parseNodeConfig(`?network=${'a'.repeat(32)}`, undefined).network).toBe('a'.repeat(32))
  })

  it('takes precedence over bootstrap.json', () => {
    expect(parseNodeConfig('?network=testnet', { network: 'dev' }).network).toBe('testnet')
    expect(parseNodeConfig('', { network: 'dev' }).network).toBe('dev')
  })

  it('rejects invalid names with a warning and stays on mainnet', () => {
    for (const name of ['Mainnet', '-dev', 'dev_1', '', 'a'.repeat(33), 'dev net', 'dév']) {
      const config = parseNodeConfig(query({ network: name }), undefined)
      expect(config.network, name).toBe('mainnet')
      expect(config.dev, name).toBe(false)
      expect(config.warnings[0], name).toBe(`network "${name}" is not a valid network name`)
    }
    const fromFile = parseNodeConfig('', { network: 7 })
    expect(fromFile.network).toBe('mainnet')
    expect(fromFile.warnings[0]).toBe('network "7" is not a valid network name')
  })
})

describe('isDevNetwork and networkIdFor', () => {
  it('recognises dev networks by name', () => {
    expect(isDevNetwork('dev')).toBe(true)
    expect(isDevNetwork('dev-x')).toBe(true)
    expect(isDevNetwork('devnet')).toBe(false)
    expect(isDevNetwork('mainnet')).toBe(false)
    expect(isDevNetwork('my-dev')).toBe(false)
  })

  it('appends the round length in seconds unless it is the default', () => {
    expect(networkIdFor('mainnet', 90_000)).toBe('mainnet')
    expect(networkIdFor('dev', 6000)).toBe('dev-t6')
    expect(networkIdFor('dev', 3_600_000)).toBe('dev-t3600')
  })
})

describe('isNetworkIdOf (which topics a relay of a network carries)', () => {
  it('a network\'s own id belongs to it', () => {
    expect(isNetworkIdOf('mainnet', 'mainnet')).toBe(true)
    expect(isNetworkIdOf('dev', 'dev')).toBe(true)
  })

  it('a dev network also owns its round lengths, other networks do not', () => {
    expect(isNetworkIdOf('dev-t6', 'dev')).toBe(true)
    expect(isNetworkIdOf('dev-x-t2', 'dev-x')).toBe(true)
    expect(isNetworkIdOf('mainnet-t6', 'mainnet')).toBe(false)
  })

  it('refuses other networks and round lengths outside 2–3600 s', () => {
    expect(isNetworkIdOf('x-t2', 'dev')).toBe(false)
    expect(isNetworkIdOf('dev-2', 'dev')).toBe(false)
    expect(isNetworkIdOf('dev-x-t6', 'dev')).toBe(false)
    expect(isNetworkIdOf('dev-t1', 'dev')).toBe(false)
    expect(isNetworkIdOf('dev-t3601', 'dev')).toBe(false)
    expect(isNetworkIdOf('mainnet', 'dev')).toBe(false)
  })
})

describe('?profile=', () => {
  it('accepts every profile name', () => {
    for (const profile of ['full', 'inference', 'embedding', 'storage', 'relay']) {
      const config = parseNodeConfig(`?profile=${profile}`, { bootstrap: [addr(1)] })
      expect(config.profile).toBe(profile)
      expect(config.warnings).toEqual([])
    }
  })

  it('has no profile when absent', () => {
    expect(parseNodeConfig('', undefined)).not.toHaveProperty('profile')
  })

  it('ignores an unknown profile with a warning', () => {
    const config = parseNodeConfig('?profile=gpu', { bootstrap: [addr(1)] })
    expect(config).not.toHaveProperty('profile')
    expect(config.warnings).toEqual(['?profile=gpu is not one of full, inference, embedding, storage, relay'])
  })
})

describe('iceServers', () => {
  it('keeps valid stun and turn servers with their credentials', () => {
    const config = parseNodeConfig('', {
      bootstrap: [addr(1)],
      iceServers: [
        { urls: 'stun:stun.example.org:3478' },
        { urls: ['turn:turn.example.org:3478?transport=udp', 'turns:turn.example.org:5349'], username: 'u', credential: 'p' },
        { urls: 'stun:x.example.org', username: 5, credential: null }
      ]
    })
    expect(config.iceServers).toEqual([
      { urls: ['stun:stun.example.org:3478'] },
      { urls: ['turn:turn.example.org:3478?transport=udp', 'turns:turn.example.org:5349'], username: 'u', credential: 'p' },
      { urls: ['stun:x.example.org'] }
    ])
    expect(config.warnings).toEqual([])
  })

  it('drops invalid entries with a warning each', () => {
    const config = parseNodeConfig('', {
      bootstrap: [addr(1)],
      iceServers: [
        { urls: 'https://example.org' },
        { urls: [] },
        { urls: ['stun:ok.example.org', 'http://bad'] },
        null,
        'stun:bare-string.example.org',
        { urls: 'stun:good.example.org' }
      ]
    })
    expect(config.iceServers).toEqual([{ urls: ['stun:good.example.org'] }])
    expect(config.warnings).toEqual(Array(5).fill('bootstrap.json: an iceServers entry has no valid stun:/turn: urls'))
  })

  it('warns when iceServers is not a list', () => {
    const config = parseNodeConfig('', { bootstrap: [addr(1)], iceServers: { urls: 'stun:x.example.org' } })
    expect(config.iceServers).toEqual([])
    expect(config.warnings).toEqual(['bootstrap.json: iceServers must be a list'])
  })

  it('keeps at most 8 servers', () => {
    const servers = Array.from({ length: 12 }, (_, i) => ({ urls: `stun:s${i}.example.org` }))
    const config = parseNodeConfig('', { bootstrap: [addr(1)], iceServers: servers })
    expect(config.iceServers).toHaveLength(8)
    expect(config.iceServers.map(s => s.urls)).toEqual(servers.slice(0, 8).map(s => [s.urls]))
  })
})

describe('network ids', () => {
  it('two configurations with different round lengths never share a network id', () => {
    // networkIdFor's contract: "nodes of different ids never mix", so equal ids must mean equal rounds.
    const a = parseNodeConfig('?network=dev&round=6', undefined)
    const b = parseNodeConfig('?network=dev-t6', undefined)
    expect(a.roundMs).toBe(6000)
    expect(b.roundMs).toBe(90_000)
    expect(a.networkId).not.toBe(b.networkId)
  })
})

describe('link settings', () => {
  it('are the query parameters that move a node, as given, or nothing', () => {
    expect(linkSettingsOf('')).toBeUndefined()
    expect(linkSettingsOf('?debug=1')).toBeUndefined()
    expect(linkSettingsOf('?network=dev&bootstrap=&x=1')).toEqual({ network: 'dev', bootstrap: '' })
    expect(linkSettingsOf('?profile=full&round=6')).toEqual({ profile: 'full', round: '6' })
  })

  it('have one key whatever the order of the parameters, and another for any other value', () => {
    const a = linkSettingsOf('?network=dev&bootstrap=/a') ?? {}
    const b = linkSettingsOf('?bootstrap=/a&network=dev') ?? {}
    expect(linkSettingsKey(a)).toBe(linkSettingsKey(b))
    expect(linkSettingsKey(a)).not.toBe(linkSettingsKey(linkSettingsOf('?bootstrap=/a&network=dev&profile=full') ?? {}))
    // An empty bootstrap list is a setting of its own, not its absence.
    expect(linkSettingsKey(linkSettingsOf('?network=dev&bootstrap=') ?? {})).not.toBe(linkSettingsKey(linkSettingsOf('?network=dev') ?? {}))
  })

  it('come out of a query string, leaving the other parameters', () => {
    expect(withoutLinkSettings('?network=dev&round=6&bootstrap=/a&profile=full')).toBe('')
    expect(withoutLinkSettings('?network=dev&x=1')).toBe('?x=1')
    expect(parseNodeConfig(withoutLinkSettings('?network=dev-x&bootstrap=/a'), { network: 'dev' }).network).toBe('dev')
  })
})
