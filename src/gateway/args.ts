import { GATEWAY_DEFAULTS } from './gateway.ts'

export interface GatewayArgs {
  host: string
  port: number
  apiKeysFile: string
  maxBodyBytes: number
  corsOrigin?: string
}

export const DEFAULT_API_KEYS_FILE = '.gateway-keys.json'

export const GATEWAY_USAGE = `  --gateway [port]          also serve the OpenAI-compatible HTTP API (default port ${GATEWAY_DEFAULTS.port}; 0 picks a free one)
  --gateway-host <ip>       its listen address (default ${GATEWAY_DEFAULTS.host})
  --api-keys <path>         its API key file (default ${DEFAULT_API_KEYS_FILE}; created with one key if missing)
  --max-body <bytes>        largest request body (default ${GATEWAY_DEFAULTS.maxBodyBytes})
  --cors-origin <origin>    let web pages of this origin (or *) call the API (default: none)`

/** The options parseArgs takes for the gateway; `--gateway` arrives as a string (see withGatewayPort). */
export const GATEWAY_OPTIONS = {
  gateway: { type: 'string' },
  'gateway-host': { type: 'string' },
  'api-keys': { type: 'string' },
  'max-body': { type: 'string' },
  'cors-origin': { type: 'string' }
} as const

/**
 * `--gateway` takes an optional port, which node:util's parseArgs cannot express: a bare
 * `--gateway` becomes `--gateway=` (the default port), one followed by a number takes it.
 */
export function withGatewayPort (argv: readonly string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? ''
    if (arg !== '--gateway') {
      out.push(arg)
      continue
    }
    const next = argv[i + 1]
    if (next !== undefined && /^\d+$/.test(next)) {
      out.push(`--gateway=${next}`)
      i++
    } else {
      out.push('--gateway=')
    }
  }
  return out
}

function wholeNumber (value: string, name: string, min: number, max: number): number {
  const n = Number(value)
  if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max) throw new RangeError(`--${name} must be a whole number from ${min} to ${max}`)
  return n
}

type GatewayValues = Partial<Record<keyof typeof GATEWAY_OPTIONS, string>>

export function gatewayArgsOf (values: GatewayValues): GatewayArgs | undefined {
  if (values.gateway === undefined) {
    const stray = (Object.keys(GATEWAY_OPTIONS) as Array<keyof GatewayValues>).find(name => values[name] !== undefined)
    if (stray !== undefined) throw new RangeError(`--${stray} needs --gateway`)
    return undefined
  }
  const args: GatewayArgs = {
    host: values['gateway-host'] ?? GATEWAY_DEFAULTS.host,
    port: values.gateway === '' ? GATEWAY_DEFAULTS.port : wholeNumber(values.gateway, 'gateway', 0, 65_535),
    apiKeysFile: values['api-keys'] ?? DEFAULT_API_KEYS_FILE,
    maxBodyBytes: values['max-body'] === undefined ? GATEWAY_DEFAULTS.maxBodyBytes : wholeNumber(values['max-body'], 'max-body', 1024, 64 * 1024 * 1024)
  }
  if (args.apiKeysFile.trim() === '') throw new RangeError('--api-keys needs a file path')
  const origin = values['cors-origin']
  if (origin !== undefined) {
    if (origin !== '*' && !/^https?:\/\/[^\s/]+$/.test(origin)) throw new RangeError('--cors-origin must be * or an origin such as https://app.example.org')
    args.corsOrigin = origin
  }
  return args
}
