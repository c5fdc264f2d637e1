// The browser app keeps a user logged in across access-token expiry, in
// several tabs, through server trouble, and hands them back their unsaved text after a
// forced re-login. The server runs with a short access-token lifetime
// (ACCESS_TTL_SECONDS in playwright.config.ts).
import { test, expect, gotoHydrated } from './fixtures';
import {
  ACCESS_TTL_MS,
  PASSWORD,
  RefreshLog,
  SESSION_KEY,
  createNote,
  fillLogin,
  freezeTimers,
  lagStoredSession,
  logIn,
  registerUser,
  storedSession,
  uniqueUsername,
  waitPastExpiry,
  withoutWebLocks,
} from './session-helpers';

// The browser logs every 401 answer ("Failed to load resource: ... status of 401")
// as a console error; here they are expected (expired tokens, wrong passwords).
test.use({ allowedConsoleErrors: [/status of (401|403|409)/] });

test('1. register, log out, wrong password, log in, log out', async ({ page }) => {
  const username = uniqueUsername('reg');

  await gotoHydrated(page, '/register');
  // The input rules run before anything is sent, and their messages sit by the field.
  await page.getByLabel('Username').fill('ab');
  await page.getByLabel('Password').fill('short');
  await page.getByRole('button', { name: 'Register' }).click();
  await expect(page.locator('#field-username-error')).toHaveText('must be 3-32 characters');
  await expect(page.locator('#field-password-error')).toHaveText('must be 8-1024 characters');

  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Register' }).click();
  await expect(page).toHaveURL(/\/notes$/);
  await expect(page.getByTestId('no-notes')).toBeVisible();
  await expect(page.getByTestId('session-user')).toHaveText(username);

  await page.getByTestId('logout').click();
  await expect(page).toHaveURL(/\/login$/);
  expect(await storedSession(page)).toBeNull();

  // A protected page now sends the visitor to log in, remembering where they were.
  await page.goto('/devices');
  await expect(page).toHaveURL(/\/login\?next=\/devices$/);

  // The server's field errors are shown by the field: the name is taken.
  await gotoHydrated(page, '/register');
  await page.getByLabel('Username').fill(username.toUpperCase());
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Register' }).click();
  await expect(page.locator('#field-username-error')).toHaveText('this username is taken');

  // Wrong password: the server's message, in the form's alert area.
  await gotoHydrated(page, '/login?next=/devices');
  await fillLogin(page, username, 'not the password');
  await expect(page.getByTestId('form-error')).toHaveText('wrong username or password');
  await expect(page).toHaveURL(/\/login\?next=\/devices$/);

  // The right one: back to where they were going.
  await fillLogin(page, username, PASSWORD);
  await expect(page).toHaveURL(/\/devices$/);
  await expect(page.getByTestId('this-device')).toBeVisible();

  await page.getByTestId('logout').click();
  await expect(page).toHaveURL(/\/login$/);

  // `next` never leads off the site.
  await gotoHydrated(page, '/login?next=//evil.example/x');
  await fillLogin(page, username, PASSWORD);
  await expect(page).toHaveURL(/127\.0\.0\.1:\d+\/notes$/);
});

test('2. a save after the access token expired refreshes once and succeeds', async ({
  page,
  request,
}) => {
  await page.clock.install();
  const username = await registerUser(request, 'edit');
  await logIn(page, username);
  // From here on no timer runs, so the proactive refresh cannot either.
  await freezeTimers(page);
  const log = new RefreshLog(page);
  const id = await createNote(page, 'Groceries', 'milk');
  // A title that is markup shows as text (nothing runs: a dialog would fail the test).
  page.on('dialog', (dialog) => {
    throw new Error(`unexpected dialog: ${dialog.message()}`);
  });
  await page.getByLabel('Body').fill('milk, eggs');
  await page.getByLabel('Title').fill('<img src=x onerror=alert(1)>');
  // The user keeps typing past the access token's lifetime.
  await waitPastExpiry(page);
  await page.getByLabel('Body').fill('milk, eggs, bread');
  await page.getByTestId('save').click();
  await expect(page.getByTestId('editor-status')).toContainText('Saved');

  expect(log.requests, 'refresh requests').toBe(1);
  await log.settled();
  expect(log.answers).toEqual([{ status: 200 }]);
  expect(log.noTokenReused(), log.history()).toBe(true);
  // It went the backstop way: the save met 401 token_expired, then was retried.
  expect(log.unauthorized).toEqual([{ path: `/api/notes/${id}`, code: 'token_expired' }]);

  await page.clock.resume();
  await gotoHydrated(page, '/notes');
  await expect(page.getByRole('link', { name: '<img src=x onerror=alert(1)>' })).toBeVisible();
  await expect(page.locator('.note-list img')).toHaveCount(0);
  await page.getByRole('link', { name: '<img src=x onerror=alert(1)>' }).click();
  await expect(page.getByLabel('Body')).toHaveValue('milk, eggs, bread');
  await expect(page.getByTestId('draft-restored')).toHaveCount(0);
});

test('3. ten concurrent calls after expiry share one refresh', async ({ page, request }) => {
  await page.clock.install();
  const username = await registerUser(request, 'burst');
  await logIn(page, username);
  const log = new RefreshLog(page);
  let meOk = 0;
  page.on('response', (r) => {
    if (new URL(r.url()).pathname === '/api/me' && r.status() === 200) meOk += 1;
  });

  await freezeTimers(page);
  await waitPastExpiry(page);
  await page.getByTestId('session-indicator').locator('summary').click();
  await page.getByTestId('burst').click();
  await expect(page.getByTestId('burst-result')).toHaveText('10 of 10 calls succeeded');

  expect(log.requests, 'refresh requests').toBe(1);
  await log.settled();
  expect(log.answers).toEqual([{ status: 200 }]);
  expect(meOk).toBe(10);
  // All ten were sent with the expired token; every one was answered token_expired.
  expect(log.unauthorized.length).toBe(10);
  expect(new Set(log.unauthorized.map((u) => u.code))).toEqual(new Set(['token_expired']));
  await expect(page.getByTestId('refresh-count')).toHaveText('1');
});

const tabVariants = [
  { name: 'Web Locks', webLocks: true, lagMs: 0 },
  // Another tab's write reaching this one late (Chromium, busy machine), made certain.
  { name: 'Web Locks, storage 300 ms behind between tabs', webLocks: true, lagMs: 300 },
  { name: 'the localStorage lease (no Web Locks)', webLocks: false, lagMs: 0 },
];

for (const { name, webLocks, lagMs } of tabVariants) {
  test(`4. two tabs stay logged in across expiries; logging out in one logs out both (${name})`, async ({
    page,
    context,
  }) => {
    test.setTimeout(60_000);
    if (!webLocks) {
      // A browser without the Web Locks API: the client falls back to a lease.
      await withoutWebLocks(context);
    }
    if (lagMs > 0) await lagStoredSession(context, lagMs);
    const username = await registerUser(context.request, 'tabs');
    const log = new RefreshLog(context);
    await logIn(page, username);
    const second = await context.newPage();
    await gotoHydrated(second, '/notes');
    await expect(second.getByTestId('no-notes')).toBeVisible();
    expect(await second.evaluate(() => 'locks' in navigator && !!navigator.locks)).toBe(
      webLocks,
    );

    // Several access-token lifetimes, both tabs open and refreshing ahead of expiry.
    const expiries = 3;
    await page.waitForTimeout(expiries * ACCESS_TTL_MS + 1_000);

    for (const tab of [page, second]) {
      await expect(tab).toHaveURL(/\/notes$/);
      await tab.getByTestId('session-indicator').locator('summary').click();
      await tab.getByTestId('burst').click();
      await expect(tab.getByTestId('burst-result')).toHaveText('10 of 10 calls succeeded');
    }
    await log.settled();
    expect(log.codes(), 'refresh errors').toEqual([]);
    expect(log.answers.every((a) => a.status === 200)).toBe(true);
    // The tabs took turns: every refresh presented a token no tab had presented before,
    // so none leaned on the server's grace window for a just-rotated token.
    expect(log.noTokenReused(), log.history()).toBe(true);
    // About one refresh per access-token lifetime (each runs a quarter lifetime early),
    // not one per tab, nor a storm.
    expect(log.requests).toBeGreaterThanOrEqual(expiries);
    expect(log.requests).toBeLessThanOrEqual(2 * expiries + 1);
    // Both tabs see the same, current session.
    await expect
      .poll(async () => {
        const [a, b] = [await storedSession(page), await storedSession(second)];
        return a !== null && a.refresh_token === b?.refresh_token;
      })
      .toBe(true);

    await page.getByTestId('logout').click();
    await expect(page).toHaveURL(/\/login$/);
    await expect(second).toHaveURL(/\/login/);
    // Without Web Locks a refresh in the other tab can finish just after the logout;
    // the tabs then agree within moments that the session is over.
    for (const tab of [page, second]) {
      await expect
        .poll(() => tab.evaluate((key) => localStorage.getItem(key), SESSION_KEY))
        .toBeNull();
    }
    await expect(page).toHaveURL(/\/login$/);
  });
}

test('6. a revoked session sends the user to log in, and their draft survives', async ({
  page,
  browser,
  request,
}) => {
  await page.clock.install();
  const username = await registerUser(request, 'revoke');
  await logIn(page, username, { device: 'Laptop A' });
  // No proactive refresh on the laptop, so that its next action is the save below
  // (a refresh would meet the revocation just the same, only sooner).
  await freezeTimers(page);
  const id = await createNote(page, 'Essay', 'first paragraph');
  await page.getByLabel('Body').fill('first paragraph\nsecond paragraph, not saved yet');

  // Another browser, same user: revoke the laptop from the devices page.
  const other = await browser.newContext();
  try {
    const phone = await other.newPage();
    await logIn(phone, username, { device: 'Phone B' });
    await phone.getByRole('link', { name: 'Devices' }).click();
    const laptop = phone.getByTestId('device').filter({ hasText: 'Laptop A' });
    await expect(phone.getByTestId('device').filter({ hasText: 'Phone B' })).toContainText(
      'This device',
    );
    await laptop.getByRole('button', { name: 'Revoke Laptop A' }).click();
    await expect(laptop).toHaveCount(0);
  } finally {
    await other.close();
  }

  // The laptop's next action is refused: off to log in, with the way back.
  await page.getByTestId('save').click();
  await expect(page).toHaveURL(new RegExp(`/login\\?next=/notes/${id}$`));
  await expect(page.getByTestId('login-notice')).toContainText('session has ended');
  expect(await storedSession(page)).toBeNull();

  await fillLogin(page, username, PASSWORD, 'Laptop A');
  await expect(page).toHaveURL(new RegExp(`/notes/${id}$`));
  await expect(page.getByLabel('Body')).toHaveValue(
    'first paragraph\nsecond paragraph, not saved yet',
  );
  await expect(page.getByTestId('draft-restored')).toBeVisible();
  await page.getByTestId('save').click();
  await expect(page.getByTestId('editor-status')).toContainText('Saved');
  await expect(page.getByTestId('draft-restored')).toHaveCount(0);
});

test('a hidden tab leaves refreshing alone, and refreshes first when it becomes visible', async ({
  page,
  request,
}) => {
  const username = await registerUser(request, 'hidden');
  await logIn(page, username);
  // Let the test say whether the page is visible (as a browser does for a background
  // tab or a sleeping laptop).
  await page.evaluate(() => {
    const w = window as unknown as { __visibility: string };
    w.__visibility = 'hidden';
    Object.defineProperty(Document.prototype, 'visibilityState', {
      configurable: true,
      get: () => w.__visibility,
    });
    document.dispatchEvent(new Event('visibilitychange'));
  });
  const log = new RefreshLog(page);
  await waitPastExpiry(page);
  expect(log.requests, 'no refresh while hidden').toBe(0);

  await page.evaluate(() => {
    (window as unknown as { __visibility: string }).__visibility = 'visible';
    document.dispatchEvent(new Event('visibilitychange'));
  });
  await expect.poll(() => log.requests).toBe(1);
  await expect(page.getByTestId('refresh-count')).toHaveText('1');
  // The refresh came first: the page's next calls never meet an expired token.
  await page.getByTestId('session-indicator').locator('summary').click();
  await page.getByTestId('burst').click();
  await expect(page.getByTestId('burst-result')).toHaveText('10 of 10 calls succeeded');
  await log.settled();
  expect(log.unauthorized).toEqual([]);
});

test('account: password change ends the other sessions; devices: log out everywhere', async ({
  page,
  browser,
  request,
}) => {
  const username = await registerUser(request, 'acct');
  await logIn(page, username, { device: 'Desk' });
  const other = await browser.newContext();
  try {
    const tablet = await other.newPage();
    await logIn(tablet, username, { device: 'Tablet' });

    await page.getByRole('link', { name: 'Account' }).click();
    await expect(page.getByTestId('account-username')).toHaveText(username);
    const current = page.getByLabel('Current password');
    const fresh = page.getByLabel('New password');
    const submit = page.getByRole('button', { name: 'Change password' });
    await current.fill('not the password');
    await fresh.fill('short');
    await submit.click();
    await expect(page.locator('#field-new_password-error')).toHaveText('must be 8-1024 characters');
    await fresh.fill('a brand new passphrase');
    await submit.click();
    await expect(page.locator('#field-current_password-error')).toHaveText(
      'the current password is wrong',
    );
    await current.fill(PASSWORD);
    await submit.click();
    await expect(page.getByTestId('account-status')).toContainText('Password changed');

    // The tablet's session ended with the change: its next call sends it to log in.
    await tablet.getByTestId('session-indicator').locator('summary').click();
    await tablet.getByTestId('burst').click();
    await expect(tablet).toHaveURL(/\/login\?next=\/notes$/);
  } finally {
    await other.close();
  }

  await page.getByRole('link', { name: 'Devices' }).click();
  await expect(page.getByTestId('device')).toHaveCount(1);
  await page.getByTestId('logout-all').click();
  await page.getByRole('button', { name: 'Really log out everywhere?' }).click();
  await expect(page).toHaveURL(/\/login$/);
  expect(await storedSession(page)).toBeNull();
});

test('corrupt or old stored sessions are discarded without breaking the page', async ({
  page,
}) => {
  await gotoHydrated(page, '/login');
  for (const raw of ['{not json', JSON.stringify({ v: 0, token: 'x' })]) {
    await page.evaluate(([key, value]) => localStorage.setItem(key, value), [SESSION_KEY, raw]);
    await page.goto('/notes');
    await expect(page).toHaveURL(/\/login\?next=\/notes$/);
    expect(await page.evaluate((key) => localStorage.getItem(key), SESSION_KEY)).toBeNull();
  }
});

test('time to interactive of the notes page (printed, not asserted)', async ({
  page,
  request,
}, testInfo) => {
  const username = await registerUser(request, 'tti');
  await logIn(page, username);
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    await page.goto('/notes');
    await page.waitForFunction(() => window.__baton_hydrated === true);
    samples.push(
      await page.evaluate(() => (window as unknown as { __baton_hydrated_at: number }).__baton_hydrated_at),
    );
  }
  samples.sort((x, y) => x - y);
  const median = samples[Math.floor(samples.length / 2)];
  const line = `notes page time to interactive (navigation start → hydrated), loopback: median ${median.toFixed(0)} ms of [${samples.map((s) => s.toFixed(0)).join(', ')}]`;
  console.log(line);
  testInfo.annotations.push({ type: 'tti', description: line });
});
