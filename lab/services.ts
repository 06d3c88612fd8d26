import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { appendFileSync } from 'node:fs'
import { join } from 'node:path'
import { LabServiceError } from './errors.ts'
import { INTERNET, SERVICE_IP } from './topology.ts'
import type { IceServer } from '../src/core/config.ts'

export const RELAY_PORT = 4002
export const SITE_PORT = 8080
export const TURN_PORT = 3478

/**
 * How long a service may take to print its ready line. The app server (vite preview, under tsx) took
 * more than 60 s twice on a machine whose load average was 20–30 from other work; a run is bounded by
 * `--minutes` anyway.
 */
const START_TIMEOUT_MS = 180_000
/** How long a service has to stop on SIGTERM before it is killed: the relay's graceful stop once hung for minutes. */
const STOP_GRACE_MS = 10_000

export interface Service {
  /** The line the service printed when it was ready (e.g. the relay's multiaddr). */
  ready: string
  /** SIGKILL: gone at once, as a crashed host. */
  kill(): Promise<void>
  stop(): Promise<void>
}

/**
 * Starts a process inside the internet namespace and waits for a line matching `readyPattern` on its
 * output. `ip netns exec` execs the command, so the child's pid is the service's own.
 */
export async function startInInternet (name: string, command: string, args: string[], readyPattern: RegExp, env: Record<string, string> = {}): Promise<Service> {
  const child: ChildProcess = spawn('ip', ['netns', 'exec', INTERNET, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
  let output = ''
  const ready = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new LabServiceError(`${name} did not start in ${START_TIMEOUT_MS / 1000} s: ${output.slice(-2000)}`)) }, START_TIMEOUT_MS)
    const onData = (chunk: Buffer): void => {
      output += chunk.toString()
      const match = readyPattern.exec(output)
      if (match !== null) {
        clearTimeout(timer)
        resolve(match[1] ?? match[0])
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.once('exit', code => { clearTimeout(timer); reject(new LabServiceError(`${name} exited with ${code}: ${output.slice(-2000)}`)) })
  })
  // Keep draining the pipes (a full pipe would block the service), into LAB_LOG_DIR/<name>.log when set.
  const logDir = process.env.LAB_LOG_DIR
  for (const pipe of [child.stdout, child.stderr]) {
    if (logDir !== undefined) pipe?.on('data', (chunk: Buffer) => { appendFileSync(join(logDir, `${name.replace(/\W+/g, '-')}.log`), chunk) })
    pipe?.resume()
  }
  const exited = new Promise<void>(resolve => {
    if (child.exitCode !== null || child.signalCode !== null) resolve()
    else child.once('exit', () => { resolve() })
  })
  const end = async (signal: NodeJS.Signals): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    // A stop that hangs must not hold up the run's cleanup (and with it the --minutes bound).
    const kill = setTimeout(() => { child.kill('SIGKILL') }, STOP_GRACE_MS)
    await exited
    clearTimeout(kill)
  }
  return { ready, kill: async () => { await end('SIGKILL') }, stop: async () => { await end('SIGTERM') } }
}

/**
 * The relay (`npm run relay`'s entry point) on the service address; its key file keeps its peer id
 * across restarts, and the history file beside it the verified rounds it counted.
 */
export async function startLabRelay (keyFile: string): Promise<Service> {
  return await startInInternet('relay', process.execPath, [
    '--import', 'tsx', 'src/relay/main.ts', '--host', SERVICE_IP, '--port', String(RELAY_PORT), '--key-file', keyFile, '--history-file', `${keyFile}.history.json`, '--network', 'dev'
  ], /listening (\S+)/)
}

/** The app server with a bootstrap.json naming the lab's relay and TURN server. */
export async function startLabSite (relayAddr: string, iceServers: IceServer[]): Promise<Service> {
  const bootstrap = { network: 'dev', bootstrap: [relayAddr], iceServers }
  return await startInInternet('app server', process.execPath, ['--import', 'tsx', join('lab', 'site.ts')], /serving (\S+)/,
    { LAB_SITE: JSON.stringify({ host: SERVICE_IP, port: SITE_PORT, bootstrap }) })
}

export interface TurnServer extends Service {
  iceServers: IceServer[]
}

/**
 * coturn on the service address: STUN for every home, TURN (long-term credentials, a password made
 * for this run) for the pairs whose NATs block a direct path.
 */
export async function startLabTurn (): Promise<TurnServer> {
  const username = 'lab'
  const credential = randomBytes(12).toString('hex')
  const service = await startInInternet('coturn', 'turnserver', [
    '-n', '--listening-ip', SERVICE_IP, '--relay-ip', SERVICE_IP, '--listening-port', String(TURN_PORT),
    '--min-port', '49152', '--max-port', '49999', '--realm', 'hyperspace.lab', '--lt-cred-mech', '--user', `${username}:${credential}`,
    ...(process.env.LAB_LOG_DIR !== undefined ? ['--verbose'] : []), '--fingerprint', '--no-tls', '--no-dtls', '--no-cli', '--log-file', 'stdout', '--simple-log', '--pidfile', join('/tmp', `hslab-turn-${process.pid}.pid`)
  ], /Total (?:UDP|General) servers|listener opened on/)
  const iceServers: IceServer[] = [
    { urls: `stun:${SERVICE_IP}:${TURN_PORT}` },
    { urls: `turn:${SERVICE_IP}:${TURN_PORT}?transport=udp`, username, credential }
  ]
  return { ...service, iceServers }
}
