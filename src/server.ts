// The HTTP side of agent and controller: /metrics, /healthz, /readyz, plus the routes a role adds
// (the controller's /status). Handlers only read state.
import http from 'node:http';
import { Registry, type OpenMetricsContentType } from 'prom-client';
import type { Logger } from './log.js';
import { StartupError } from './startup.js';

export interface HealthCheck {
  /** Name shown in the /readyz body. */
  name: string;
  /** Undefined when fine, else why not. */
  check: () => string | undefined;
}

/** What an added route answers. */
export interface Reply {
  status: number;
  type: string;
  body: string;
  headers?: Record<string, string>;
}

/** An added route: reads state, never changes it. */
export type Route = (url: URL) => Reply;

export interface ServerOptions {
  port: number;
  host?: string;
  registry: Registry;
  /** All must pass for /readyz. */
  readiness: HealthCheck[];
  /** All must pass for /healthz (liveness: only what a restart would fix). */
  liveness?: HealthCheck[];
  /** More routes by path. */
  routes?: Readonly<Record<string, Route>>;
  logger: Logger;
}

function failures(checks: readonly HealthCheck[]): string[] {
  return checks.flatMap(({ name, check }) => {
    const problem = check();
    return problem ? [`${name}: ${problem}`] : [];
  });
}

async function metricsBody(registry: Registry, accept: string | undefined): Promise<{ type: string; body: string }> {
  if (accept?.includes('application/openmetrics-text')) {
    // A merged registry holds the same metric objects; only its exposition format differs. (The
    // typings bind a registry to the content type it was created with, hence the cast.)
    const openMetrics = Registry.merge([registry]) as unknown as Registry<OpenMetricsContentType>;
    openMetrics.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    return { type: openMetrics.contentType, body: await openMetrics.metrics() };
  }
  return { type: registry.contentType, body: await registry.metrics() };
}

export async function startServer(options: ServerOptions): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const reply = (status: number, type: string, body: string, headers?: Record<string, string>): void => {
      res.writeHead(status, { ...headers, 'content-type': type });
      res.end(body);
    };
    const health = (checks: readonly HealthCheck[]): void => {
      const problems = failures(checks);
      if (problems.length === 0) reply(200, 'text/plain', 'ok\n');
      else reply(503, 'text/plain', `${problems.join('\n')}\n`);
    };
    switch (url.pathname) {
      case '/metrics':
        metricsBody(options.registry, req.headers.accept).then(
          ({ type, body }) => reply(200, type, body),
          (err: unknown) => {
            options.logger.error({ err }, 'metrics collection failed');
            reply(500, 'text/plain', 'metrics collection failed\n');
          },
        );
        return;
      case '/healthz':
      case '/livez':
        health(options.liveness ?? []);
        return;
      case '/readyz':
        health(options.readiness);
        return;
      default: {
        const route = Object.hasOwn(options.routes ?? {}, url.pathname) ? options.routes![url.pathname] : undefined;
        if (!route) {
          reply(404, 'text/plain', 'not found\n');
          return;
        }
        try {
          const { status, type, body, headers } = route(url);
          reply(status, type, body, headers);
        } catch (err) {
          options.logger.error({ err, path: url.pathname }, 'request failed');
          reply(500, 'text/plain', 'internal error\n');
        }
      }
    }
  });
  const host = options.host ?? '0.0.0.0';
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(listenFailure(err, host, options.port)));
    server.listen(options.port, host, () => resolve());
  });
  return server;
}

function listenFailure(err: NodeJS.ErrnoException, host: string, port: number): StartupError {
  const where = `${host}:${port}`;
  const portFix = 'choose another with --metrics-port (METRICS_PORT); in the manifest keep the containerPort named "metrics" equal to it';
  switch (err.code) {
    case 'EADDRINUSE':
      return new StartupError(`cannot serve metrics and health on ${where}: the port is in use (EADDRINUSE)`, `stop the process that holds it (another agent with hostNetwork?) or ${portFix}`, { cause: err });
    case 'EACCES':
      return new StartupError(`cannot serve metrics and health on ${where}: not permitted (EACCES)`, `use a port above 1023: ${portFix}`, { cause: err });
    case 'EADDRNOTAVAIL':
      return new StartupError(`cannot serve metrics and health on ${where}: no such local address (EADDRNOTAVAIL)`, 'set --metrics-host (METRICS_HOST) to an address of this host, or 0.0.0.0', { cause: err });
    default:
      return new StartupError(`cannot serve metrics and health on ${where}: ${err.message}`, portFix, { cause: err });
  }
}
