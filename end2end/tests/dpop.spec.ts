// DPoP (RFC 9449) in the browser: the app binds its session to a WebCrypto key that no
// script can read (Ed25519 in Chromium, ES256 where forced), kept in IndexedDB. A copy of
// the tokens in localStorage is worthless in another browser; the owner notices nothing.
import type { Page } from '@playwright/test';
import { test, expect, gotoHydrated } from './fixtures';
import {
  RefreshLog,
  SESSION_KEY,
  createNote,
  logIn,
  registerUser,
  storedSession,
  waitPastExpiry,
} from './session-helpers';

// Refused calls are logged by the browser as console errors; here they are the point.
test.use({ allowedConsoleErrors: [/status of (400|401)/] });

/** What IndexedDB holds under the session's key id: its algorithm, and whether the
 * private key could be exported (it must not). */
async function storedKey(page: Page, id: string) {
  return page.evaluate(async (id) => {
    const done = <T,>(r: IDBRequest<T>) =>
      new Promise<T>((ok, fail) => {
        r.onsuccess = () => ok(r.result);
        r.onerror = () => fail(r.error);
      });
    const open = indexedDB.open('baton.dpop', 1);
    open.onupgradeneeded = () => open.result.createObjectStore('keys');
    const db = await done(open);
    const entry = await done(db.transaction('keys').objectStore('keys').get(id));
    db.close();
    if (!entry) return null;
    return { alg: entry.alg as string, extractable: (entry.privateKey as CryptoKey).extractable };
  }, id);
}

/** Every API request of the page must carry a proof, and its token in the DPoP scheme
 * (but logout, which needs none, and the health check that fetches a nonce). */
function proofsOnEveryCall(page: Page): string[] {
  const problems: string[] = [];
  const exempt = ['/api/auth/logout', '/api/health'];
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (!url.pathname.startsWith('/api/') || exempt.includes(url.pathname)) return;
    const headers = request.headers();
    if (!headers['dpop']) problems.push(`${request.method()} ${url.pathname}: no DPoP proof`);
    const auth = headers['authorization'];
    if (auth && !auth.startsWith('DPoP ')) problems.push(`${url.pathname}: ${auth.split(' ')[0]}`);
  });
  return problems;
}

test('1. a copied session fails everywhere else while its owner keeps working', async ({
  page,
  browser,
}) => {
  const problems = proofsOnEveryCall(page);
  const username = await registerUser(page.request, 'dpop');
  await logIn(page, username);
  await createNote(page, 'mine', 'only mine');
  const stolen = (await storedSession(page))!;
  expect(stolen.dpop_key, 'the session names its key').toBeTruthy();
  const raw = JSON.stringify(stolen);

  // The thief: another browser with a copy of localStorage, but not the key.
  const thief = await browser.newContext();
  await thief.addInitScript(([key, value]) => localStorage.setItem(key, value), [SESSION_KEY, raw]);
  const thiefLog = new RefreshLog(thief);
  const thiefPage = await thief.newPage();
  await gotoHydrated(thiefPage, '/notes');
  await expect(thiefPage).toHaveURL(/\/login/);
  await thiefLog.settled();
  expect(thiefLog.unauthorized.map((u) => u.code)).toContain('invalid_dpop_proof');
  // By hand: the token as Bearer, in the DPoP scheme without a proof, and the refresh.
  const token = String(stolen.access_token);
  for (const authorization of [`Bearer ${token}`, `DPoP ${token}`]) {
    const r = await thief.request.get('/api/me', { headers: { authorization } });
    expect(r.status(), authorization.split(' ')[0]).toBe(401);
  }
  const refresh = await thief.request.post('/api/auth/refresh', {
    data: { refresh_token: stolen.refresh_token },
  });
  expect(refresh.status()).toBe(400);
  expect((await refresh.json()).code).toBe('invalid_dpop_proof');
  // After expiry, the thief's app (its copy put back by the init script) tries the
  // refresh itself: refused, and it gives up.
  await waitPastExpiry(page);
  const again = await thief.newPage();
  await again.goto('/notes');
  await expect(again).toHaveURL(/\/login/);
  await thiefLog.settled();
  expect(thiefLog.answers.every((a) => a.status !== 200), JSON.stringify(thiefLog.answers)).toBe(true);
  await thief.close();

  // The owner's pages work as before, across the expiry the thief waited out.
  await gotoHydrated(page, '/notes');
  await expect(page.getByRole('link', { name: 'mine' })).toBeVisible();
  await createNote(page, 'still mine', 'after the theft');
  expect(problems).toEqual([]);
});

test('2. the key survives a reload, is shared by two tabs, and logout deletes it', async ({
  page,
  context,
}) => {
  const problems = proofsOnEveryCall(page);
  const username = await registerUser(page.request, 'dpop');
  await logIn(page, username);
  const id = String((await storedSession(page))!.dpop_key);
  // Chromium has WebCrypto Ed25519: the key is one, and no script can export it.
  expect(await storedKey(page, id)).toEqual({ alg: 'EdDSA', extractable: false });
  await page.reload();
  await createNote(page, 'after reload', 'same key');
  await gotoHydrated(page, '/notes');
  const log = new RefreshLog(context);
  const tab = await context.newPage();
  const tabProblems = proofsOnEveryCall(tab);
  await gotoHydrated(tab, '/notes');
  await expect(tab.getByRole('link', { name: 'after reload' })).toBeVisible();
  // Past expiry, the second tab refreshes with the shared key, then both go on.
  await waitPastExpiry(page);
  await tab.reload();
  await expect(tab.getByRole('link', { name: 'after reload' })).toBeVisible();
  await gotoHydrated(page, '/notes');
  await expect.poll(() => log.answers.filter((a) => a.status === 200).length).toBeGreaterThan(0);
  await log.settled();
  expect(log.codes()).toEqual([]);
  await createNote(page, 'from the first tab', 'after the refresh');
  expect(String((await storedSession(tab))!.dpop_key)).toBe(id);

  await page.getByTestId('logout').click();
  await expect(page).toHaveURL(/\/login$/);
  await expect.poll(() => storedKey(page, id)).toBeNull();
  expect([...problems, ...tabProblems]).toEqual([]);
});

test('3. ES256 where the browser is told not to use Ed25519', async ({ page }) => {
  const problems = proofsOnEveryCall(page);
  const username = await registerUser(page.request, 'dpop');
  await gotoHydrated(page, '/login');
  await page.evaluate((key) => localStorage.setItem(`${key}.dpop-alg`, 'ES256'), SESSION_KEY);
  await logIn(page, username);
  const id = String((await storedSession(page))!.dpop_key);
  expect(await storedKey(page, id)).toEqual({ alg: 'ES256', extractable: false });
  await createNote(page, 'p-256', 'signed with ECDSA');
  await waitPastExpiry(page);
  await gotoHydrated(page, '/notes');
  await expect(page.getByRole('link', { name: 'p-256' })).toBeVisible();
  expect(problems).toEqual([]);
});
