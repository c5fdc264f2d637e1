// The release build serves a page that hydrates, and the API answers next to it.
import { test, expect, gotoHydrated } from './fixtures';

test('the login page hydrates: submitting it empty shows field errors', async ({ page }) => {
  await gotoHydrated(page, '/login');
  const submit = page.getByRole('button', { name: 'Log in' });
  // The server renders the button disabled; only the hydrated app enables it, and only
  // its submit handler checks the fields (an inert form would post to the server).
  await expect(submit).toBeEnabled();
  await expect(page.locator('#field-username-error')).toHaveText('');
  await submit.click();
  await expect(page.locator('#field-username-error')).toHaveText('is required');
  await expect(page.locator('#field-password-error')).toHaveText('is required');
  await expect(page).toHaveURL(/\/login$/);
});

test('GET /api/health answers {"status":"ok"}', async ({ request }) => {
  const response = await request.get('/api/health');
  expect(response.status()).toBe(200);
  expect(response.headers()['content-type']).toContain('application/json');
  expect(await response.json()).toEqual({ status: 'ok' });
});
