/* eslint-disable @typescript-eslint/no-explicit-any -- REST answers are read as loose JSON in these tests */
import { describePrivileged, requireCommand } from '@cowroot/testing';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { startTestServer, TestServer } from '../../test/start-test-server';
import { SimOutcome } from '../../../../tools/fleet-sim/src/sim-outcome';
import { SimulatedDevice } from '../../../../tools/fleet-sim/src/simulated-device';
import { UNREPORTED_DELTA_FORMATS } from '../releases/artifact-picker';
import { provisionDevices, seedRelease, waitFor } from '../rollouts/testing/rollout-fixtures';
import { Browser, buildWeb, launchChromium, ROOT } from './testing/browser';

jest.setTimeout(240_000);

/** The page's globals that the tests read (this file is compiled without the DOM lib; casts only). */
interface PageGlobals {
  document: {
    cookie: string;
    documentElement: { scrollWidth: number };
    activeElement: { textContent: string | null } | null;
  };
  innerWidth: number;
}

// Screenshots go to docs/dashboard when COWROOT_SCREENSHOT_DIR says so (npm run screenshots:web), else to tmp.
const SHOTS = process.env.COWROOT_SCREENSHOT_DIR
  ? join(ROOT, process.env.COWROOT_SCREENSHOT_DIR)
  : join(ROOT, 'tmp/dashboard-shots');

describePrivileged('dashboard in real Chromium (real server, simulated devices)', [requireCommand('chromium')], () => {
  let server: TestServer;
  let browser: Browser;
  let page: Page;
  const devices: SimulatedDevice[] = [];
  let firstRolloutId = '';

  beforeAll(async () => {
    await buildWeb();
    await mkdir(SHOTS, { recursive: true });
    server = await startTestServer();
    // web-os 2 has a format-3 delta from 1 and a delta from 0 whose manifest names no format; the devices hold
    // neither parent, so every rollout below still sends the full stream
    const parents = [
      await seedRelease(server.dataSource, { name: 'web-os', version: '0' }),
      await seedRelease(server.dataSource, { name: 'web-os', version: '1' }),
    ];
    await seedRelease(server.dataSource, {
      name: 'web-os',
      version: '2',
      parents: parents.map((parent, i) => ({
        version: parent.version,
        snapshotUuid: parent.snapshotUuid,
        deltaFormat: i === 1 ? 3 : null,
      })),
    });
    const specs = [
      // field devices report the delta formats they read; fragile ones never do (an agent older than the field)
      ...Array.from({ length: 6 }, (_, i) => ({ id: `field-${i}`, tags: ['field'], deltaFormats: [1, 2, 3] })),
      ...Array.from({ length: 3 }, (_, i) => ({
        id: `fragile-${i}`,
        tags: ['fragile'],
        outcome: SimOutcome.HealthReject,
      })),
    ];
    devices.push(...(await provisionDevices(server, specs)));
    await Promise.all(devices.map((device) => device.connect()));
    await waitFor(
      async () =>
        (
          (await server.dataSource.query(
            `SELECT count(*)::int AS n FROM devices WHERE booted_snapshot IS NOT NULL`,
          )) as any[]
        )[0].n === 9,
      15_000,
      'state reports of 9 devices',
    );
    browser = await launchChromium();
    page = await browser.context.newPage();
    page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
  });

  afterAll(async () => {
    await browser?.close();
    await Promise.all(devices.map((device) => device.stop()));
    await server?.close();
  });

  const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false });
  const rolloutRow = async (id: string) =>
    ((await server.dataSource.query(`SELECT * FROM rollouts WHERE id = $1`, [id])) as any[])[0];

  async function login(token: string): Promise<void> {
    await page.goto(`${server.httpUrl}/`);
    await page.getByLabel('API token', { exact: true }).fill(token);
    // keyboard only: Enter submits the form
    await page.getByLabel('API token', { exact: true }).press('Enter');
    await page.getByRole('navigation', { name: 'main' }).waitFor();
  }

  async function createRollout(name: string, tags: string): Promise<string> {
    await page.getByRole('navigation', { name: 'main' }).getByRole('link', { name: 'Rollouts' }).click();
    await page.getByRole('link', { name: 'New rollout' }).click();
    await page.getByLabel('Name', { exact: true }).fill(name);
    await page.getByLabel('Release (name@version)', { exact: true }).fill('web-os@2');
    await page.getByLabel('Tags (all of them)', { exact: true }).fill(tags);
    await page
      .getByTestId('preview')
      .getByText(/Targets \d+ devices/)
      .waitFor();
    await page.getByRole('button', { name: 'Create rollout' }).click();
    await page.waitForURL(/\/rollouts\/[0-9a-f-]{36}$/);
    return page.url().split('/').pop()!;
  }

  it('logs in with a token (the token never reaches a URL or script-readable storage) and shows the fleet', async () => {
    await page.goto(`${server.httpUrl}/`);
    await page.getByLabel('API token', { exact: true }).waitFor();
    await shot('login');
    const headers = (await page.request.get(`${server.httpUrl}/`)).headers();
    expect(headers['content-security-policy']).toContain("script-src 'self'");
    await login(server.adminToken);
    await expect(page.getByTestId('fleet-total').textContent()).resolves.toBe('9');
    expect(page.url()).not.toContain(server.adminToken);
    expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).document.cookie)).toBe(''); // HttpOnly: invisible to scripts
    const cookies = await browser.context.cookies();
    expect(cookies.find((c) => c.name === 'cowroot_session')).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    await page
      .getByText('web-os')
      .first()
      .waitFor({ state: 'detached' })
      .catch(() => undefined);
    await shot('fleet');
  });

  it('creates a 3-wave rollout with the form and watches its waves advance live to completion', async () => {
    await page.getByRole('navigation', { name: 'main' }).getByRole('link', { name: 'Rollouts' }).click();
    await page.getByRole('link', { name: 'New rollout' }).click();
    await page.getByLabel('Name', { exact: true }).fill('field to web-os 2');
    await page.getByLabel('Release (name@version)', { exact: true }).fill('web-os@2');
    await page.getByLabel('Tags (all of them)', { exact: true }).fill('field');
    await page.getByTestId('preview').getByText('Targets 6 devices; 0 already run the release.').waitFor();
    await shot('rollout-create');
    // a server-side validation error lands on its field
    await page.getByLabel('wave 2 timeout', { exact: true }).fill('0');
    await page.getByRole('button', { name: 'Create rollout' }).click();
    await page.getByText(/waves\.1\.timeoutSeconds must not be less than/).waitFor();
    await page.getByLabel('wave 2 timeout', { exact: true }).fill('1800');
    await page.getByRole('button', { name: 'Create rollout' }).click();
    await page.waitForURL(/\/rollouts\/[0-9a-f-]{36}$/);
    firstRolloutId = page.url().split('/').pop()!;
    await page.locator('.wave').nth(2).waitFor();
    expect(await page.locator('.wave').count()).toBe(3);

    // live: once the database has all six confirmed, the open page shows it within 2 s, without a reload
    const navigations: string[] = [];
    page.on('framenavigated', (frame) => frame === page.mainFrame() && navigations.push(frame.url()));
    await waitFor(async () => (await rolloutRow(firstRolloutId)).status === 'completed', 60_000, 'rollout completed');
    const seen = Date.now();
    await page.getByTestId('rollout-status').getByText('completed').waitFor({ timeout: 2_000 });
    await page.getByRole('img', { name: /whole rollout: 6 confirmed of 6/ }).waitFor({ timeout: 2_000 });
    expect(Date.now() - seen).toBeLessThan(2_000);
    expect(navigations).toEqual([]);
    await shot('rollout-completed');
  });

  it('pauses a rollout whose canary fails its health check, and the page says why', async () => {
    const id = await createRollout('fragile canary', 'fragile');
    const reason = page.getByTestId('status-reason');
    await reason.waitFor({ timeout: 45_000 });
    await expect(reason.textContent()).resolves.toMatch(
      /^Paused: abort rule 1: 1 of 1 executed devices failed \(any\)/,
    );
    await page.getByRole('combobox', { name: 'State' }).selectOption('rejected-by-health-check');
    await page
      .locator('td.reason')
      .filter({ hasText: /network/ })
      .first()
      .waitFor();
    await shot('rollout-paused');
    expect((await rolloutRow(id)).status).toBe('paused');
  });

  it('rolls one device back from its page', async () => {
    await page.goto(`${server.httpUrl}/devices/field-0`);
    await page
      .getByTestId('booted')
      .getByText(/web-os@2/)
      .waitFor();
    await expect(page.getByTestId('delta-formats').textContent()).resolves.toBe('1, 2, 3');
    await shot('device');
    await page.getByRole('button', { name: 'Roll back' }).click();
    await page.getByLabel('Reason (recorded in the audit log)', { exact: true }).fill('e2e: one device back');
    await page.getByRole('dialog').getByRole('button', { name: 'Roll back' }).click();
    await page.getByTestId('booted').getByText('factory').waitFor({ timeout: 20_000 });
  });

  it("says when a device never reported its delta formats, and what the server then assumes (the picker's)", async () => {
    await page.goto(`${server.httpUrl}/devices/fragile-0`);
    await expect(page.getByTestId('delta-formats').textContent()).resolves.toBe(
      `never reported: the server assumes format ${UNREPORTED_DELTA_FORMATS.join(', ')} only`,
    );
  });

  it('reverts the completed rollout with a confirm step and a reason', async () => {
    await page.goto(`${server.httpUrl}/rollouts/${firstRolloutId}`);
    await page.getByRole('button', { name: 'Revert' }).click();
    await page.getByLabel('Reason (recorded in the audit log)', { exact: true }).fill('e2e: revert');
    await page.getByRole('dialog').getByRole('button', { name: 'Revert' }).click();
    await page.getByRole('dialog').waitFor({ state: 'hidden' });
    await waitFor(
      async () =>
        (
          (await server.dataSource.query(
            `SELECT count(*)::int AS n FROM devices WHERE id LIKE 'field-%' AND booted_snapshot = 'factory'`,
          )) as any[]
        )[0].n === 6,
      30_000,
      'every field device back on factory',
    );
    const [row] = (await server.dataSource.query(`SELECT reason FROM rollbacks WHERE target = $1`, [
      firstRolloutId,
    ])) as any[];
    expect(row.reason).toBe('e2e: revert');
  });

  it('shows releases with artifacts and usage, and exports the audit log as CSV', async () => {
    await page.getByRole('navigation', { name: 'main' }).getByRole('link', { name: 'Releases' }).click();
    await page.getByText('web-os-2.full.btrfs.zst').waitFor();
    const format = (file: string) => page.getByTestId(`format-${file}`).textContent();
    await expect(format('web-os-2.from-1.delta.zst')).resolves.toBe('3');
    await expect(format('web-os-2.from-0.delta.zst')).resolves.toBe('unspecified');
    await expect(format('web-os-2.from-1.btrfs.zst')).resolves.toBe('–');
    await expect(format('web-os-2.full.btrfs.zst')).resolves.toBe('–');
    await shot('releases');
    await page.getByRole('navigation', { name: 'main' }).getByRole('link', { name: 'Audit' }).click();
    await page.getByLabel('Action (exact, or a prefix*)', { exact: true }).fill('roll*');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.getByRole('cell', { name: 'rollout.created' }).first().waitFor();
    await shot('audit');
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Export CSV' }).click(),
    ]);
    const csv = await readFile((await download.path())!, 'utf8');
    expect(csv.split('\n')[0]).toMatch(/^id,at,actor/);
    expect(csv).toContain('rollout.created');
    expect(csv).toContain('e2e: one device back');
  });

  it('gives a viewer no action buttons and a 403 when it forces one', async () => {
    await page.getByRole('navigation', { name: 'main' }).getByRole('link', { name: 'Admin' }).click();
    await page.getByLabel('token name', { exact: true }).fill('e2e-viewer');
    await page.getByLabel('token role', { exact: true }).selectOption('viewer');
    await page.getByRole('button', { name: 'Create token' }).click();
    const secret = (await page.getByTestId('new-secret').textContent())!.trim();
    await shot('admin');
    await page.getByRole('button', { name: 'Log out' }).click();
    await login(secret);
    expect(await page.getByRole('link', { name: 'Admin' }).count()).toBe(0);
    await page.goto(`${server.httpUrl}/rollouts/${firstRolloutId}`);
    await page.getByTestId('rollout-status').waitFor();
    expect(await page.getByRole('group', { name: 'rollout actions' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: /Pause|Cancel|Revert|Retry|Approve|Resume/ }).count()).toBe(0);
    const forced = await page.evaluate(async (id) => {
      const session = (await (await fetch('/api/v1/session')).json()) as { csrfToken: string };
      const response = await fetch(`/api/v1/rollouts/${id}/cancel`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': session.csrfToken },
        body: JSON.stringify({ reason: 'forced' }),
      });
      return { status: response.status, body: (await response.json()) as { error: { code: string } } };
    }, firstRolloutId);
    expect(forced.status).toBe(403);
    expect(forced.body.error.code).toBe('FORBIDDEN');
  });

  it('works at 390 px wide and by keyboard', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const [path, name] of [
      ['/', 'fleet-phone'],
      [`/rollouts/${firstRolloutId}`, 'rollout-phone'],
      ['/devices', 'devices-phone'],
    ]) {
      await page.goto(`${server.httpUrl}${path}`);
      await page.locator('main h1').first().waitFor();
      const overflow = await page.evaluate(() => {
        const page = globalThis as unknown as PageGlobals;
        return page.document.documentElement.scrollWidth - page.innerWidth;
      });
      expect({ path, overflow }).toEqual({ path, overflow: 0 });
      await shot(name);
    }
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto(`${server.httpUrl}/devices`);
    await page.getByRole('link', { name: 'field-0' }).waitFor();
    await shot('devices');
    // Tab walks from the brand through the main navigation in order
    await page.locator('body').focus();
    const focused: string[] = [];
    for (let i = 0; i < 4; i++) {
      await page.keyboard.press('Tab');
      focused.push(
        await page.evaluate(
          () => (globalThis as unknown as PageGlobals).document.activeElement?.textContent?.trim() ?? '',
        ),
      );
    }
    expect(focused).toEqual(['cowroot', 'Fleet', 'Rollouts', 'Devices']);
    await page.keyboard.press('Enter'); // "Devices" by keyboard
    await page.waitForURL(/\/devices$/);
  });
});
