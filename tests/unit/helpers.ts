import 'fake-indexeddb/auto'
import { openHyperspaceDb, type HyperspaceDb } from '../../src/storage/database.ts'
import type { FileCache } from '../../workers/embedding/model-cache.ts'

let counter = 0

/** A database name no other test uses, so every test starts from an empty IndexedDB. */
export function freshDbName (label = 'test'): string {
  counter++
  return `hyperspace-unit-${label}-${counter}-${crypto.randomUUID()}`
}

/** Opens a database and remembers it so `closeAll` can release it after the test file. */
const opened: HyperspaceDb[] = []
export async function openDb (name = freshDbName()): Promise<HyperspaceDb> {
  const db = await openHyperspaceDb(name)
  opened.push(db)
  return db
}

export function closeAll (): void {
  for (const db of opened.splice(0)) db.close()
}

const BASE58_LETTERS = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'

/** A syntactically valid base58 peer id string (52 characters), distinct for each i < 2401. */
export function fakePeerId (i: number): string {
  const a = BASE58_LETTERS[i % BASE58_LETTERS.length] ?? 'A'
  const b = BASE58_LETTERS[Math.floor(i / BASE58_LETTERS.length) % BASE58_LETTERS.length] ?? 'A'
  return `12D3KooW${'Q'.repeat(42)}${b}${a}`
}

/** Cache Storage's semantics for the three calls used: responses stored and matched by URL. */
export class MemoryCache implements FileCache {
  readonly entries = new Map<string, Response>()

  async match (request: RequestInfo | URL): Promise<Response | undefined> {
    return this.entries.get(String(request))?.clone()
  }

  async put (request: RequestInfo | URL, response: Response): Promise<void> {
    // A real cache reads the whole body before put resolves.
    const body = await response.arrayBuffer()
    this.entries.set(String(request), new Response(body, { status: response.status, headers: response.headers }))
  }

  async delete (request: RequestInfo | URL): Promise<boolean> {
    return this.entries.delete(String(request))
  }
}
