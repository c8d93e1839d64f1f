import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: 'forks',
    // Builds the native addon first where missing or stale (scripts/ensure-native.mjs).
    globalSetup: ['test/native/global-setup.ts'],
  },
});
