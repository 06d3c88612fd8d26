import { createServer } from 'node:net'

async function isFree (port: number, host: string): Promise<boolean> {
  return await new Promise(resolve => {
    const server = createServer()
    server.once('error', () => { resolve(false) })
    server.listen(port, host, () => { server.close(() => { resolve(true) }) })
  })
}

/** The first free TCP port from `start` on, so a second checkout or a busy port does not stop startup. */
export async function freePort (start: number, host = '127.0.0.1'): Promise<number> {
  for (let port = start; port < start + 100; port++) {
    if (await isFree(port, host)) return port
  }
  throw new Error(`no free port in ${start}-${start + 99} on ${host}`)
}
