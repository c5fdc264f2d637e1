// Every page fits a 360 px wide phone as well as a
// desktop without scrolling sideways, every form field has a label, and a user can get
// through the app with the keyboard alone, seeing where the focus is.
import type { Locator, Page } from '@playwright/test';
import { test, expect, gotoHydrated } from './fixtures';
import { PASSWORD, createNote, logIn, registerUser } from './session-helpers';

const WIDTHS = [360, 768, 1280];

/** Everything wider than the viewport (a page that scrolls sideways is broken on a phone). */
async function overflowing(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const found: string[] = [];
    if (document.documentElement.scrollWidth > width) {
      found.push(`page scrolls sideways: ${document.documentElement.scrollWidth} > ${width}`);
    }
    for (const el of Array.from(document.body.querySelectorAll<HTMLElement>('*'))) {
      const box = el.getBoundingClientRect();
      if (box.width === 0 || box.height === 0) continue;
      // Off-screen on purpose (the skip link until it is focused).
      if (box.right <= 0 || box.bottom <= 0) continue;
      // Inside a box that scrolls on its own (a wide code block, say) it may be wider.
      let parent = el.parentElement;
      let clipped = false;
      while (parent && parent !== document.body) {
        const overflowX = getComputedStyle(parent).overflowX;
        if (overflowX === 'auto' || overflowX === 'scroll') {
          clipped = true;
          break;
        }
        parent = parent.parentElement;
      }
      if (!clipped && (box.right > width + 0.5 || box.left < -0.5)) {
        found.push(`<${el.tagName.toLowerCase()} class="${el.className}"> spans ${box.left}..${box.right} of ${width}`);
      }
    }
    return found;
  });
}

/** Form fields without a label a screen reader would read. */
async function unlabelled(page: Page): Promise<string[]> {
  return page.evaluate(() =>
    Array.from(
      document.querySelectorAll<HTMLInputElement>('input:not([type=hidden]), textarea, select'),
    )
      .filter((el) => {
        const labelText = Array.from(el.labels ?? [])
          .map((l) => l.textContent?.trim() ?? '')
          .join('');
        return !labelText && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby');
      })
      .map((el) => el.outerHTML),
  );
}

async function checkPage(page: Page, path: string, width: number): Promise<void> {
  await gotoHydrated(page, path);
  // The page rendered (a note with 300-character words must wrap, not widen it).
  await expect(page.locator('main h1').first()).toBeVisible();
  expect(await overflowing(page), `${path} at ${width} px`).toEqual([]);
  expect(await unlabelled(page), `${path}: fields without a label`).toEqual([]);
}

test('from 360 px to desktop no page scrolls sideways, and every field has a label', async ({
  page,
  request,
}) => {
  // The check sees a page that is too wide.
  await page.setViewportSize({ width: 360, height: 800 });
  await gotoHydrated(page, '/login');
  await page.evaluate(() => {
    const wide = document.createElement('p');
    wide.textContent = 'y'.repeat(200);
    document.querySelector('main')!.append(wide);
  });
  expect((await overflowing(page)).length).toBeGreaterThan(0);

  for (const path of ['/', '/login', '/register']) {
    for (const width of WIDTHS) {
      await page.setViewportSize({ width, height: 800 });
      await checkPage(page, path, width);
    }
  }

  await page.setViewportSize({ width: 360, height: 800 });
  const username = await registerUser(request, 'layout');
  await logIn(page, username, { device: 'A phone with a long device name, to see it wrap' });
  const unbroken = 'x'.repeat(300);
  const id = await createNote(page, `A title without spaces ${unbroken}`, `${unbroken}\n`.repeat(5));
  for (const path of ['/notes', `/notes/${id}`, '/notes/new', '/devices', '/account']) {
    for (const width of WIDTHS) {
      await page.setViewportSize({ width, height: 800 });
      await checkPage(page, path, width);
    }
  }
});

/** Presses Tab until `target` has the focus (at most 40 times), as a keyboard user would. */
async function tabTo(page: Page, target: Locator, what: string): Promise<void> {
  for (let i = 0; i < 40; i += 1) {
    if (await target.evaluate((el) => el === document.activeElement)) {
      // And the user can see where they are.
      const ring = await target.evaluate((el) => {
        const style = getComputedStyle(el);
        return style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
      });
      expect(ring, `${what} shows a focus ring`).toBe(true);
      return;
    }
    await page.keyboard.press('Tab');
  }
  throw new Error(`${what} cannot be reached with Tab`);
}

test('with the keyboard alone: log in, write a note, save it, log out', async ({ page, request }) => {
  const username = await registerUser(request, 'keys');
  await gotoHydrated(page, '/login');

  await tabTo(page, page.getByLabel('Username'), 'the username field');
  await page.keyboard.type(username);
  await tabTo(page, page.getByLabel('Password', { exact: true }), 'the password field');
  await page.keyboard.type(PASSWORD);
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(/\/notes$/);

  await tabTo(page, page.getByRole('link', { name: 'New note' }), 'the New note link');
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(/\/notes\/new$/);
  await tabTo(page, page.getByLabel('Title'), 'the title field');
  await page.keyboard.type('Typed, not clicked');
  await tabTo(page, page.getByLabel('Body'), 'the body field');
  await page.keyboard.type('every step of this note came from the keyboard');
  await tabTo(page, page.getByTestId('save'), 'the save button');
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(/\/notes\/[0-9a-f-]{36}$/);
  await expect(page.getByTestId('editor-status')).toContainText('Saved');

  await tabTo(page, page.getByTestId('logout'), 'the log out button');
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(/\/login$/);
});
