import { readFile, writeFile } from 'node:fs/promises'
import { ApiKeysFileError, GATEWAY_KEY_DEFAULTS, newApiKey, parseApiKeys, type ApiKeyEntry } from '../core/gateway/api-keys.ts'

/**
 * The gateway's API keys, kept in a file like the relay's identity: read when it exists, else
 * created (mode 0600) with one new key for this machine, so a restart keeps the key a user pasted.
 */
export async function loadOrCreateApiKeys (path: string): Promise<{ keys: ApiKeyEntry[], created: boolean }> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new ApiKeysFileError(`cannot read ${path}: ${(err as Error).message}`)
    const keys: ApiKeyEntry[] = [{ key: newApiKey(), name: 'this machine', ...GATEWAY_KEY_DEFAULTS }]
    await writeFile(path, JSON.stringify({ keys }, null, 2) + '\n', { mode: 0o600, flag: 'wx' })
    return { keys, created: true }
  }
  try {
    return { keys: parseApiKeys(text), created: false }
  } catch (err) {
    throw new ApiKeysFileError(`${path}: ${(err as Error).message}`)
  }
}
