import { expect, test, type Page } from '@playwright/test'
import { waitForFullMesh, type TestNode } from './nodes.ts'
import { sharedNetwork } from './network.ts'

/**
 * Content-addressed storage (issue 5): three pages with the storage profile and a relay, which is the
 * DHT server. Providers are found through the DHT, blocks travel over `/hyperspace/blocks/1.0.0` on
 * the direct WebRTC connections, and every block is hashed against its CID before it is used.
 */

let a: TestNode
let b: TestNode
let c: TestNode
const warnings = new Map<Page, string[]>()

sharedNetwork(['&profile=storage', '&profile=storage', '&profile=storage'], async started => {
  ;[a, b, c] = started.nodes as [TestNode, TestNode, TestNode]
  for (const node of [a, b, c]) {
    const seen: string[] = []
    warnings.set(node.page, seen)
    node.page.on('console', msg => { if (msg.type() === 'warning') seen.push(msg.text()) })
  }
  await waitForFullMesh([a, b, c])
})

interface Digest { size: number, sha256: string }

/** Puts `size` pseudo-random bytes (from `seed`) on the page's node: the CID and the bytes' digest. */
async function putRandom (page: Page, size: number, seed: number): Promise<Digest & { cid: string }> {
  return await page.evaluate(async ([n, s]) => {
    const node = window.hyperspace
    if (node === undefined) throw new Error('no node')
    const bytes = new Uint8Array(n)
    let x = s >>> 0 || 1
    for (let i = 0; i < n; i++) {
      x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0
      bytes[i] = x & 0xff
    }
    const cid = await node.blocks.put(bytes)
    const hex = Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)), v => v.toString(16).padStart(2, '0')).join('')
    return { cid, size: n, sha256: hex }
  }, [size, seed] as const)
}

/** Fetches the CID on the page's node: the size and digest of what came back. */
async function getDigest (page: Page, cid: string): Promise<Digest> {
  return await page.evaluate(async id => {
    const node = window.hyperspace
    if (node === undefined) throw new Error('no node')
    const bytes = await node.blocks.get(id)
    const hex = Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes.slice())), v => v.toString(16).padStart(2, '0')).join('')
    return { size: bytes.byteLength, sha256: hex }
  }, cid)
}

async function providersOf (page: Page, cid: string): Promise<string[]> {
  return await page.evaluate(async id => await window.hyperspace?.blocks.providers(id) ?? [], cid)
}

async function holds (page: Page, cid: string): Promise<boolean> {
  return (await providersOf(page, cid)).includes(await page.evaluate(() => window.hyperspace?.status().peerId ?? ''))
}

test('storage works on every page', async () => {
  for (const node of [a, b, c]) {
    const storage = await node.page.evaluate(() => window.hyperspace?.status().capabilities.storage)
    expect(storage).toMatchObject({ enabled: true, working: true })
  }
})

test('a block put on A is found by C through the DHT and fetched with its hash verified', async () => {
  const put = await putRandom(a.page, 200_000, 1)
  expect(put.cid).toMatch(/^bafk/)
  // providers() asks the DHT only (plus the node itself): A listed there means the relay holds its record.
  await expect.poll(async () => await providersOf(c.page, put.cid), { timeout: 30_000 }).toContain(a.peerId)
  expect(await holds(c.page, put.cid)).toBe(false)
  expect(await getDigest(c.page, put.cid)).toEqual({ size: put.size, sha256: put.sha256 })
  expect(await holds(c.page, put.cid)).toBe(true)
  // C is now a provider too.
  await expect.poll(async () => await providersOf(b.page, put.cid), { timeout: 30_000 }).toEqual(expect.arrayContaining([a.peerId, c.peerId]))
  // A served the bytes: both sides hold the countersigned storage receipt.
  await expect.poll(async () => await a.page.evaluate(() => window.hyperspace?.receipts.recent(10).filter(r => r.kind === 'storage').length ?? 0)).toBeGreaterThan(0)
})

test('a 3 MiB file round-trips as a manifest and its chunks', async () => {
  const put = await putRandom(a.page, 3 * 1024 * 1024, 2)
  const before = await c.page.evaluate(async () => await window.hyperspace?.blocks.stats())
  await expect.poll(async () => await providersOf(c.page, put.cid), { timeout: 30_000 }).toContain(a.peerId)
  expect(await getDigest(c.page, put.cid)).toEqual({ size: put.size, sha256: put.sha256 })
  const after = await c.page.evaluate(async () => await window.hyperspace?.blocks.stats())
  // Three chunks and the manifest.
  expect((after?.count ?? 0) - (before?.count ?? 0)).toBe(4)
  expect((after?.bytes ?? 0) - (before?.bytes ?? 0)).toBeGreaterThan(3 * 1024 * 1024)
})

test('a holder that returns wrong bytes is detected and not used', async () => {
  const put = await putRandom(a.page, 100_000, 3)
  await expect.poll(async () => await providersOf(b.page, put.cid), { timeout: 30_000 }).toContain(a.peerId)
  // Rewrite A's copy in its IndexedDB, behind its node's back: A now serves bytes that do not hash to the CID.
  await a.page.evaluate(async cid => {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const open = indexedDB.open('hyperspace')
      open.onsuccess = () => { resolve(open.result) }
      open.onerror = () => { reject(open.error) }
    })
    const tx = db.transaction('blocks', 'readwrite')
    const store = tx.objectStore('blocks')
    await new Promise<void>((resolve, reject) => {
      const read = store.get(cid)
      read.onsuccess = () => {
        const record = read.result as { bytes: Uint8Array }
        const bytes = record.bytes.slice()
        bytes[0] = (bytes[0] ?? 0) ^ 0xff
        store.put({ ...record, bytes })
        resolve()
      }
      read.onerror = () => { reject(read.error) }
    })
    await new Promise<void>((resolve, reject) => { tx.oncomplete = () => { resolve() }; tx.onerror = () => { reject(tx.error) } })
    db.close()
  }, put.cid)

  // A is the only holder: B refuses its bytes, keeps nothing, and reports A.
  const refused = await b.page.evaluate(async cid => await window.hyperspace?.blocks.get(cid).then(() => 'fetched', (err: unknown) => String(err)), put.cid)
  expect(refused).toMatch(/do not hash/)
  expect(await holds(b.page, put.cid)).toBe(false)
  expect(warnings.get(b.page)?.some(w => w.includes(`invalid message from ${a.peerId}`) && w.includes('do not hash'))).toBe(true)

  // With an honest holder as well, B gets the right bytes whatever order it tries them in.
  await putRandom(c.page, 100_000, 3)
  await expect.poll(async () => await providersOf(b.page, put.cid), { timeout: 30_000 }).toContain(c.peerId)
  expect(await getDigest(b.page, put.cid)).toEqual({ size: put.size, sha256: put.sha256 })
})

test('the Storage panel stores a picked file, fetches its CID on another page and shows providers and quota', async () => {
  const content = Buffer.from('hello from the storage panel '.repeat(1000))
  await a.page.getByTestId('storage-file').setInputFiles({ name: 'hello.txt', mimeType: 'text/plain', buffer: content })
  const cid = (await a.page.getByTestId('storage-cid').textContent({ timeout: 30_000 }))?.trim() ?? ''
  expect(cid).toMatch(/^bafk/)
  await expect(a.page.getByTestId('storage-quota')).toContainText('of')
  await expect.poll(async () => await providersOf(c.page, cid), { timeout: 30_000 }).toContain(a.peerId)

  await c.page.getByTestId('storage-fetch-input').fill(cid)
  await c.page.getByTestId('storage-fetch').click()
  await expect(c.page.getByTestId('storage-panel')).toContainText('hash verified')
  await expect(c.page.getByTestId('storage-providers')).toContainText(a.peerId.slice(-4))
  await expect(c.page.getByTestId('storage-error')).toHaveCount(0)

  await c.page.getByTestId('storage-fetch-input').fill('not-a-cid')
  await c.page.getByTestId('storage-fetch').click()
  await expect(c.page.getByTestId('storage-error')).toContainText('Invalid block CID')
})
