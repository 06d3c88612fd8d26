import { describe, expect, it } from 'vitest'
import { InvalidRequestError } from '../../src/core/errors.ts'
import { ProxyCredentialsError, ProxyHostRefusedError, ProxyPrivateTargetError, ProxySchemeError, ProxyUrlError } from '../../src/core/proxy/errors.ts'
import { hostListVerdict, normalizeHostLists } from '../../src/core/proxy/host-list.ts'
import { classifyIpv6, parseIpv6 } from '../../src/core/proxy/ip.ts'
import { checkProxyMethod, checkProxyUrl, hostKind, PROXY_MAX_URL_CHARS } from '../../src/core/proxy/url-policy.ts'

const PUBLIC = { allowLoopback: false }
const DEV = { allowLoopback: true }

function refusal (url: string, policy = PUBLIC): unknown {
  try {
    checkProxyUrl(url, policy)
  } catch (err) {
    return err
  }
  return undefined
}

describe('proxy URL policy', () => {
  it('fetches https URLs of public hosts, normalized and without the fragment', () => {
    expect(checkProxyUrl('https://Example.COM/a b?q=1#frag', PUBLIC).href).toBe('https://example.com/a%20b?q=1')
    expect(checkProxyUrl('https://93.184.216.34/', PUBLIC).hostname).toBe('93.184.216.34')
    expect(checkProxyUrl('https://[2606:2800:220:1:248:1893:25c8:1946]/', PUBLIC).hostname).toBe('[2606:2800:220:1:248:1893:25c8:1946]')
  })

  it.each([
    ['https://127.0.0.1/', 'loopback'],
    ['https://127.255.1.2/', 'loopback'],
    ['https://localhost/', 'loopback'],
    ['https://LOCALHOST./', 'loopback'],
    ['https://app.localhost/', 'loopback'],
    ['https://[::1]/', 'loopback'],
    ['https://10.1.2.3/', 'private'],
    ['https://172.16.0.1/', 'private'],
    ['https://172.31.255.255/', 'private'],
    ['https://192.168.1.1/', 'private'],
    ['https://100.64.0.1/', 'private'],
    ['https://[fd00::1]/', 'private'],
    ['https://[fc12:3456::1]/', 'private'],
    ['https://[fec0::1]/', 'private'],
    ['https://printer.local/', 'private'],
    ['https://router.home.arpa/', 'private'],
    ['https://db.internal/', 'private'],
    ['https://intranet/', 'private'],
    ['https://169.254.169.254/latest/meta-data/', 'link-local'],
    ['https://[fe80::1]/', 'link-local'],
    ['https://[febf::1]/', 'link-local'],
    ['https://0.0.0.0/', 'reserved'],
    ['https://224.0.0.1/', 'reserved'],
    ['https://255.255.255.255/', 'reserved'],
    ['https://192.0.2.1/', 'reserved'],
    ['https://[::]/', 'reserved'],
    ['https://[ff02::1]/', 'reserved'],
    ['https://[2001:db8::1]/', 'reserved'],
    ['https://site.test/', 'reserved']
  ])('%s is a %s target and refused on a public network', (url, kind) => {
    const err = refusal(url)
    expect(err).toBeInstanceOf(ProxyPrivateTargetError)
    expect(err).toMatchObject({ code: 'ERR_PROXY_PRIVATE_TARGET', kind })
  })

  it.each([
    // IPv4-mapped and -compatible IPv6, in both spellings the parser may meet.
    ['https://[::ffff:127.0.0.1]/', 'loopback'],
    ['https://[::ffff:7f00:1]/', 'loopback'],
    ['https://[::ffff:10.0.0.1]/', 'private'],
    ['https://[::ffff:169.254.169.254]/', 'link-local'],
    ['https://[::ffff:a9fe:a9fe]/', 'link-local'],
    ['https://[::127.0.0.1]/', 'loopback'],
    ['https://[0:0:0:0:0:ffff:c0a8:0101]/', 'private'],
    // NAT64 and 6to4 reach the IPv4 address they carry.
    ['https://[64:ff9b::a00:1]/', 'private'],
    ['https://[2002:7f00:1::]/', 'loopback'],
    ['https://[2002:c0a8:101::1]/', 'private']
  ])('%s carries a %s IPv4 address and is refused', (url, kind) => {
    expect(refusal(url)).toMatchObject({ code: 'ERR_PROXY_PRIVATE_TARGET', kind })
  })

  it.each([
    'https://2130706433/', // decimal 127.0.0.1
    'https://0x7f000001/', // hex
    'https://0x7f.1/', // hex, short form
    'https://0177.0.0.1/', // octal
    'https://127.1/', // short form
    'https://017700000001/', // octal, one number
    'https://%31%32%37.0.0.1/' // percent-encoded
  ])('the numeric trick %s is still loopback', url => {
    expect(refusal(url)).toMatchObject({ code: 'ERR_PROXY_PRIVATE_TARGET', kind: 'loopback' })
  })

  it.each([
    ['https://3232235777/', 'private'], // 192.168.1.1
    ['https://0xa9.0xfe.0xa9.0xfe/', 'link-local'],
    ['https://0xA9FEA9FE/', 'link-local']
  ])('the numeric trick %s is %s', (url, kind) => {
    expect(refusal(url)).toMatchObject({ code: 'ERR_PROXY_PRIVATE_TARGET', kind })
  })

  it('refuses what is not https, with a named error', () => {
    for (const url of ['http://example.com/', 'ftp://example.com/', 'file:///etc/passwd', 'data:text/plain,hi', 'javascript:alert(1)', 'ws://example.com/', 'blob:https://example.com/x']) {
      expect(refusal(url), url).toBeInstanceOf(ProxySchemeError)
    }
  })

  it('refuses credentials in the URL', () => {
    expect(refusal('https://user:pass@example.com/')).toBeInstanceOf(ProxyCredentialsError)
    expect(refusal('https://user@example.com/')).toBeInstanceOf(ProxyCredentialsError)
    expect(refusal('https://:pass@example.com/')).toBeInstanceOf(ProxyCredentialsError)
  })

  it('refuses what does not parse, is too long or is not a string', () => {
    for (const input of ['not a url', '', 'https://', 42, null, undefined, { href: 'https://example.com/' }, `https://example.com/${'a'.repeat(PROXY_MAX_URL_CHARS)}`]) {
      expect(refusal(input as string), String(input).slice(0, 30)).toBeInstanceOf(ProxyUrlError)
    }
  })

  it('a dev network allows loopback, over http too, and nothing else private', () => {
    expect(checkProxyUrl('http://127.0.0.1:8080/page', DEV).href).toBe('http://127.0.0.1:8080/page')
    expect(checkProxyUrl('https://localhost:8443/', DEV).hostname).toBe('localhost')
    expect(checkProxyUrl('http://[::1]:9/', DEV).hostname).toBe('[::1]')
    expect(refusal('http://example.com/', DEV)).toBeInstanceOf(ProxySchemeError)
    expect(refusal('https://192.168.1.1/', DEV)).toMatchObject({ kind: 'private' })
    expect(refusal('https://169.254.169.254/', DEV)).toMatchObject({ kind: 'link-local' })
    expect(refusal('http://127.0.0.1/', PUBLIC)).toBeInstanceOf(ProxyPrivateTargetError)
  })

  it('GET and HEAD only', () => {
    expect(checkProxyMethod(undefined)).toBe('GET')
    expect(checkProxyMethod('head')).toBe('HEAD')
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS', 'CONNECT', 1]) expect(() => checkProxyMethod(method)).toThrow(ProxyUrlError)
  })
})

describe('IPv6 parsing', () => {
  it('reads the forms the URL parser writes and refuses what is not one', () => {
    expect(parseIpv6('[::1]')).toEqual([0, 0, 0, 0, 0, 0, 0, 1])
    expect(parseIpv6('1:2:3:4:5:6:7:8')).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
    expect(parseIpv6('::ffff:1.2.3.4')).toEqual([0, 0, 0, 0, 0, 0xffff, 0x102, 0x304])
    for (const bad of ['', '1:2:3', '1::2::3', '1:2:3:4:5:6:7:8:9', '::g', '::1%eth0', '::1.2.3.256', '12345::']) expect(parseIpv6(bad), bad).toBeUndefined()
    expect(hostKind('[zz::1]')).toBe('reserved')
  })

  it('global unicast is public, the rest is not', () => {
    expect(classifyIpv6(parseIpv6('2606:4700::1111') as number[])).toBe('public')
    expect(classifyIpv6(parseIpv6('2001:0:1::1') as number[])).toBe('reserved') // Teredo
    expect(classifyIpv6(parseIpv6('4000::1') as number[])).toBe('reserved')
  })
})

describe('proxy host lists', () => {
  const lists = normalizeHostLists({ allow: ['Example.com', '*.cdn.example.net', '93.184.216.34'], deny: ['bad.example.com', '*.example.com'] })

  it('deny wins, a non-empty allow list admits only its hosts, wildcards cover subdomains only', () => {
    expect(hostListVerdict(lists, 'example.com')).toBe('allowed')
    expect(hostListVerdict(lists, 'a.cdn.example.net')).toBe('allowed')
    expect(hostListVerdict(lists, 'cdn.example.net')).toBe('not-allowed')
    expect(hostListVerdict(lists, '93.184.216.34')).toBe('allowed')
    expect(hostListVerdict(lists, 'www.example.com')).toBe('denied')
    expect(hostListVerdict(lists, 'evilexample.com')).toBe('not-allowed')
    expect(hostListVerdict({ allow: [], deny: [] }, 'anything.org')).toBe('allowed')
  })

  it('the proxy refuses a listed-out host with a named error', () => {
    expect(() => checkProxyUrl('https://www.example.com/', { ...PUBLIC, hosts: lists })).toThrow(ProxyHostRefusedError)
    expect(() => checkProxyUrl('https://other.org/', { ...PUBLIC, hosts: lists })).toThrow(ProxyHostRefusedError)
    expect(checkProxyUrl('https://example.com/x', { ...PUBLIC, hosts: lists }).hostname).toBe('example.com')
  })

  it('refuses entries that are no host pattern, and lists that are too long', () => {
    for (const bad of ['https://example.com', 'exa mple.com', '*', '*.', 'a..b', '-a.com', 'a/b', '', 7]) {
      expect(() => normalizeHostLists({ allow: [bad] }), String(bad)).toThrow(InvalidRequestError)
    }
    expect(() => normalizeHostLists({ deny: Array.from({ length: 257 }, (_, i) => `h${i}.com`) })).toThrow(InvalidRequestError)
    expect(() => normalizeHostLists('example.com')).toThrow(InvalidRequestError)
    expect(normalizeHostLists({ deny: ['A.com', 'a.com.'] })).toEqual({ allow: [], deny: ['a.com'] })
  })
})
