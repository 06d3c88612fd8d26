import { serveBuiltApp } from '../scripts/serve-built.ts'

/**
 * The lab's app server, run inside the internet namespace by services.ts: the built app (dist/) with
 * the lab's bootstrap.json (its relay and TURN server) and the shared models at /models/, as
 * `npm start` serves them. LAB_SITE holds `{ host, port, bootstrap }`.
 */
const { host, port, bootstrap } = JSON.parse(process.env.LAB_SITE ?? '{}') as { host: string, port: number, bootstrap: object }
const server = await serveBuiltApp({ host, port, bootstrap, logLevel: 'error' })
console.log(`serving ${server.resolvedUrls?.network[0] ?? `http://${host}:${port}/`}`)
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => { void server.close().finally(() => process.exit(0)) })
}
