// Shared helpers for Baton's browser tests. Import `test` and `expect` from here, not
// from '@playwright/test', so every test gets the checks below.
//
//   import { test, expect, gotoHydrated } from './fixtures';
//
// - Every test fails if the page logs a console error or throws an uncaught exception
//   (a panic in the wasm shows up as both). A test that expects some, e.g. the browser's
//   own "Failed to load resource: ... 401" line, lists patterns for them:
//     test.use({ allowedConsoleErrors: [/status of 401/] });
//   Uncaught page errors always fail the test. The browser's line for a 401 that the
//   fetch wrapper answers by design (an expired access token, which it refreshes; a
//   DPoP nonce it did not have yet, which it retries with) is not an error: an access
//   token can expire on the way, so no test can rule those out, and none needs to.
// - `gotoHydrated(page, path)` loads a page and waits until the wasm has hydrated it, so
//   clicks reach Leptos' event handlers rather than the inert server-rendered HTML.
import { test as base, expect, type Page, type Response } from '@playwright/test';

export { expect };

/** One console error or uncaught page error seen during a test. */
export type PageProblem = { kind: 'console' | 'pageerror'; text: string; url: string };

type Fixtures = {
  /** Console errors that the test expects; anything else fails it. */
  allowedConsoleErrors: RegExp[];
  /** Console errors and page errors collected so far (checked after the test). */
  pageProblems: PageProblem[];
};

/** The challenge of a 401 the wrapper answers itself: it refreshes, or retries with the nonce. */
const HANDLED_CHALLENGE = /error_description="the access token expired"|error="use_dpop_nonce"/;

export const test = base.extend<Fixtures>({
  allowedConsoleErrors: [[], { option: true }],

  pageProblems: [
    async ({ page, allowedConsoleErrors }, use, testInfo) => {
      const problems: PageProblem[] = [];
      // URL -> how many of its answers were 401s that the wrapper handles by design.
      const handled = new Map<string, number>();
      page.on('response', (response) => {
        const challenge = response.headers()['www-authenticate'] ?? '';
        if (response.status() === 401 && HANDLED_CHALLENGE.test(challenge)) {
          handled.set(response.url(), (handled.get(response.url()) ?? 0) + 1);
        }
      });
      page.on('console', (msg) => {
        if (msg.type() !== 'error') return;
        const text = msg.text();
        if (allowedConsoleErrors.some((re) => re.test(text))) return;
        problems.push({ kind: 'console', text, url: msg.location().url });
      });
      page.on('pageerror', (err) => {
        problems.push({ kind: 'pageerror', text: `${err.name}: ${err.message}`, url: page.url() });
      });
      await use(problems);
      const unexpected = problems.filter((p) => {
        const left = handled.get(p.url) ?? 0;
        if (p.kind !== 'console' || !/status of 401/.test(p.text) || left === 0) return true;
        handled.set(p.url, left - 1);
        return false;
      });
      problems.splice(0, problems.length, ...unexpected);
      if (problems.length > 0) {
        await testInfo.attach('page-problems.json', {
          body: JSON.stringify(problems, null, 2),
          contentType: 'application/json',
        });
      }
      expect(problems, 'console errors or uncaught page errors').toEqual([]);
    },
    { auto: true },
  ],
});

declare global {
  interface Window {
    /** Set to true by the wasm entry point once hydrate() has finished. */
    __baton_hydrated?: boolean;
    /** When hydration finished, in ms since navigation start. */
    __baton_hydrated_at?: number;
  }
}

/**
 * Waits until the wasm has hydrated the page: `hydrate()` in crates/frontend sets
 * `window.__baton_hydrated = true` once the page is interactive. Fails the test when that
 * does not happen (a release wasm that loads but never hydrates, a wasm that 404s, a
 * panic during hydration).
 */
export async function waitForHydration(page: Page, timeout = 15_000): Promise<void> {
  try {
    await page.waitForFunction(() => window.__baton_hydrated === true, null, { timeout });
  } catch (e) {
    throw new Error(`${page.url()} did not hydrate within ${timeout} ms (window.__baton_hydrated never became true)`, { cause: e });
  }
}

/** Loads `path`, waits for hydration (see `waitForHydration`), returns the page's response. */
export async function gotoHydrated(page: Page, path: string): Promise<Response> {
  const response = await page.goto(path);
  expect(response?.status(), `GET ${path}`).toBe(200);
  await waitForHydration(page);
  return response!;
}
