/** Small display helpers shared by the dashboard components. */

const KiB = 1024
const MiB = KiB * 1024
const GiB = MiB * 1024

/** Peer ids are 52 characters; the start and end are enough to tell them apart on screen. */
export function shortPeerId (peerId: string): string {
  return peerId.length <= 14 ? peerId : `${peerId.slice(0, 8)}…${peerId.slice(-4)}`
}

export function formatBytes (bytes: number): string {
  if (bytes >= GiB) return `${(bytes / GiB).toFixed(1)} GiB`
  if (bytes >= MiB) return `${(bytes / MiB).toFixed(1)} MiB`
  if (bytes >= KiB) return `${Math.round(bytes / KiB)} KiB`
  return `${bytes} B`
}

export function formatMiB (mib: number): string {
  return mib >= 1024 ? `${(mib / 1024).toFixed(1)} GiB` : `${mib} MiB`
}

/** Whole seconds from `now` until `at`, never negative. */
export function secondsUntil (at: number, now: number): number {
  return Math.max(0, Math.ceil((at - now) / 1000))
}

/** "42 s", "5 min", "3 h": how long ago or how long for, coarse enough to read at a glance. */
export function formatDuration (ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000))
  if (s < 60) return `${s} s`
  if (s < 3600) return `${Math.floor(s / 60)} min`
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
}

export function errorMessage (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
