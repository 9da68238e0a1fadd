import { defineConfig } from 'vitest/config';

// One run for the client's unit tests, the build checks and the browser
// tests; the global setup builds `ledger` and starts the servers they use.
export default defineConfig({
  // The client is tested from its TypeScript sources (its package.json "@interactionledger/source" condition).
  resolve: { conditions: ['@interactionledger/source'] },
  test: {
    include: ['client/test/**/*.test.ts', 'demo/test/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    environment: 'node',
    testTimeout: 30_000,
    hookTimeout: 180_000,
    fileParallelism: false,
  },
});
