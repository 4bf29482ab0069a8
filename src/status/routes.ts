// The thin HTTP side of the status page: /status (HTML), /status/live (the part live updates
// replace), /status.json (the same page as JSON) and the page's two assets. Handlers only read the
// controller's caches; the model is rebuilt only when the controller decided again (or, on a standby
// replica, after REBUILD_STANDBY_MS), and each request renders one page of it.
import type { V1EndpointSlice } from '@kubernetes/client-node';
import type { AppliedConfig } from '../config/watch.js';
import type { ProbeReport } from '../contract/probe-report.js';
import type { ServiceImport, ServiceImportKey } from '../contract/kosmos.js';
import type { ServiceImportVerdict } from '../report/aggregate.js';
import type { Reply, Route } from '../server.js';
import { STATUS_CSS, STATUS_JS } from './assets.js';
import type { StatusEvent } from './events.js';
import { renderLive, renderPage, type PageSource } from './html.js';
import { buildStatus, queryStatus, type StatusIndex, type StatusPage, type StatusQuery } from './model.js';
import { decide, observeReports, observeServiceImports } from './observe.js';

/** The leader's decision at the end of its last pass. */
export interface LastDecision {
  /** Target addresses per ServiceImport, as the pass counted them. */
  addresses: ReadonlyMap<ServiceImportKey, readonly string[]>;
  verdicts: ReadonlyMap<ServiceImportKey, ServiceImportVerdict>;
  /** Nodes whose votes the isolation guard ignored, with the reason. */
  isolated: ReadonlyMap<string, string>;
}

/** What the page reads of the controller, read-only. */
export interface StatusSources {
  identity: string;
  reports(): readonly ProbeReport[];
  serviceImports(): readonly ServiceImport[];
  slices(): readonly V1EndpointSlice[];
  nodeExists(name: string): boolean;
  /** Undefined until the configuration has been read. */
  applied(): AppliedConfig | undefined;
  leading(): boolean;
  /** Undefined until this replica, leading, finished a pass. */
  lastDecision(): LastDecision | undefined;
  /** The newest Events this controller recorded. */
  events(): StatusEvent[];
}

/** How old a model built without a decision of the leader may get before a request rebuilds it. */
export const REBUILD_STANDBY_MS = 2000;

const SECURITY_HEADERS = {
  // Only the process's own script and style; no inline code, no framing, no other origin.
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

export function parseStatusQuery(params: URLSearchParams): StatusQuery {
  const number = (name: string): number | undefined => {
    const value = params.get(name);
    return value === null ? undefined : Number(value);
  };
  return {
    namespace: params.get('namespace') ?? undefined,
    serviceImport: params.get('serviceImport') ?? undefined,
    address: params.get('address') ?? undefined,
    node: params.get('node') ?? undefined,
    problems: params.get('problems') === '1',
    page: number('page'),
    pageSize: number('pageSize'),
  };
}

/** The model of the controller's present state, rebuilt only when needed. */
export function statusIndexer(sources: StatusSources, now: () => Date = () => new Date()): () => { index: StatusIndex; source: PageSource } | undefined {
  let built: { index: StatusIndex; source: PageSource; decision?: LastDecision; applied: AppliedConfig; at: number } | undefined;
  return () => {
    const decision = sources.lastDecision();
    const applied = sources.applied();
    if (!applied) return undefined;
    const time = now();
    const fresh = decision ? built?.decision === decision : built !== undefined && built.decision === undefined && time.getTime() - built.at < REBUILD_STANDBY_MS;
    if (built && fresh && built.applied === applied) return built;
    const { config, version } = applied;
    const context = { now: time, configVersion: version, staleAfterMs: config.controller.reportStaleAfterMs, nodeExists: (name: string) => sources.nodeExists(name) };
    const reports = sources.reports();
    const serviceImports = observeServiceImports({ serviceImports: sources.serviceImports(), slices: sources.slices(), namespaces: config.namespaces, addresses: decision?.addresses });
    const decided = decision ?? decide({ reports, serviceImports, config, context });
    const index = buildStatus({
      now: time,
      config,
      configVersion: version,
      nodes: observeReports(reports, context, decided.isolated),
      serviceImports,
      verdicts: decided.verdicts,
      events: sources.events(),
    });
    const source: PageSource = { identity: sources.identity, leading: sources.leading(), decisions: decision ? 'leader' : 'computed' };
    built = { index, source, decision, applied, at: time.getTime() };
    return built;
  };
}

function reply(type: string, body: string): Reply {
  return { status: 200, type, body, headers: SECURITY_HEADERS };
}

const STARTING: Reply = { status: 503, type: 'text/plain', body: 'starting: the configuration has not been read yet\n', headers: SECURITY_HEADERS };

/** The routes of the status page, for the metrics server. */
export function statusRoutes(sources: StatusSources): Record<string, Route> {
  const current = statusIndexer(sources);
  /** A route answering with `render` of the page the URL asks for. */
  const pageRoute =
    (type: string, render: (page: StatusPage, source: PageSource) => string): Route =>
    (url) => {
      const state = current();
      if (!state) return STARTING;
      return reply(type, render(queryStatus(state.index, parseStatusQuery(url.searchParams)), state.source));
    };
  return {
    '/status': pageRoute('text/html; charset=utf-8', renderPage),
    '/status/live': pageRoute('text/html; charset=utf-8', renderLive),
    '/status.json': pageRoute('application/json', (page, source) => JSON.stringify({ source, ...page })),
    '/status/app.js': () => reply('text/javascript; charset=utf-8', STATUS_JS),
    '/status/style.css': () => reply('text/css; charset=utf-8', STATUS_CSS),
  };
}
