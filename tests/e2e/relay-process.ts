import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { loadOrCreateKey } from '../../src/relay/key-file.ts'

export interface RelayProcess {
  addr: string
  peerId: string
  port: number
  keyFile: string
  /** `http://127.0.0.1:<port>/v1` when started with a gateway. */
  gatewayUrl?: string
  /** SIGKILL: the relay vanishes without saying goodbye, as a crashed host would. */
  kill(): Promise<void>
  stop(): Promise<void>
}

export interface RelayProcessOptions {
  port?: number
  keyFile?: string
  /** PEM files: the relay listens on wss (`--tls-cert`, `--tls-key`). */
  tls?: { certFile: string, keyFile: string }
  /** Serve the OpenAI-compatible gateway on a free port, with this API key file (`--gateway 0 --api-keys`). */
  gateway?: { apiKeysFile: string }
  /** The peer ids of the deployment's other relays (`--anchor`). */
  anchors?: string[]
}

/** How long a relay may take to print its address; a test's hooks have 120 s in all (playwright.config.ts). */
const RELAY_START_TIMEOUT_MS = 90_000

/** Starts `npm run relay`'s entry point as its own process on 127.0.0.1, so a test can kill it. */
export async function startRelayProcess (options: RelayProcessOptions = {}): Promise<RelayProcess> {
  const keyFile = options.keyFile ?? join(mkdtempSync(join(tmpdir(), 'hs-relay-')), 'relay.key')
  const tlsArgs = options.tls !== undefined ? ['--tls-cert', options.tls.certFile, '--tls-key', options.tls.keyFile] : []
  const gatewayArgs = options.gateway !== undefined ? ['--gateway', '0', '--api-keys', options.gateway.apiKeysFile] : []
  const anchorArgs = (options.anchors ?? []).flatMap(peerId => ['--anchor', peerId])
  const child: ChildProcess = spawn(process.execPath, [
    '--import', 'tsx', 'src/relay/main.ts', '--host', '127.0.0.1', '--port', String(options.port ?? 0), '--key-file', keyFile, ...tlsArgs, ...gatewayArgs, ...anchorArgs
  ], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  // With a gateway, the relay is ready once the gateway's line is out too.
  const ready = options.gateway !== undefined ? /listening (\S+)[\s\S]*gateway (\S+)/ : /listening (\S+)/
  const [addr, gatewayUrl] = await new Promise<[string, string | undefined]>((resolve, reject) => {
    let out = ''
    // tsx compiles the relay on start: under a load of 25-30 on two cores that took more than 30 s.
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`relay did not start within ${RELAY_START_TIMEOUT_MS} ms: ${stderr}`))
    }, RELAY_START_TIMEOUT_MS)
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const match = ready.exec(out)
      if (match?.[1] !== undefined) {
        clearTimeout(timer)
        resolve([match[1], match[2]])
      }
    })
    child.once('exit', code => { clearTimeout(timer); reject(new Error(`relay exited with ${code}: ${stderr}`)) })
  })
  const exited = new Promise<void>(resolve => child.once('exit', () => { resolve() }))
  const end = async (signal: NodeJS.Signals): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    await exited
  }
  return {
    addr,
    peerId: addr.split('/p2p/')[1] ?? '',
    port: Number(/\/tcp\/(\d+)\//.exec(addr)?.[1]),
    keyFile,
    ...(gatewayUrl !== undefined ? { gatewayUrl } : {}),
    kill: async () => { await end('SIGKILL') },
    stop: async () => { await end('SIGTERM') }
  }
}

/** A deployment of `count` relays, each told the others' peer ids (`--anchor`) as its operator would. */
export async function startRelayDeployment (count: number): Promise<RelayProcess[]> {
  const keys = await Promise.all(Array.from({ length: count }, async () => {
    const keyFile = join(mkdtempSync(join(tmpdir(), 'hs-relay-')), 'relay.key')
    return { keyFile, peerId: peerIdFromPrivateKey(await loadOrCreateKey(keyFile)).toString() }
  }))
  return await Promise.all(keys.map(async ({ keyFile }, i) => await startRelayProcess({ keyFile, anchors: keys.filter((_, j) => j !== i).map(key => key.peerId) })))
}
