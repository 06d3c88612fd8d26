import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { LabCommandError } from './errors.ts'

const exec = promisify(execFile)

/**
 * Every namespace the lab makes carries this prefix, so a later run can find and remove what a
 * crashed one left behind without touching anything else on the machine.
 */
export const LAB_PREFIX = 'hslab'
/**
 * This run's namespaces carry its process id too: two runs at once (a soak beside `npm test`'s quick
 * lab) each build and remove only their own, and a run removes another's only once that one's process
 * is gone. No dash after the prefix: lab versions before this one, which removed every `hslab-*`
 * namespace when they started, leave a newer run's alone.
 */
export const RUN_PREFIX = `${LAB_PREFIX}${process.pid}-`
const RUN_NAME = new RegExp(`^${LAB_PREFIX}(\\d+)-`)

export async function run (command: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await exec(command, args, { timeout: 30_000 })
    return stdout
  } catch (err) {
    const failure = err as { stderr?: string, message: string }
    throw new LabCommandError(`${command} ${args.join(' ')}`, failure.stderr ?? failure.message)
  }
}

/** Runs a command inside a lab namespace. */
export async function runIn (ns: string, command: string, args: string[]): Promise<string> {
  return await run('ip', ['netns', 'exec', ns, command, ...args])
}

async function allLabNamespaces (): Promise<string[]> {
  const out = await run('ip', ['netns', 'list'])
  return out.split('\n').map(line => line.split(' ')[0] ?? '').filter(name => name.startsWith(LAB_PREFIX))
}

function processAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Lab namespaces no live run owns: this run's own (at its end), those of runs whose process is gone,
 * and unnumbered ones of an older lab version when no process runs in any of them (an older run
 * still going keeps its own).
 */
export function leftoversAmong (names: string[], self: number, alive: (pid: number) => boolean, unnumberedIdle: boolean): string[] {
  return names.filter(name => {
    if (!name.startsWith(LAB_PREFIX)) return false
    const owner = RUN_NAME.exec(name)?.[1]
    if (owner === undefined) return unnumberedIdle
    return Number(owner) === self || !alive(Number(owner))
  })
}

export async function leftoverNamespaces (): Promise<string[]> {
  const names = await allLabNamespaces()
  const unnumbered = names.filter(name => !RUN_NAME.test(name))
  const unnumberedIdle = (await Promise.all(unnumbered.map(pidsIn))).every(pids => pids.length === 0)
  return leftoversAmong(names, process.pid, processAlive, unnumberedIdle)
}

/** Process ids running inside a namespace: the lab's own services and browsers. */
export async function pidsIn (ns: string): Promise<number[]> {
  const out = await run('ip', ['netns', 'pids', ns]).catch(() => '')
  return out.split('\n').map(Number).filter(pid => Number.isInteger(pid) && pid > 0)
}

/**
 * Removes lab namespaces, first killing what still runs in them (by pid: only processes inside the
 * lab's namespaces). The namespaces' veth pairs, iptables rules and qdiscs go with them, because
 * they exist only inside those namespaces.
 */
export async function removeNamespaces (names: string[]): Promise<void> {
  for (const ns of names) {
    for (const pid of await pidsIn(ns)) {
      try { process.kill(pid, 'SIGKILL') } catch { /* already gone */ }
    }
  }
  for (const ns of names) await run('ip', ['netns', 'delete', ns]).catch(() => undefined)
}

export async function createNamespace (name: string): Promise<void> {
  await run('ip', ['netns', 'add', name])
  await runIn(name, 'ip', ['link', 'set', 'lo', 'up'])
}

export interface LinkEnd {
  ns: string
  ifname: string
  /** Address with prefix length, e.g. 10.77.1.1/24. */
  cidr: string
}

/**
 * A veth pair whose two ends are created directly inside two lab namespaces: neither end ever
 * exists in the machine's own namespace, so nothing the lab sends can reach a real interface.
 */
export async function connect (a: LinkEnd, b: LinkEnd): Promise<void> {
  await run('ip', ['link', 'add', a.ifname, 'netns', a.ns, 'type', 'veth', 'peer', 'name', b.ifname, 'netns', b.ns])
  for (const end of [a, b]) {
    await runIn(end.ns, 'ip', ['addr', 'add', end.cidr, 'dev', end.ifname])
    await runIn(end.ns, 'ip', ['link', 'set', end.ifname, 'up'])
  }
}

export async function setDefaultRoute (ns: string, via: string): Promise<void> {
  await runIn(ns, 'ip', ['route', 'replace', 'default', 'via', via])
}

export async function enableForwarding (ns: string): Promise<void> {
  await runIn(ns, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1'])
}
