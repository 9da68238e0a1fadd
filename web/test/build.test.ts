// The committed generated files must be what the sources generate: the
// OpenAPI types (client/src/schema.ts) and the demo's build
// (demo/dist, embedded in the Go binary). A change to either source
// without regenerating fails here.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain ES module script without declarations.
import { render } from '../client/scripts/gen-schema.mjs';

const web = resolve(import.meta.dirname, '..');

function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => statSync(join(dir, f)).isFile())
    .sort();
}

describe('generated files are current', () => {
  it('client/src/schema.ts is what openapi-typescript makes of openapi.json', async () => {
    const committed = readFileSync(join(web, 'client/src/schema.ts'), 'utf8');
    const fresh: string = await render();
    expect(fresh === committed, 'schema.ts is stale: run `npm run gen` in web/ and commit it').toBe(true);
  });

  it('demo/dist is byte for byte what building the demo produces', () => {
    const out = mkdtempSync(join(tmpdir(), 'ledger-demo-build-'));
    try {
      // In a child process, as `npm run build` runs it: under Vitest,
      // NODE_ENV is "test", which would build React's development bundle.
      execFileSync(process.execPath, [join(web, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'warn', '--outDir', out, '--emptyOutDir'], {
        cwd: join(web, 'demo'),
        env: { ...process.env, NODE_ENV: 'production' },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      const committedDir = join(web, 'demo/dist');
      expect(files(out), 'demo/dist has other files than a fresh build: run `npm run build` in web/ and commit demo/dist').toEqual(files(committedDir));
      for (const f of files(out)) {
        const same = readFileSync(join(out, f)).equals(readFileSync(join(committedDir, f)));
        expect(same, `${relative(web, join(committedDir, f))} differs from a fresh build: run \`npm run build\` in web/ and commit demo/dist`).toBe(true);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);
});
