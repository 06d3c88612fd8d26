import { readFile, rename, stat, writeFile } from 'node:fs/promises'
import { isNetworkIdOf } from '../core/config.ts'
import { parseHistorySnapshots, ValidatorHistory, type HistorySnapshot } from '../core/pulse/validators.ts'

/** Network ids whose histories are kept: the relay's network and, on a dev network, its round lengths in use. */
export const MAX_KEPT_NETWORKS = 16
/** A larger file is not one this relay wrote (16 networks of MAX_HISTORIES entries are about 7 MiB). */
const MAX_FILE_BYTES = 32 * 1024 * 1024
/** How often the histories are written while the relay runs; a crash loses at most this much. */
export const SAVE_EVERY_MS = 60_000
const FILE_VERSION = 1

/**
 * The relay's verified histories of the peers it watched (validators.ts), one per network id and
 * shared by the pulse services of that network's committees, kept in a file across restarts.
 *
 * Without it a restarted relay counted every peer from zero: for AGE_ROUNDS rounds nobody was aged in
 * its view, so no drawn validator's verdict counted there and it could not tell a leader of many days
 * from a fresh key. The file is the relay operator's: a damaged one is moved aside, never overwritten.
 */
export class RelayPulseHistories {
  /** In order of last use; past MAX_KEPT_NETWORKS the least recently used is no longer kept. */
  private readonly histories = new Map<string, ValidatorHistory>()
  private readonly loaded = new Map<string, HistorySnapshot[]>()
  private timer?: ReturnType<typeof setInterval>
  private writing: Promise<void> = Promise.resolve()

  constructor (private readonly network: string, private readonly anchors: readonly string[], private readonly file?: string) {}

  async start (): Promise<void> {
    if (this.file === undefined) return
    await this.load(this.file)
    this.timer = setInterval(() => { void this.save() }, SAVE_EVERY_MS)
    this.timer.unref?.()
  }

  /** Writes the histories one last time. */
  async stop (): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
    await this.save()
  }

  /** The history of one network id, restored from the file the first time it is asked for. */
  of (networkId: string): ValidatorHistory {
    let history = this.histories.get(networkId)
    if (history === undefined) {
      history = new ValidatorHistory(this.anchors, this.loaded.get(networkId) ?? [])
      this.loaded.delete(networkId)
    } else {
      this.histories.delete(networkId)
    }
    this.histories.set(networkId, history)
    for (const oldest of this.histories.keys()) {
      if (this.histories.size <= MAX_KEPT_NETWORKS) break
      this.histories.delete(oldest)
    }
    return history
  }

  /** Writes every kept history (and those loaded but not asked for yet), one write at a time. */
  async save (): Promise<void> {
    const file = this.file
    if (file === undefined) return
    this.writing = this.writing.then(async () => {
      const networks: Record<string, HistorySnapshot[]> = {}
      for (const [networkId, history] of this.histories) networks[networkId] = history.snapshot()
      for (const [networkId, snapshots] of this.loaded) {
        if (Object.keys(networks).length < MAX_KEPT_NETWORKS) networks[networkId] = snapshots
      }
      // A whole new file, then a rename: a crash mid-write leaves the previous file, not half of one.
      await writeFile(`${file}.tmp`, JSON.stringify({ version: FILE_VERSION, networks }))
      await rename(`${file}.tmp`, file)
    }).catch(err => { console.warn(`relay: could not keep the pulse histories in ${file}`, err) })
    await this.writing
  }

  private async load (file: string): Promise<void> {
    let text: string
    try {
      if ((await stat(file)).size > MAX_FILE_BYTES) return await this.setAside(file, 'too large')
      text = await readFile(file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
      throw err
    }
    let stored: unknown
    try {
      stored = JSON.parse(text)
    } catch {
      return await this.setAside(file, 'not JSON')
    }
    const networks = (stored as { version?: unknown, networks?: unknown } | null)
    if (networks?.version !== FILE_VERSION || typeof networks.networks !== 'object' || networks.networks === null) {
      return await this.setAside(file, 'not a pulse history file')
    }
    for (const [networkId, snapshots] of Object.entries(networks.networks)) {
      if (this.loaded.size >= MAX_KEPT_NETWORKS) break
      if (isNetworkIdOf(networkId, this.network)) this.loaded.set(networkId, parseHistorySnapshots(snapshots))
    }
  }

  private async setAside (file: string, why: string): Promise<void> {
    console.warn(`relay: ${file} is ${why}; moved to ${file}.damaged, starting with no histories`)
    await rename(file, `${file}.damaged`)
  }
}
