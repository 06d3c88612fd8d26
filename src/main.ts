import { mount } from 'svelte'
import App from './ui/App.svelte'
import { bootHost, loadConfig, startBoot, type LinkSettingsQuestion } from './node/boot.ts'

const target = document.getElementById('app')
if (target === null) throw new Error('index.html has no #app element')

// Settings from a link wait for the user: the App shows the question, its dialog answers it.
let ask: (question: LinkSettingsQuestion) => void = () => {}
const linkSettings = new Promise<LinkSettingsQuestion>(resolve => { ask = resolve })

// The hardware probe and the database open meanwhile bootstrap.json loads: the relay dial waits for all three.
const started = startBoot()
// Mount first: the UI shows progress, the update prompt and a boot failure instead of a blank page.
const boot = loadConfig(async request => await new Promise<boolean>(answer => { ask({ ...request, answer }) }))
  .then(async config => ({ config, host: await bootHost(config, started) }))
mount(App, { target, props: { boot, linkSettings } })
