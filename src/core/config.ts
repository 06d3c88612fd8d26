import { isProfileName, type ProfileName } from './capabilities.ts'

/** How a node joins a network: which one, through which relays, with which round length. */
export interface NodeConfig {
  /** The network name from bootstrap.json or ?network= (e.g. "mainnet", "dev"). */
  network: string
  /** Name plus round length when it is not the default: nodes of different ids never mix. */
  networkId: string
  /** Dev networks allow loopback, private and ws:// addresses; public ones never do. */
  dev: boolean
  bootstrap: string[]
  roundMs: number
  profile?: ProfileName
  iceServers: IceServer[]
  /** Settings that were present but unusable, and were ignored. */
  warnings: string[]
}

export interface IceServer {
  urls: string | string[]
  username?: string
  credential?: string
}

export const DEFAULT_ROUND_MS = 90_000
export const MAX_BOOTSTRAP_ADDRS = 16
const MAX_MULTIADDR_LENGTH = 1024
const NETWORK_NAME = /^[a-z0-9][a-z0-9-]{0,31}$/
/** The suffix networkIdFor adds for a round length: a name may not carry it itself. */
const ROUND_SUFFIX = /-t\d+$/
const MIN_ROUND_S = 2
const MAX_ROUND_S = 3600

export function isValidNetworkName (name: unknown): name is string {
  return typeof name === 'string' && NETWORK_NAME.test(name) && !ROUND_SUFFIX.test(name)
}

export function isDevNetwork (network: string): boolean {
  return network === 'dev' || network.startsWith('dev-')
}

/** The round length a network id names: `<name>-t<seconds>`, or the default for a bare name. */
export function roundMsOf (networkId: string): number | undefined {
  const suffix = /^(.+)-t(\d+)$/.exec(networkId)
  if (suffix === null) return isValidNetworkName(networkId) ? DEFAULT_ROUND_MS : undefined
  const seconds = Number(suffix[2])
  return isValidNetworkName(suffix[1]) && seconds >= MIN_ROUND_S && seconds <= MAX_ROUND_S ? seconds * 1000 : undefined
}

/**
 * Whether a network id belongs to a network: the network's own id, or on a dev network one of its
 * round lengths (`dev-t6` for `?round=6`). Other networks take no `?round=`, so they have one id.
 */
export function isNetworkIdOf (networkId: string, network: string): boolean {
  if (networkId === network) return true
  const suffix = /^(.+)-t\d+$/.exec(networkId)
  return isDevNetwork(network) && suffix?.[1] === network && roundMsOf(networkId) !== undefined
}

export function networkIdFor (network: string, roundMs: number): string {
  return roundMs === DEFAULT_ROUND_MS ? network : `${network}-t${roundMs / 1000}`
}

/** A multiaddr string that names the relay's peer id; the net layer parses it fully. */
export function looksLikeBootstrapAddr (value: unknown): value is string {
  return typeof value === 'string' && value.length <= MAX_MULTIADDR_LENGTH &&
    value.startsWith('/') && /\/p2p\/[1-9A-HJ-NP-Za-km-z]{40,60}$/.test(value)
}

interface BootstrapFile {
  network?: unknown
  bootstrap?: unknown
  iceServers?: unknown
}

function parseIceServers (value: unknown, warnings: string[]): IceServer[] {
  if (value === undefined) return []
  if (!Array.isArray(value)) {
    warnings.push('bootstrap.json: iceServers must be a list')
    return []
  }
  const servers: IceServer[] = []
  for (const entry of value.slice(0, 8) as unknown[]) {
    const server = entry as Partial<Record<keyof IceServer, unknown>> | null
    const urls = server?.urls
    const urlList = Array.isArray(urls) ? urls : [urls]
    if (urlList.length === 0 || !urlList.every(u => typeof u === 'string' && /^(stun|turns?):/.test(u))) {
      warnings.push('bootstrap.json: an iceServers entry has no valid stun:/turn: urls')
      continue
    }
    const ice: IceServer = { urls: urlList as string[] }
    if (typeof server?.username === 'string') ice.username = server.username
    if (typeof server?.credential === 'string') ice.credential = server.credential
    servers.push(ice)
  }
  return servers
}

function parseBootstrapList (values: unknown[], source: string, warnings: string[]): string[] {
  const addrs: string[] = []
  for (const value of values) {
    if (looksLikeBootstrapAddr(value)) {
      if (!addrs.includes(value)) addrs.push(value)
    } else {
      warnings.push(`${source}: ignored "${String(value).slice(0, 80)}", not a multiaddr ending in /p2p/<peer id>`)
    }
  }
  if (addrs.length > MAX_BOOTSTRAP_ADDRS) {
    warnings.push(`${source}: only the first ${MAX_BOOTSTRAP_ADDRS} bootstrap addresses are used`)
  }
  return addrs.slice(0, MAX_BOOTSTRAP_ADDRS)
}

/**
 * Builds the node configuration from the page's query string and the deployed bootstrap.json.
 * Nothing here throws: unusable settings become warnings the UI shows, and defaults apply.
 */
export function parseNodeConfig (search: string, bootstrapFile: unknown): NodeConfig {
  const warnings: string[] = []
  const params = new URLSearchParams(search)
  const file: BootstrapFile = typeof bootstrapFile === 'object' && bootstrapFile !== null ? bootstrapFile : {}

  let network = 'mainnet'
  const networkParam = params.get('network') ?? file.network
  if (networkParam !== undefined && networkParam !== null) {
    if (isValidNetworkName(networkParam)) network = networkParam
    else warnings.push(`network "${String(networkParam).slice(0, 40)}" is not a valid network name`)
  }
  const dev = isDevNetwork(network)

  let roundMs = DEFAULT_ROUND_MS
  const round = params.get('round')
  if (round !== null) {
    const seconds = Number(round)
    if (!dev) warnings.push('?round= only applies to dev networks')
    else if (!Number.isInteger(seconds) || seconds < MIN_ROUND_S || seconds > MAX_ROUND_S) {
      warnings.push(`?round= must be whole seconds between ${MIN_ROUND_S} and ${MAX_ROUND_S}`)
    } else roundMs = seconds * 1000
  }

  const bootstrapParam = params.get('bootstrap')
  const bootstrap = bootstrapParam !== null
    ? parseBootstrapList(bootstrapParam.split(',').map(s => s.trim()).filter(s => s !== ''), '?bootstrap=', warnings)
    : parseBootstrapList(Array.isArray(file.bootstrap) ? file.bootstrap : [], 'bootstrap.json', warnings)
  if (bootstrap.length === 0) warnings.push('no bootstrap relay is configured: this node can only be found by peers it already knows')

  const config: NodeConfig = {
    network,
    networkId: networkIdFor(network, roundMs),
    dev,
    bootstrap,
    roundMs,
    iceServers: parseIceServers(file.iceServers, warnings),
    warnings
  }
  const profile = params.get('profile')
  if (profile !== null) {
    if (isProfileName(profile)) config.profile = profile
    else warnings.push(`?profile=${profile.slice(0, 20)} is not one of full, inference, embedding, storage, relay`)
  }
  return config
}

/**
 * The query parameters that move a node to other relays, another network or round length, or another
 * profile. A link carrying them could send anyone's node to an attacker's relays, so they take effect
 * only once the user has confirmed them.
 */
export const LINK_SETTING_NAMES = ['network', 'round', 'bootstrap', 'profile'] as const
export type LinkSettings = Partial<Record<(typeof LINK_SETTING_NAMES)[number], string>>

/** The link settings a query string carries, as given; undefined when it carries none. */
export function linkSettingsOf (search: string): LinkSettings | undefined {
  const params = new URLSearchParams(search)
  const settings: LinkSettings = {}
  for (const name of LINK_SETTING_NAMES) {
    const value = params.get(name)
    if (value !== null) settings[name] = value
  }
  return Object.keys(settings).length === 0 ? undefined : settings
}

/** One string per set of link settings, whatever the order of the parameters: what a confirmation remembers. */
/** Where a browser remembers the last link settings its user accepted (as linkSettingsKey). */
export const CONFIRMED_LINK_SETTINGS_KEY = 'hyperspace-confirmed-link-settings'

export function linkSettingsKey (settings: LinkSettings): string {
  return JSON.stringify(LINK_SETTING_NAMES.map(name => settings[name] ?? null))
}

/** The query string without its link settings: the deployment's own configuration, and any other parameter. */
export function withoutLinkSettings (search: string): string {
  const params = new URLSearchParams(search)
  for (const name of LINK_SETTING_NAMES) params.delete(name)
  const rest = params.toString()
  return rest === '' ? '' : `?${rest}`
}
