import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// The output is committed (web/demo/dist) and embedded in the Go binary,
// so it must be reproducible: content-hashed names, no timestamps, no
// source maps with machine paths.
export default defineConfig({
  plugins: [react()],
  base: '/',
  // Build the client from its TypeScript sources (its package.json "@interactionledger/source" condition).
  resolve: { conditions: ['@interactionledger/source', 'module', 'browser', 'production', 'default'] },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
  },
});
