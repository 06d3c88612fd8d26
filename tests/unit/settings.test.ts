import { afterAll, describe, expect, it } from 'vitest'
import { SettingsStore } from '../../src/storage/settings-store.ts'
import { closeAll, openDb } from './helpers.ts'

afterAll(() => { closeAll() })

describe('SettingsStore', () => {
  it('loads empty settings from a fresh database', async () => {
    expect(await new SettingsStore(await openDb()).load()).toEqual({ toggles: {} })
  })

  it('round-trips a profile and toggles across connections', async () => {
    const db = await openDb()
    await new SettingsStore(db).save({ profile: 'storage', toggles: { proxy: true, memory: false } })
    const loaded = await new SettingsStore(await openDb(db.name)).load()
    expect(loaded).toEqual({ profile: 'storage', toggles: { proxy: true, memory: false } })
  })

  it('keeps the proxy host lists, and drops stored lists it cannot read', async () => {
    const db = await openDb()
    const store = new SettingsStore(db)
    await store.save({ toggles: { proxy: true }, proxyHosts: { allow: ['example.com'], deny: ['*.ads.example'] } })
    expect(await new SettingsStore(await openDb(db.name)).load()).toEqual({ toggles: { proxy: true }, proxyHosts: { allow: ['example.com'], deny: ['*.ads.example'] } })
    await db.put('settings', { allow: ['not a host'], deny: [] }, 'proxy-hosts')
    expect(await store.load()).toEqual({ toggles: { proxy: true } })
    await store.save({ toggles: {} })
    expect(await db.get('settings', 'proxy-hosts')).toBeUndefined()
  })

  it('keeps the model listing, and drops a stored one it does not know', async () => {
    const db = await openDb()
    const store = new SettingsStore(db)
    await store.save({ toggles: {}, modelListing: 'on-request' })
    expect(await new SettingsStore(await openDb(db.name)).load()).toEqual({ toggles: {}, modelListing: 'on-request' })
    await db.put('settings', 'hidden', 'model-listing')
    expect(await store.load()).toEqual({ toggles: {} })
    await store.save({ toggles: {} })
    expect(await db.get('settings', 'model-listing')).toBeUndefined()
  })

  it('saving without a profile removes the stored one', async () => {
    const db = await openDb()
    const store = new SettingsStore(db)
    await store.save({ profile: 'full', toggles: { inference: false } })
    await store.save({ toggles: {} })
    expect(await store.load()).toEqual({ toggles: {} })
    expect(await db.get('settings', 'profile')).toBeUndefined()
  })

  it('save stores a copy of the toggles', async () => {
    const store = new SettingsStore(await openDb())
    const toggles: Record<string, boolean> = { caching: true }
    await store.save({ toggles })
    toggles.caching = false
    expect(await store.load()).toEqual({ toggles: { caching: true } })
  })

  it('drops an invalid stored profile', async () => {
    for (const garbage of ['gpu', 42, null, { name: 'full' }, ['full'], 'FULL']) {
      const db = await openDb()
      await db.put('settings', garbage, 'profile')
      await db.put('settings', { embedding: true }, 'toggles')
      expect(await new SettingsStore(db).load()).toEqual({ toggles: { embedding: true } })
    }
  })

  it('drops invalid stored toggles', async () => {
    for (const garbage of ['on', 7, null, true, new Uint8Array([1])]) {
      const db = await openDb()
      await db.put('settings', 'relay', 'profile')
      await db.put('settings', garbage, 'toggles')
      expect(await new SettingsStore(db).load()).toEqual({ profile: 'relay', toggles: {} })
    }
  })

  it('keeps only boolean toggles of known capabilities', async () => {
    const db = await openDb()
    await db.put('settings', {
      inference: true,
      embedding: 'yes',
      storage: 1,
      memory: null,
      proxy: false,
      mining: true,
      __proto__: { relay: true }
    }, 'toggles')
    expect(await new SettingsStore(db).load()).toEqual({ toggles: { inference: true, proxy: false } })
  })
})
