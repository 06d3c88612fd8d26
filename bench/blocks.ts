/**
 * `npx tsx bench/blocks.ts`: block fetch throughput between two pages over WebRTC.
 *
 * One relay and two pages of the built app on 127.0.0.1, both with the storage profile. The content
 * (1 MiB: one block; 16 MiB: 16 chunks and a manifest) is written to a temporary directory that the
 * app server serves at /models/. The reference is B fetching those bytes with fetch() from the app
 * server; the measured path is A putting the same bytes and B calling blocks.get(cid): DHT lookup,
 * `/hyperspace/blocks/1.0.0` over the direct WebRTC connection, hash verification of every block,
 * and storing in IndexedDB (each block's receipt exchange finishes on its stream after the block is
 * handed on, so it is not always inside the figure). B's copy is deleted (raw IndexedDB) before each run
 * so that every run goes to the network. Each figure is the median of RUNS runs after a warm-up.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Page } from '@playwright/test'
import { waitForFullMesh } from '../tests/e2e/nodes.ts'
import { startBenchBed } from './bed.ts'
import { figure, recordFigures, type Figure } from './figures.ts'
import { fmt, fmtRatio, ratio, spread, summarize, table } from './stats.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const RUNS = 5
const MiB = 1024 * 1024
const SIZES = [{ name: '1 MiB (1 block)', file: 'bench-1m.bin', bytes: MiB }, { name: '16 MiB (16 chunks + manifest)', file: 'bench-16m.bin', bytes: 16 * MiB }]

const served = mkdtempSync(join(tmpdir(), 'hs-bench-blocks-'))
for (const size of SIZES) writeFileSync(join(served, size.file), randomBytes(size.bytes))
// The app server serves HYPERSPACE_MODELS_DIR at /models/; vite preview inherits the variable.
process.env.HYPERSPACE_MODELS_DIR = served

const bed = await startBenchBed(ROOT, 4600)

/** ms for fetch() of the file from the app server, bypassing the HTTP cache. */
async function timeFetch (page: Page, file: string): Promise<number> {
  return await page.evaluate(async name => {
    const start = performance.now()
    const bytes = await (await fetch(`/models/${name}`, { cache: 'no-store' })).arrayBuffer()
    if (bytes.byteLength === 0) throw new Error('empty')
    return performance.now() - start
  }, file)
}

/** ms for blocks.get(cid) on a node that holds none of its blocks. */
async function timeGet (page: Page, cid: string): Promise<number> {
  return await page.evaluate(async id => {
    // Forget every block (and the running totals, which the store then recounts) so the fetch is remote.
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const open = indexedDB.open('hyperspace')
      open.onsuccess = () => { resolve(open.result) }
      open.onerror = () => { reject(open.error) }
    })
    const tx = db.transaction(['blocks', 'settings'], 'readwrite')
    tx.objectStore('blocks').clear()
    tx.objectStore('settings').delete('blocks-usage')
    await new Promise<void>((resolve, reject) => { tx.oncomplete = () => { resolve() }; tx.onerror = () => { reject(tx.error) } })
    db.close()
    const start = performance.now()
    const bytes = await window.hyperspace?.blocks.get(id)
    if (bytes === undefined) throw new Error('no node')
    return performance.now() - start
  }, cid)
}

try {
  const a = await bed.openNode('storage')
  const b = await bed.openNode('storage')
  await waitForFullMesh([a, b])

  const rows: string[][] = []
  const figures: Record<string, Figure> = {}
  for (const size of SIZES) {
    const cid = await a.page.evaluate(async name => {
      const bytes = new Uint8Array(await (await fetch(`/models/${name}`)).arrayBuffer())
      return await window.hyperspace?.blocks.put(bytes) ?? ''
    }, size.file)
    await b.page.waitForFunction(async ([id, holder]) => (await window.hyperspace?.blocks.providers(id))?.includes(holder) === true, [cid, a.peerId] as const, { timeout: 60_000, polling: 500 })
    await timeFetch(b.page, size.file)
    await timeGet(b.page, cid)
    const fetched: number[] = []
    const got: number[] = []
    for (let i = 0; i < RUNS; i++) {
      fetched.push(await timeFetch(b.page, size.file))
      got.push(await timeGet(b.page, cid))
    }
    const f = summarize(fetched)
    const g = summarize(got)
    const mibps = (ms: number | null): number | null => ms === null ? null : size.bytes / MiB / (ms / 1000)
    rows.push([size.name, `${fmt(f.median, 'ms')} (${spread(f, 'ms')})`, fmt(mibps(f.median), 'MiB/s', 1),
      `${fmt(g.median, 'ms')} (${spread(g, 'ms')})`, fmt(mibps(g.median), 'MiB/s', 1), fmtRatio(ratio(g.median, f.median))])
    // The goal is named for the largest block set; every size is kept under its own name too.
    const measured = figure(g.median ?? NaN, 'ms', `blocks.get of ${size.name} over WebRTC vs fetch() of the same bytes from the app server`, f.median)
    figures[`blocks.vsFetch${size.bytes / MiB}MiB`] = measured
    if (size === SIZES.at(-1)) figures['blocks.vsFetch'] = measured
  }
  recordFigures(figures)
  console.log(`\nBlock fetch, B ← A over WebRTC vs B fetch() from the local app server, median of ${RUNS} runs\n`)
  console.log(table(['content', 'fetch() (reference)', 'fetch() rate', 'blocks.get over WebRTC', 'blocks.get rate', 'time vs fetch()'], rows))
} finally {
  await bed.close()
}
