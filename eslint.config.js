import js from '@eslint/js'
import svelte from 'eslint-plugin-svelte'
import globals from 'globals'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['wasm/**/*.ts', 'dist/', 'node_modules/', 'test-results/', 'playwright-report/', 'dev-dist/', 'bench/results/'] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  ...svelte.configs.recommended,
  {
    languageOptions: { globals: { ...globals.browser, ...globals.node } }
  },
  {
    files: ['**/*.svelte', '**/*.svelte.ts'],
    languageOptions: { parserOptions: { parser: tseslint.parser } }
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-console': ['error', { allow: ['warn', 'error'] }]
    }
  },
  {
    // The pure core may not reach the DOM, libp2p or any other layer.
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['libp2p', '@libp2p/*', '@chainsafe/*', '@multiformats/multiaddr*', 'idb'], message: 'src/core is runtime-free: no libp2p or storage imports' },
          { group: ['**/net/*', '**/node/*', '**/storage/*', '**/ui/*', '**/relay/*', '**/workers/*'], message: 'src/core imports nothing of the other layers' }
        ]
      }],
      'no-restricted-globals': ['error', 'window', 'document', 'navigator', 'localStorage', 'indexedDB']
    }
  },
  {
    // Protocol ids and topic names are written once, in their wire module.
    files: ['src/**/*.ts', 'src/**/*.svelte', 'workers/**/*.ts'],
    ignores: ['src/core/wire/**'],
    rules: {
      'no-restricted-syntax': ['error',
        { selector: 'Literal[value=/^\\/?hyperspace\\//]', message: 'protocol ids and topic names live in src/core/wire' },
        { selector: 'TemplateElement[value.raw=/^\\/?hyperspace\\//]', message: 'protocol ids and topic names live in src/core/wire' }
      ]
    }
  },
  {
    files: ['src/ui/**/*.ts', 'src/ui/**/*.svelte'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{ group: ['../net/*', '../storage/*', '../relay/*', 'libp2p', '@libp2p/*'], message: 'the UI talks only to the node API (src/node)' }]
      }]
    }
  },
  {
    files: ['scripts/**', 'bench/**', 'sim/**', 'lab/**', 'src/relay/**', 'tests/**'],
    rules: { 'no-console': 'off' }
  }
)
