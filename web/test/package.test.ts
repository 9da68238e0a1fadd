// The client's published form (`npm pack` emits client/dist with
// tsc -p tsconfig.build.json): its declarations must type-check in a
// project that checks libraries (skipLibCheck false). An inferred return
// type that holds TanStack's DataTag was written out with its unique
// symbols (dataTagSymbol), which the .d.ts neither declares nor imports.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { expect, it } from 'vitest';

const web = resolve(import.meta.dirname, '..');
const tsc = join(web, 'node_modules/typescript/bin/tsc');

function run(args: string[]): string {
  try {
    execFileSync(process.execPath, [tsc, ...args], { cwd: web, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return '';
  } catch (err) {
    return String((err as { stdout?: string }).stdout ?? err);
  }
}

it('the published declarations type-check with skipLibCheck off', () => {
  // Under node_modules, so the declarations resolve @tanstack/* and react as a consumer's would.
  const out = mkdtempSync(join(web, 'node_modules/.ledger-decl-'));
  try {
    expect(run(['-p', 'client/tsconfig.build.json', '--outDir', out, '--emitDeclarationOnly'])).toBe('');
    const check = ['--noEmit', '--skipLibCheck', 'false', '--strict', '--module', 'ESNext', '--moduleResolution', 'Bundler',
      '--target', 'ES2022', '--lib', 'ES2022,DOM', '--types', 'node', join(out, 'index.d.ts'), join(out, 'react.d.ts')];
    expect(run(check)).toBe('');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}, 120_000);
