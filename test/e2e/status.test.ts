// The status page and the `status` command as a person uses them: three nodes probe three pods, a
// link is cut, and headless Chromium (Debian's, driven by playwright-core) watches the page update
// itself: the cut address unreachable from every node and pruned, then restored. The filter form
// works without JavaScript; the terminal view shows the same cut.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LIVE_INTERVAL_MS } from '../../src/status/assets.js';
import { controlPlaneState } from '../harness/cluster.js';
import { freePort } from '../harness/controlplane.js';
import { MCS_GROUP, MCS_VERSION } from '../harness/fixtures.js';
import { CLI } from '../harness/processes.js';
import { createScenario, fastProbeConfig, SERVICE, type Scenario } from '../harness/scenario.js';
import { until } from '../harness/wait.js';

const run = promisify(execFile);
const CHROMIUM = '/usr/bin/chromium';
/** Flags that keep Chromium off every network but ours (no background requests, no QUIC, no sync). */
const CHROMIUM_FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const OUTPUT = path.resolve(import.meta.dirname, '../../test-results/status');

const REPORTS = { group: 'epsprobe.kosmos.io', version: 'v1alpha1', plural: 'probereports' };
const INTERVAL_MS = 1000;
const TIMEOUT_MS = 500;
/** The detection bound of the other e2e tests (threshold × interval + timeout + 1 s), plus one live update of the page. */
const PAGE_DETECT_BOUND_MS = 2 * INTERVAL_MS + TIMEOUT_MS + 1000 + LIVE_INTERVAL_MS;

describe('status page and status command', () => {
  let s: Scenario;
  let url: string;
  /** A report of a Node that does not exist, as tests before this one may leave behind. */
  let orphan: string | undefined;
  const reports = () => s.kc.makeApiClient(k8s.CustomObjectsApi);
  const contexts: BrowserContext[] = [];
  const profiles: string[] = [];

  /** A fresh headless Chromium with an empty profile. */
  async function browser(options: { javaScriptEnabled: boolean }): Promise<Page> {
    const profile = mkdtempSync(path.join(os.tmpdir(), 'eps-chromium-'));
    profiles.push(profile);
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_FLAGS,
      javaScriptEnabled: options.javaScriptEnabled,
      viewport: { width: 1280, height: 720 },
    });
    contexts.push(context);
    return context.pages()[0] ?? context.newPage();
  }

  /** The states of an address's cells of this scenario's nodes (reports other tests left behind may add columns). */
  const cellStates = (page: Page, address: string): Promise<string[]> =>
    Promise.all(Object.values(s.nodeNames).map((node) => page.locator(`tr[data-address="${address}"] td.cell[data-node="${node}"]`).getAttribute('data-state', { timeout: 1000 }).catch(() => null).then((state) => state ?? 'missing')));

  /** The text of each column of a kubectl-style table row, cut where the header's columns start. */
  function columns(header: string, line: string): Record<string, string> {
    const starts = [...header.matchAll(/\S+(?: \S+)*/g)].map((match) => ({ name: match[0], at: match.index }));
    return Object.fromEntries(starts.map(({ name, at }, i) => [name, line.slice(at, i + 1 < starts.length ? starts[i + 1]!.at : undefined).trim()]));
  }
  const decision = (page: Page, address: string): Promise<string | null> => page.locator(`tr[data-address="${address}"]`).getAttribute('data-decision', { timeout: 1000 }).catch(() => null);

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (make deps does)`);
    mkdirSync(OUTPUT, { recursive: true });
    s = await createScenario({ name: 'stat', subnet: '10.233.27.0/24', pods: 3, nodes: 3, config: fastProbeConfig('heartbeatPeriod: 5s'), controlPlane: controlPlaneState() });
    orphan = `${s.namespace}-gone`;
    const spec = { nodeName: orphan, agentVersion: 'test', heartbeatTime: new Date().toISOString(), heartbeatPeriodSeconds: 5, configVersion: 'x', probeReplicas: 0, targetsProbed: 3, unreachableCount: 0, suspect: false, serviceImports: [] };
    await reports().createClusterCustomObject({ ...REPORTS, body: { apiVersion: 'epsprobe.kosmos.io/v1alpha1', kind: 'ProbeReport', metadata: { name: orphan }, spec } });
    const port = await freePort();
    url = `http://127.0.0.1:${port}/status`;
    for (const host of ['n1', 'n2', 'n3']) s.startAgent(host);
    s.startController('c1', {}, port);
    await until('every agent reports its three targets', async () =>
      (await Promise.all(['n1', 'n2', 'n3'].map((host) => s.report(host)))).every((report) => report?.targetsProbed === 3),
    );
  });

  afterAll(async () => {
    for (const context of contexts) await context.close().catch(() => undefined);
    for (const profile of profiles) rmSync(profile, { recursive: true, force: true });
    if (orphan) await reports().deleteClusterCustomObject({ ...REPORTS, name: orphan }).catch(() => undefined);
    await s?.destroy();
  });

  it('shows a cut address unreachable from every node and pruned, live, then restored; the CLI shows it too', async () => {
    const page = await browser({ javaScriptEnabled: true });
    await page.goto(`${url}?namespace=${s.namespace}`);
    const cut = s.pods.p2!;
    await expect.poll(() => cellStates(page, cut), { timeout: 10_000, interval: 200 }).toEqual(['reachable', 'reachable', 'reachable']);
    await expect.poll(() => page.locator('#updates').textContent()).toMatch(/^live:/);
    // Each report carries the last RTTs; they ride along with writes that happen anyway.
    await expect.poll(() => page.locator(`tr[data-address="${cut}"] td.cell .rtt`).allTextContents(), { timeout: 10_000 }).toEqual([
      expect.stringMatching(/^\d+(\.\d+)? ms$/), expect.stringMatching(/ ms$/), expect.stringMatching(/ ms$/),
    ]);
    const changeWrites = async (): Promise<number[]> =>
      (await Promise.all(['n1', 'n2', 'n3'].map((host) => s.metrics(host)))).map((text) => Number(/eps_probe_report_writes_total\{reason="change",result="success"\} (\d+)/.exec(text)?.[1] ?? 0));
    const steady = await changeWrites();
    const before = await s.report('n1');
    // A change of the ServiceImport makes every agent publish its (same) view again: new RTTs alone write nothing.
    await s.kc.makeApiClient(k8s.CustomObjectsApi).patchNamespacedCustomObject(
      { group: MCS_GROUP, version: MCS_VERSION, namespace: s.namespace, plural: 'serviceimports', name: SERVICE, body: { metadata: { annotations: { 'example.com/touched': 'yes' } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await new Promise((resolve) => setTimeout(resolve, 2 * INTERVAL_MS));
    expect(await changeWrites()).toEqual(steady);
    // ... and each heartbeat (every 5 s) brings fresh ones.
    const nextHeartbeat = async (after: string | undefined) => {
      await expect.poll(async () => (await s.report('n1'))?.heartbeatTime, { timeout: 10_000, interval: 250 }).not.toBe(after);
      return (await s.report('n1'))!;
    };
    const first = await nextHeartbeat(before?.heartbeatTime);
    expect((await nextHeartbeat(first.heartbeatTime)).targetRtts).not.toEqual(first.targetRtts);

    await s.topology.cutPod('p2');
    try {
      const cutAt = Date.now();
      // No reload: the page's own live updates must bring the news.
      const row = async (): Promise<[string | null, string[]]> => [await decision(page, cut), await cellStates(page, cut)];
      await expect.poll(row, { timeout: PAGE_DETECT_BOUND_MS, interval: 100 }).toEqual(['pruned', ['unreachable', 'unreachable', 'unreachable']]);
      expect(Date.now() - cutAt).toBeLessThanOrEqual(PAGE_DETECT_BOUND_MS);
      expect(await page.locator(`tr[data-address="${cut}"] td.why`).textContent()).toBe(
        '3 of 3 voting nodes see it unreachable (quorum: majority); removed from the synced EndpointSlices',
      );
      for (const other of [s.pods.p1!, s.pods.p3!]) expect(await decision(page, other)).toBe('connected');
      await page.screenshot({ path: path.join(OUTPUT, 'status-page-cut.png'), fullPage: true });

      const { stdout } = await run(process.execPath, [CLI, 'status', '--kubeconfig', controlPlaneState().kubeconfig, '--namespace', s.namespace, '--config-namespace', s.configNamespace], {
        env: { ...process.env, NO_COLOR: '1' },
      });
      const lines = stdout.split('\n');
      const matrixHeader = lines.find((line) => line.startsWith('NAMESPACE'))!;
      const rows = lines.filter((line) => line.startsWith(`${s.namespace} `)).map((line) => columns(matrixHeader, line));
      const ours = Object.values(s.nodeNames).map((node) => node.toUpperCase());
      const view = (row: Record<string, string>): string[] => [row.ADDRESS!, ...ours.map((node) => row[node]!.split(' ')[0]!), row.DECISION!];
      expect(rows.map(view)).toEqual([
        [s.pods.p1, 'reachable', 'reachable', 'reachable', 'connected'],
        [cut, 'UNREACHABLE', 'UNREACHABLE', 'UNREACHABLE', 'pruned'],
        [s.pods.p3, 'reachable', 'reachable', 'reachable', 'connected'],
      ]);
      expect(rows[1]!.WHY).toBe('3 of 3 voting nodes see it unreachable (quorum: majority); removed from the synced EndpointSlices');
      const nodeHeader = lines.find((line) => line.startsWith('NODE'))!;
      const nodeRows = lines.filter((line) => Object.values(s.nodeNames).some((node) => line.startsWith(`${node} `))).map((line) => columns(nodeHeader, line));
      expect(nodeRows.map((row) => [row.STATE, row.UNREACHABLE])).toEqual([['live', '1'], ['live', '1'], ['live', '1']]);
    } finally {
      await s.topology.restorePod('p2');
    }
    await expect.poll(() => decision(page, cut), { timeout: PAGE_DETECT_BOUND_MS + 2000, interval: 100 }).toBe('restored');
    expect(await cellStates(page, cut)).toEqual(['reachable', 'reachable', 'reachable']);
    await page.screenshot({ path: path.join(OUTPUT, 'status-page-restored.png'), fullPage: true });
  });

  it('filters with the GET form and shows the summary with JavaScript disabled', async () => {
    const page = await browser({ javaScriptEnabled: false });
    await page.goto(url);
    expect(await page.locator('#updates').textContent()).toBe('static page: reload for news');
    await page.fill('input[name="namespace"]', s.namespace);
    await page.fill('input[name="address"]', s.pods.p1!);
    await Promise.all([page.waitForURL(/address=/), page.click('button[type="submit"]')]);
    const rows = await page.locator('tr[data-address]').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-address')));
    expect(rows).toEqual([s.pods.p1]);
    expect(await cellStates(page, s.pods.p1!)).toEqual(['reachable', 'reachable', 'reachable']);
    for (const node of Object.values(s.nodeNames)) expect(await page.locator(`table.nodes tr[data-node="${node}"] td.node`).textContent()).toBe('live');
    // A report of a Node that does not exist is listed as invalid, and has no column.
    expect(await page.locator(`table.nodes tr[data-node="${orphan}"] td.node`).textContent()).toBe('invalid');
    expect(await page.locator(`td.cell[data-node="${orphan}"]`).count()).toBe(0);

    await page.fill('input[name="namespace"]', 'no-such-namespace');
    await Promise.all([page.waitForURL(/no-such-namespace/), page.click('button[type="submit"]')]);
    expect(await page.locator('tr[data-address]').count()).toBe(0);
    expect(await page.textContent('main')).toContain('No ServiceImport matches.');
  });
});
