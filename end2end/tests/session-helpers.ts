// Helpers for the session tests: fresh users, logging in through the UI,
// counting refresh requests, freezing the page's timers, and taking the database away.
import type { APIRequestContext, BrowserContext, Page } from '@playwright/test';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { ACCESS_TTL_SECONDS } from '../playwright.config';
import { expect, gotoHydrated } from './fixtures';

export { ACCESS_TTL_SECONDS };

/** Access-token lifetime of the server under test, in milliseconds. */
export const ACCESS_TTL_MS = ACCESS_TTL_SECONDS * 1000;

export const PASSWORD = 'correct horse battery';

/** The localStorage key baton-client keeps the session under. */
export const SESSION_KEY = 'baton.session.v1';

let counter = 0;

/** A username no other test (or earlier run against the same server) uses. */
export function uniqueUsername(prefix = 'u'): string {
  counter += 1;
  const stamp = Date.now().toString(36);
  const random = Math.random().toString(36).slice(2, 6);
  return `${prefix}${stamp}${random}${counter}`.slice(0, 32);
}

/** Registers a user through the API (quicker than the form; test 1 uses the form). */
export async function registerUser(request: APIRequestContext, prefix = 'u'): Promise<string> {
  const username = uniqueUsername(prefix);
  const response = await request.post('/api/auth/register', {
    data: { username, password: PASSWORD },
  });
  expect(response.status(), 'register').toBe(201);
  return username;
}

/** Logs in through the login form and waits for the notes page. */
export async function logIn(
  page: Page,
  username: string,
  opts: { device?: string; path?: string; expectPath?: RegExp } = {},
): Promise<void> {
  await gotoHydrated(page, opts.path ?? '/login');
  await fillLogin(page, username, PASSWORD, opts.device);
  await expect(page).toHaveURL(opts.expectPath ?? /\/notes$/);
}

/** Fills and submits the login form on the current page. */
export async function fillLogin(
  page: Page,
  username: string,
  password: string,
  device?: string,
): Promise<void> {
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password', { exact: true }).fill(password);
  if (device) await page.getByLabel('Device name').fill(device);
  await page.getByRole('button', { name: 'Log in' }).click();
}

/** Every `/api/auth/refresh` exchange seen in a page or a whole browser context. */
export class RefreshLog {
  /** Every refresh request: the token it presented, which page sent it (numbered in order
   * of first appearance) and when (ms since the log started). */
  sent: { token: string; page: number; atMs: number }[] = [];
  private readonly pages = new Map<Page, number>();
  private readonly started = Date.now();
  /** Status and `code` of every refresh answer (code only for errors). */
  answers: { status: number; code?: string }[] = [];
  /** Every API answer with status 401, by path and code. */
  unauthorized: { path: string; code?: string }[] = [];
  /** Answers whose body is still being read: an answer is recorded once it is read, so
   * a page can move on (and a test look) before; see `settled`. */
  private readonly reading = new Set<Promise<void>>();

  constructor(target: Page | BrowserContext) {
    target.on('request', (request) => {
      if (new URL(request.url()).pathname !== '/api/auth/refresh') return;
      const page = request.frame().page();
      if (!this.pages.has(page)) this.pages.set(page, this.pages.size + 1);
      this.sent.push({
        token: String(request.postDataJSON()?.refresh_token),
        page: this.pages.get(page)!,
        atMs: Date.now() - this.started,
      });
    });
    target.on('response', (response) => {
      const path = new URL(response.url()).pathname;
      if (!path.startsWith('/api/')) return;
      const read = (async () => {
        let code: string | undefined;
        if (response.status() >= 400) {
          code = await response
            .json()
            .then((body: { code?: string }) => body.code)
            .catch(() => undefined);
        }
        if (path === '/api/auth/refresh') this.answers.push({ status: response.status(), code });
        if (response.status() === 401) this.unauthorized.push({ path, code });
      })();
      this.reading.add(read);
      void read.finally(() => this.reading.delete(read));
    });
  }

  /** Resolves once every answer the browser has received so far is recorded. Await it
   * before looking at `answers`, `unauthorized` or `codes()`. */
  async settled(): Promise<this> {
    while (this.reading.size > 0) await Promise.all([...this.reading]);
    return this;
  }

  get requests(): number {
    return this.sent.length;
  }

  /** The refresh token each request presented. */
  get presented(): string[] {
    return this.sent.map((s) => s.token);
  }

  /**
   * True if no refresh token was presented twice. The server forgives a just-rotated
   * token for a few seconds (two tabs racing), but the client must not rely on that.
   */
  noTokenReused(): boolean {
    return new Set(this.presented).size === this.sent.length;
  }

  /** One line per refresh request: who sent it, when, and which token (by first use). */
  history(): string {
    const ids = new Map<string, number>();
    return this.sent
      .map(({ token, page, atMs }) => {
        if (!ids.has(token)) ids.set(token, ids.size + 1);
        return `page ${page} at ${atMs} ms: token ${ids.get(token)}`;
      })
      .join('; ');
  }

  codes(): string[] {
    return this.answers.flatMap((a) => (a.code ? [a.code] : []));
  }
}

/**
 * Stops the page's timers (and its clock) from here on, so the app's proactive refresh
 * cannot run: a call after expiry then meets 401 token_expired, the backstop path.
 * Needs `page.clock.install()` before the page was loaded.
 */
export async function freezeTimers(page: Page): Promise<void> {
  // The installed clock keeps running until paused, so aim a little ahead of the
  // page's time; on a busy machine the aim may fall behind, then aim again.
  for (let ahead = 50; ; ahead *= 2) {
    const now = await page.evaluate(() => Date.now());
    try {
      await page.clock.pauseAt(now + ahead);
      return;
    } catch (e) {
      if (!String(e).includes('to the past') || ahead > 2_000) throw e;
    }
  }
}

/** Waits (in real time) until an access token issued now has certainly expired. */
export async function waitPastExpiry(page: Page, extraMs = 1_000): Promise<void> {
  await page.waitForTimeout(ACCESS_TTL_MS + extraMs);
}

/** Creates a note through the editor and returns its id (the page is then on it). */
export async function createNote(page: Page, title: string, body: string): Promise<string> {
  await page.getByRole('link', { name: 'New note' }).click();
  await expect(page).toHaveURL(/\/notes\/new$/);
  // Only the editor: nothing of the list page stays behind.
  await expect(page.locator('main h1')).toHaveText(['New note']);
  await page.getByLabel('Title').fill(title);
  await page.getByLabel('Body').fill(body);
  await page.getByTestId('save').click();
  await expect(page).toHaveURL(/\/notes\/[0-9a-f-]{36}$/);
  await expect(page.getByTestId('editor-status')).toContainText('Saved');
  return page.url().split('/').pop()!;
}

/** The session stored by baton-client in this page's origin, if any. */
export async function storedSession(page: Page): Promise<Record<string, unknown> | null> {
  return page.evaluate((key) => {
    const raw = localStorage.getItem(key);
    return raw ? JSON.parse(raw) : null;
  }, SESSION_KEY);
}

/** Holds SQLite's write lock until its standard input closes (see `lockDatabase`). */
const DATABASE_LOCKER = `
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
db.execute("ROLLBACK")
`;

/**
 * Takes the write lock of the test server's SQLite database from another process, as a
 * stuck writer or a full disk would: every write the server tries then waits out its busy
 * timeout and is answered 503 `unavailable`, while reads go on (WAL). A real outage of the
 * database behind the real server, not a stubbed response. Resolves once the lock is
 * held, with the function that releases it.
 */
export async function lockDatabase(): Promise<() => Promise<void>> {
  const dataDir = process.env.BATON_E2E_DATA_DIR;
  if (!dataDir) throw new Error('BATON_E2E_DATA_DIR is not set (playwright.config.ts sets it)');
  const locker = spawn('python3', ['-c', DATABASE_LOCKER, path.join(dataDir, 'baton.db')], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = once(locker, 'exit');
  let locked = false;
  await Promise.race([
    once(locker.stdout, 'data').then(() => {
      locked = true;
    }),
    // Only an exit before the lock counts as a failure: the release ends it too, and that
    // must not leave a rejected promise behind.
    exited.then(([code]) => {
      if (!locked) throw new Error(`the database locker exited with ${code} before taking the lock`);
    }),
    once(locker, 'error').then(([err]) => {
      throw err;
    }),
  ]);
  return async () => {
    locker.stdin.end();
    await exited;
  };
}

/**
 * Makes every page of `context` see other tabs' writes of the stored session `lagMs`
 * late, in `localStorage.getItem` and in the `storage` event alike, while its own writes
 * show at once. Chromium keeps a copy of `localStorage` in each renderer process and
 * brings it up to date asynchronously, so on a busy machine a tab can be granted the
 * refresh lock before the tokens the previous holder stored have reached it; this makes
 * that lag long and certain instead of short and rare.
 */
export async function lagStoredSession(context: BrowserContext, lagMs: number): Promise<void> {
  await context.addInitScript(
    ([key, lag]) => {
      const storage = window.localStorage;
      const get = Storage.prototype.getItem;
      const set = Storage.prototype.setItem;
      const remove = Storage.prototype.removeItem;
      let shown = get.call(storage, key);
      let latest = shown;
      const arriving: { value: string | null; at: number }[] = [];
      const catchUp = () => {
        const value = get.call(storage, key);
        if (value !== latest) {
          latest = value;
          arriving.push({ value, at: performance.now() + lag });
        }
        while (arriving.length > 0 && arriving[0].at <= performance.now()) {
          const old = shown;
          shown = arriving.shift()!.value;
          if (shown !== old) {
            window.dispatchEvent(
              new StorageEvent('storage', { key, oldValue: old, newValue: shown, storageArea: storage }),
            );
          }
        }
      };
      setInterval(catchUp, 5);
      // The real event comes at once; the late copy above stands in for it.
      window.addEventListener(
        'storage',
        (event) => {
          if (event.isTrusted && (event.key === key || event.key === null)) event.stopImmediatePropagation();
        },
        true,
      );
      Storage.prototype.getItem = function (name: string) {
        if (this !== storage || name !== key) return get.call(this, name);
        catchUp();
        return shown;
      };
      // This tab's own writes are seen by itself at once.
      const own = (value: string | null) => {
        shown = value;
        latest = value;
        arriving.length = 0;
      };
      Storage.prototype.setItem = function (name: string, value: string) {
        set.call(this, name, value);
        if (this === storage && name === key) own(String(value));
      };
      Storage.prototype.removeItem = function (name: string) {
        remove.call(this, name);
        if (this === storage && name === key) own(null);
      };
    },
    [SESSION_KEY, lagMs] as const,
  );
}

/** Makes `target` (a page, or every page of a context) a browser without the Web Locks
 * API, so the client falls back to its localStorage lease. Before the first navigation. */
export async function withoutWebLocks(target: { addInitScript: Page['addInitScript'] }): Promise<void> {
  await target.addInitScript(() => {
    Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined });
  });
}
