// The Content-Security-Policy the server sends with a page holds every
// directive Baton promises, the browser enforces it, the app hydrates and works under it
// without a single violation, and user text that is markup shows as text wherever the
// app displays it.
import type { Page } from '@playwright/test';
import { test, expect, gotoHydrated } from './fixtures';
import { PASSWORD, createNote, fillLogin, registerUser } from './session-helpers';

type Violation = { directive: string; blocked: string; sample: string };

declare global {
  interface Window {
    __cspViolations?: Violation[];
    __xss?: unknown;
  }
}

/**
 * Collects every `securitypolicyviolation` event of every document the page loads,
 * from before the page's own scripts run.
 */
async function recordViolations(page: Page): Promise<void> {
  await page.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__cspViolations!.push({
        directive: e.effectiveDirective,
        blocked: e.blockedURI,
        sample: e.sample,
      });
    });
  });
}

async function violations(page: Page): Promise<Violation[]> {
  return page.evaluate(() => window.__cspViolations ?? []);
}

/** `default-src 'self'; script-src ...` as a map from directive to its sources. */
function parsePolicy(header: string): Map<string, string[]> {
  const policy = new Map<string, string[]>();
  for (const part of header.split(';')) {
    const [name, ...sources] = part.trim().split(/\s+/);
    if (name) policy.set(name.toLowerCase(), sources);
  }
  return policy;
}

/** Loads `path` until hydrated, checks its policy and headers, returns the policy's nonce. */
async function loadAndCheckPolicy(page: Page, path: string): Promise<string> {
  const headers = (await gotoHydrated(page, path)).headers();
  expect(headers['x-content-type-options']).toBe('nosniff');
  expect(headers['referrer-policy']).toBe('no-referrer');

  const header = headers['content-security-policy'];
  expect(header, `${path} has a Content-Security-Policy`).toBeTruthy();
  const policy = parsePolicy(header);

  const scriptSrc = policy.get('script-src') ?? [];
  expect(scriptSrc, 'script-src').toContain("'self'");
  expect(scriptSrc, 'script-src').toContain("'wasm-unsafe-eval'");
  const nonces = scriptSrc.filter((s) => s.startsWith("'nonce-"));
  expect(nonces, 'one nonce in script-src').toHaveLength(1);
  const nonce = nonces[0].slice("'nonce-".length, -1);
  // At least 128 bits of base64 (CSP3 recommends it).
  expect(nonce.length, `nonce ${nonce}`).toBeGreaterThanOrEqual(22);

  for (const [directive, sources] of policy) {
    for (const forbidden of ["'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", '*']) {
      expect(sources, `${directive} allows ${forbidden}`).not.toContain(forbidden);
    }
  }
  expect(policy.get('object-src')).toEqual(["'none'"]);
  expect(policy.get('base-uri')).toEqual(["'none'"]);
  expect(policy.get('frame-ancestors')).toEqual(["'none'"]);
  expect(policy.get('default-src')).toEqual(["'self'"]);
  return nonce;
}

test('the page CSP holds every directive, and every script Leptos emits carries its nonce', async ({
  page,
}) => {
  await recordViolations(page);
  const nonces: string[] = [];
  for (const path of ['/login', '/register', '/login']) {
    const nonce = await loadAndCheckPolicy(page, path);
    nonces.push(nonce);
    // Inline scripts run only with this response's nonce; the others come from 'self'.
    const scripts = await page.evaluate(() =>
      Array.from(document.scripts).map((s) => ({ src: s.src, nonce: s.nonce })),
    );
    expect(scripts.length, `${path} has scripts`).toBeGreaterThan(0);
    for (const script of scripts) {
      if (script.src) {
        expect(new URL(script.src).origin, script.src).toBe(new URL(page.url()).origin);
      } else {
        expect(script.nonce, `inline script of ${path}`).toBe(nonce);
      }
    }
  }
  expect(new Set(nonces).size, 'a fresh nonce per response').toBe(nonces.length);
  expect(await violations(page)).toEqual([]);
});

test.describe('the browser enforces the policy', () => {
  // The browser reports each blocked script as a console error; here they are the point.
  test.use({ allowedConsoleErrors: [/Content Security Policy/] });

  test('a script without the nonce, an inline handler and a string timer do not run', async ({
    page,
  }) => {
    await recordViolations(page);
    await gotoHydrated(page, '/login');
    const ran = await page.evaluate(async () => {
      const script = document.createElement('script');
      script.textContent = 'window.__xss = "inline script"';
      document.head.append(script);
      const img = document.createElement('img');
      img.setAttribute('onerror', 'window.__xss = "inline handler"');
      img.src = 'data:,not-an-image';
      document.body.append(img);
      // A string run as code by the page itself (DevTools' own evaluation, which
      // runs this function, is exempt from the policy, so eval here would prove nothing).
      setTimeout('window.__xss = "string timer"', 0);
      // Give the image time to fail and the events time to be dispatched.
      await new Promise((resolve) => setTimeout(resolve, 300));
      return window.__xss ?? null;
    });
    expect(ran, 'a blocked script ran').toBeNull();
    const directives = (await violations(page)).map((v) => v.directive).sort();
    expect(directives).toEqual(['script-src', 'script-src-attr', 'script-src-elem']);
  });
});

test('under the policy the app works, and markup in user text shows as text', async ({
  page,
  request,
}) => {
  await recordViolations(page);
  page.on('dialog', (dialog) => {
    throw new Error(`a user's text ran as script: dialog "${dialog.message()}"`);
  });
  const title = '<img src=x onerror="window.__xss=1;alert(1)">';
  const body = '<script>window.__xss=2;alert(2)</script> & <b>bold</b>';
  const device = '<svg onload="window.__xss=3">phone</svg>';

  const username = await registerUser(request, 'csp');
  await gotoHydrated(page, '/login');
  await fillLogin(page, username, PASSWORD, device);
  await expect(page).toHaveURL(/\/notes$/);

  await createNote(page, title, body);
  await gotoHydrated(page, '/notes');
  const link = page.getByRole('link', { name: title, exact: true });
  await expect(link).toBeVisible();
  await expect(page.locator('main img, main script, main b')).toHaveCount(0);

  await link.click();
  await expect(page.getByLabel('Title')).toHaveValue(title);
  await expect(page.getByLabel('Body')).toHaveValue(body);

  await gotoHydrated(page, '/devices');
  await expect(page.getByTestId('this-device')).toBeVisible();
  await expect(page.getByText(device, { exact: true })).toBeVisible();
  await expect(page.locator('main svg, main img')).toHaveCount(0);

  expect(await page.evaluate(() => window.__xss ?? null)).toBeNull();
  expect(await violations(page)).toEqual([]);
});
