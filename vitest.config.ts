import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['tests/unit/**/*.test.ts'],
    environment: 'node',
    testTimeout: 30_000,
    // Set-up waits for states (tests/unit/waiting.ts) with bounds made for a loaded machine.
    hookTimeout: 30_000
  }
})
