import { mount } from 'svelte'
import App from './ui/App.svelte'
import { bootHost, loadConfig } from './node/boot.ts'

const target = document.getElementById('app')
if (target === null) throw new Error('index.html has no #app element')

// Mount first: the UI shows progress, the update prompt and a boot failure instead of a blank page.
const boot = loadConfig().then(async config => ({ config, host: await bootHost(config) }))
mount(App, { target, props: { boot } })
