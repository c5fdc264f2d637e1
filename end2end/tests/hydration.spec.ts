// The release build serves a page that hydrates, and the API answers next to it.
import { test, expect, gotoHydrated } from './fixtures';

test('the home page hydrates: a click updates the counter', async ({ page }) => {
  await gotoHydrated(page, '/');
  const counter = page.getByTestId('counter');
  // Server-rendered HTML, before any wasm runs.
  await expect(counter).toHaveText('Clicked 0 times');

  // Only a hydrated button reacts. A click that lands before hydration finishes is lost,
  // so click again while the text still says 0; if the wasm never hydrates, this times
  // out and the test fails. Each round clicks only while the count is 0, so the count
  // cannot overshoot.
  await expect(async () => {
    if ((await counter.textContent()) === 'Clicked 0 times') await counter.click();
    await expect(counter).toHaveText('Clicked 1 times', { timeout: 1_000 });
  }).toPass({ timeout: 15_000 });
});

test('GET /api/health answers {"status":"ok"}', async ({ request }) => {
  const response = await request.get('/api/health');
  expect(response.status()).toBe(200);
  expect(response.headers()['content-type']).toContain('application/json');
  expect(await response.json()).toEqual({ status: 'ok' });
});
