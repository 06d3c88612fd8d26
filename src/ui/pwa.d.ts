// Declares 'virtual:pwa-register', which the svelte entry in tsconfig's types does not.
/// <reference types="vite-plugin-pwa/vanillajs" />
