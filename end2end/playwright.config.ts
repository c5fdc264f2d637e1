// Playwright runs Baton's browser tests in Debian's Chromium against the RELEASE server
// (a release wasm can build cleanly and still fail to hydrate, so that is what we test).
//
//   cargo leptos build --release        # from the repo root, builds target/release/baton-server
//   cd end2end && npx playwright test   # starts that binary on port 3100 and runs tests/
//
// Environment knobs (all optional):
//   BATON_E2E_PORT        port for the server under test (default 3100, so it does not
//                         collide with `cargo leptos watch` on 3000)
//   BATON_E2E_ACCESS_TTL  access-token lifetime in seconds given to the server (default 4)
//   BATON_E2E_SERVER      server binary, relative to the repo root
//                         (default ./target/release/baton-server)
//   CHROMIUM_PATH         browser executable (default /usr/bin/chromium)
//   BATON_E2E_BASE_URL    test a server that is already running instead, e.g. the one
//                         `scripts/dev` serves: BATON_E2E_BASE_URL=http://127.0.0.1:3000
//                         (tests that rely on the short access-token lifetime then fail)
import { defineConfig } from '@playwright/test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Port of the server under test. */
export const PORT = Number(process.env.BATON_E2E_PORT || 3100);

/**
 * Access-token lifetime (seconds) of the server under test: short, so tests can watch
 * an access token expire and the app refresh it. The one place to change it.
 */
export const ACCESS_TTL_SECONDS = Number(process.env.BATON_E2E_ACCESS_TTL || 4);

/** A server that is already running; when unset, Playwright starts the release build. */
const externalBaseUrl = process.env.BATON_E2E_BASE_URL?.replace(/\/+$/, '');

export const BASE_URL = externalBaseUrl || `http://127.0.0.1:${PORT}`;

/**
 * A second server (on the next port, its own database) that allows one refresh per
 * address every 20 s, and gives access tokens 12 s: its 429 `Retry-After` is real.
 * Not started when testing an external server.
 */
export const THROTTLED_BASE_URL = externalBaseUrl ? undefined : `http://127.0.0.1:${PORT + 1}`;

const repoRoot = path.resolve(__dirname, '..');

// A fresh data directory per run (the server keeps its SQLite database and development
// keys there). Playwright evaluates this file again in every worker; the environment
// variable makes them all agree on the runner's directory. tests/global-teardown.ts
// deletes it.
process.env.BATON_E2E_DATA_DIR ||= fs.mkdtempSync(path.join(os.tmpdir(), 'baton-e2e-'));
const dataDir = process.env.BATON_E2E_DATA_DIR;

export default defineConfig({
  testDir: './tests',
  globalTeardown: './tests/global-teardown.ts',
  timeout: 30_000,
  expect: { timeout: 5_000 },
  fullyParallel: false,
  forbidOnly: !!process.env.CI,
  retries: 0,
  workers: 2,
  // 'list' prints one line per test and ends with Playwright's "N passed" summary;
  // summary-reporter.ts then prints the same counts as one plain "N passed, N failed"
  // line, the format CI reads, so that stays the last line of `scripts/test`.
  reporter: [['list'], ['./summary-reporter.ts']],
  use: {
    baseURL: BASE_URL,
    headless: true,
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
      // This machine has no general internet: without the networking flags Chromium
      // keeps trying to reach Google's services. --no-sandbox because tests run as root.
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic',
      ],
    },
  },
  projects: [
    { name: 'chromium', use: { browserName: 'chromium' }, testIgnore: /outage\.spec\.ts/ },
    // Locks the server's database: runs alone, once everything else has finished.
    {
      name: 'outage',
      use: { browserName: 'chromium' },
      testMatch: /outage\.spec\.ts/,
      dependencies: ['chromium'],
    },
  ],
  webServer: externalBaseUrl
    ? undefined
    : [
        server(PORT, dataDir, {
          BATON_ACCESS_TTL: String(ACCESS_TTL_SECONDS),
          // Every test logs in from 127.0.0.1: the per-address limits (30 logins and
          // 150 refreshes per 5 minutes) would throttle the suite. The limits
          // themselves are tested in crates/server/tests/api/hardening.rs.
          BATON_LOGIN_LIMIT_PER_IP: '10000',
          BATON_REFRESH_LIMIT_PER_IP: '100000',
        }),
        server(PORT + 1, path.join(dataDir, 'throttled'), {
          BATON_ACCESS_TTL: '12',
          BATON_REFRESH_LIMIT_PER_IP: '1',
          BATON_RATE_LIMIT_WINDOW: '20',
        }),
      ],
});

/** The release server on `port`, keeping its data in `dir`, with `env` besides. */
function server(port: number, dir: string, env: Record<string, string>) {
  return {
    command: process.env.BATON_E2E_SERVER || './target/release/baton-server',
    cwd: repoRoot, // the server finds target/site relative to it
    url: `http://127.0.0.1:${port}/api/health`,
    reuseExistingServer: false,
    timeout: 30_000,
    stdout: 'ignore' as const,
    stderr: 'pipe' as const,
    env: {
      BATON_DATA_DIR: dir,
      BATON_ENV: 'development',
      LEPTOS_SITE_ADDR: `127.0.0.1:${port}`,
      LEPTOS_SITE_ROOT: 'target/site',
      LEPTOS_SITE_PKG_DIR: 'pkg',
      LEPTOS_OUTPUT_NAME: 'baton',
      LEPTOS_ENV: 'PROD',
      RUST_LOG: 'info',
      ...env,
    },
  };
}
