// Deletes the run's temporary data directory made by playwright.config.ts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export default async function globalTeardown(): Promise<void> {
  const dir = process.env.BATON_E2E_DATA_DIR;
  // Only ever delete a directory that the config made under the temp dir.
  if (dir && path.dirname(dir) === os.tmpdir() && path.basename(dir).startsWith('baton-e2e-')) {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
