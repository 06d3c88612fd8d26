import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { LabServiceError } from './errors.ts'
import { LOSS_PERCENT } from './nat.ts'
import { runIn } from './netns.ts'

/**
 * What a home's link adds to every round trip through it, half each way, and the jitter on that
 * (also half each way): the 20–150 ms, a different figure per home so that pairs see a spread.
 */
export interface LinkProfile {
  rttMs: number
  jitterMs: number
}

/** By home index (1-based, the order of main.ts's HOME_KINDS): cone-1, cone-2, restricted-1, restricted-2, symmetric-1, symmetric-2. */
const PROFILES: LinkProfile[] = [
  { rttMs: 20, jitterMs: 4 },
  { rttMs: 60, jitterMs: 12 },
  { rttMs: 100, jitterMs: 20 },
  { rttMs: 150, jitterMs: 30 },
  { rttMs: 40, jitterMs: 8 },
  { rttMs: 120, jitterMs: 24 }
]

export function linkProfile (index: number): LinkProfile {
  return PROFILES[(index - 1) % PROFILES.length] ?? { rttMs: 20, jitterMs: 4 }
}

/** A home's link as lab.json records it: what was set, and what the delaying process applied. */
export interface LinkReport extends LinkProfile {
  home: string
  lossPercent: number
  /** Packets delayed towards the internet and towards the home. */
  packets: { up: number, down: number }
  /** The mean one-way delay applied, per direction (jitter and queueing included). */
  meanDelayMs: { up: number | null, down: number | null }
}

export interface LinkDelay {
  /** Stops the delaying process (packets it holds go on) and reads what it applied. */
  stop(): Promise<LinkReport>
}

/** The NFQUEUE numbers of the two directions on a router (each router is its own namespace). */
const UP_QUEUE = 1
const DOWN_QUEUE = 2

/**
 * Delay and jitter on a home's link, in its router: tc netem is what the issue asks for, but the
 * kernels the lab runs on lack sch_netem (and sch_fq), so lab/link-delay.py holds each forwarded packet
 * through NFQUEUE instead. Its rules come after the loss rule (a lost packet is not delayed) and
 * after the uplink cut, which `-I` puts first.
 */
export async function delayLink (home: { name: string, router: string }, profile: LinkProfile): Promise<LinkDelay> {
  const child = spawn('ip', ['netns', 'exec', home.router, 'python3', join('lab', 'link-delay.py'),
    '--queue', String(UP_QUEUE), '--queue', String(DOWN_QUEUE), '--delay-ms', String(profile.rttMs / 2), '--jitter-ms', String(profile.jitterMs / 2)],
  { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  for (const pipe of [child.stdout, child.stderr]) pipe.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exited = new Promise<void>(resolve => { child.once('exit', () => { resolve() }) })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new LabServiceError(`link delay in ${home.router} did not start: ${output}`)) }, 10_000)
    child.stdout.on('data', () => { if (output.includes('ready')) { clearTimeout(timer); resolve() } })
    child.once('exit', code => { clearTimeout(timer); reject(new LabServiceError(`link delay in ${home.router} exited with ${code}: ${output}`)) })
  })
  await runIn(home.router, 'iptables', ['-A', 'FORWARD', '-i', 'lan', '-j', 'NFQUEUE', '--queue-num', String(UP_QUEUE)])
  await runIn(home.router, 'iptables', ['-A', 'FORWARD', '-i', 'wan', '-j', 'NFQUEUE', '--queue-num', String(DOWN_QUEUE)])
  return {
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      // Its figures come with a clean exit; a process that hangs is killed so the cleanup goes on.
      const kill = setTimeout(() => { child.kill('SIGKILL') }, 10_000)
      await exited
      clearTimeout(kill)
      const stats = /stats (\{.*\})/.exec(output)?.[1]
      const parsed = stats === undefined ? {} : JSON.parse(stats) as Record<string, { packets: number, meanDelayMs: number | null }>
      const up = parsed[String(UP_QUEUE)]
      const down = parsed[String(DOWN_QUEUE)]
      return {
        home: home.name,
        ...profile,
        lossPercent: LOSS_PERCENT,
        packets: { up: up?.packets ?? 0, down: down?.packets ?? 0 },
        meanDelayMs: { up: up?.meanDelayMs ?? null, down: down?.meanDelayMs ?? null }
      }
    }
  }
}
