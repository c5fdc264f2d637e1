// The database behind the server stops taking writes, so the refresh
// endpoint answers 503 for real. The user stays logged in, sees the notice, loses nothing,
// and the app recovers on its own once the database is back.
//
// This file runs in its own Playwright project, after every other test (see
// playwright.config.ts): while the database is locked, no other test could log in.
import { test, expect } from './fixtures';
import {
  RefreshLog,
  lockDatabase,
  logIn,
  registerUser,
  storedSession,
  waitPastExpiry,
} from './session-helpers';

test.use({ allowedConsoleErrors: [/status of (401|503)/] });

test('5. refresh answering 503: the user stays logged in, sees the notice, and recovers', async ({
  page,
  request,
}) => {
  test.skip(!!process.env.BATON_E2E_BASE_URL, 'needs the database of the server Playwright starts');
  test.setTimeout(90_000);
  const username = await registerUser(request, 'down');
  await logIn(page, username);
  const notice = page.getByTestId('connection-status');
  await expect(notice).toBeEmpty();
  const log = new RefreshLog(page);

  const unlock = await lockDatabase();
  try {
    await waitPastExpiry(page);
    // Refreshing has been failing; the user keeps working regardless.
    await page.getByRole('link', { name: 'New note' }).click();
    await page.getByLabel('Title').fill('Written while the database was down');
    await page.getByLabel('Body').fill('still here');
    await page.getByTestId('save').click();

    // Each refresh waits out the server's 5 s busy timeout before its 503.
    await expect(notice).toContainText('Reconnecting…', { timeout: 20_000 });
    await expect(page.getByTestId('editor-status')).toHaveText('Saving…');
    await expect(page).toHaveURL(/\/notes\/new$/);
    expect(await storedSession(page)).not.toBeNull();
    await log.settled();
    expect(log.answers.length).toBeGreaterThanOrEqual(1);
    expect(log.answers).toEqual(log.answers.map(() => ({ status: 503, code: 'unavailable' })));
  } finally {
    await unlock();
  }
  // The next retry (backoff) succeeds: the notice goes, the save completes.
  await expect(notice).toBeEmpty({ timeout: 30_000 });
  await expect(page).toHaveURL(/\/notes\/[0-9a-f-]{36}$/);
  await expect(page.getByTestId('editor-status')).toContainText('Saved');
  await log.settled();
  expect(log.answers.at(-1)).toEqual({ status: 200 });
  // Nothing rotated while the database was down: every attempt, failed or not, presented
  // the one refresh token the session held.
  expect(new Set(log.presented).size).toBe(1);
  // Saved for real: a fresh load lists it.
  await page.goto('/notes');
  await expect(page.getByRole('link', { name: 'Written while the database was down' })).toBeVisible();
});
