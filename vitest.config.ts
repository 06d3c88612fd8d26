import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['tests/unit/**/*.test.ts'],
    environment: 'node',
    // Vitest's default is one worker less than the cores: one worker on CI's 2 cores. Most network
    // tests spend their time waiting on timers and peers, so two workers halve the suite (395 → 208 s).
    maxWorkers: 2,
    testTimeout: 30_000,
    // Set-up waits for states (tests/unit/waiting.ts) with bounds made for a loaded machine.
    hookTimeout: 30_000
  }
})
