// What a failed API request means for start-up: worth retrying (the apiserver is unreachable,
// overloaded or failing) or not (credentials, RBAC, a resource the cluster does not serve, an
// untrusted certificate), and what an operator should change. Start-up retries either kind a
// bounded number of times, then gives up with a StartupError naming the cause and the fix.
import { StartupError } from '../startup.js';
import { statusCodeOf } from './resources.js';

export interface ApiFailure {
  /** Retrying may help: the apiserver is unreachable, overloaded (429) or failing (5xx). */
  transient: boolean;
  message: string;
  fix: string;
}

/** Network errors of Node.js / undici worth retrying. */
const TRANSIENT_NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND',
  'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED',
]);

const REACHABILITY_FIX =
  'check the apiserver address in the kubeconfig (in a pod: the kubernetes Service) and that this node reaches it (network policies, firewalls); start-up retries meanwhile';

/** The Kubernetes Status in an error body (client-node keeps the body as text). */
function statusOf(err: unknown): { message?: string; details?: { kind?: string; name?: string } } | undefined {
  const body = (err as { body?: unknown } | undefined)?.body;
  if (typeof body !== 'string') return undefined;
  try {
    const status = JSON.parse(body) as { message?: unknown; details?: { kind?: unknown; name?: unknown } };
    return {
      message: typeof status.message === 'string' ? status.message : undefined,
      details: { kind: typeof status.details?.kind === 'string' ? status.details.kind : undefined, name: typeof status.details?.name === 'string' ? status.details.name : undefined },
    };
  } catch {
    return undefined;
  }
}

function statusMessage(err: unknown): string | undefined {
  return statusOf(err)?.message;
}

/** The code of a network error: undici puts it on `cause` of its `fetch failed` TypeError. */
function networkCode(err: unknown): string | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string') return e.code;
  }
  return undefined;
}

/**
 * The apiserver's own words for a 403: `User "U" cannot VERB resource "R" in API group "G" in the
 * namespace "N"` (or `at the cluster scope`).
 */
const FORBIDDEN = /User "([^"]+)" cannot (\S+) resource "([^"]+)" in API group "([^"]*)"(?: in the namespace "([^"]+)")?/;

/** The manifest's ServiceAccounts; each has a ClusterRole and a Role of its own name. */
const MANIFEST_SERVICE_ACCOUNTS = ['eps-probe-agent', 'eps-probe-controller'];

function forbidden(err: unknown, request: string): ApiFailure {
  const said = statusMessage(err);
  const match = said ? FORBIDDEN.exec(said) : null;
  if (!match) {
    return {
      transient: false,
      message: `the apiserver forbids ${request} (403 Forbidden${said ? `: ${said}` : ''})`,
      fix: 'grant this identity the rules of its ClusterRole and Role in deploy/eps-probe-plugin.yaml (eps-probe-agent or eps-probe-controller) and check their bindings',
    };
  }
  const [, user, verb, resource, group, namespace] = match as unknown as [string, string, string, string, string, string | undefined];
  const qualified = group ? `${resource}.${group}` : resource;
  const where = namespace ? ` in namespace ${namespace}` : ' cluster-wide';
  const roleKind = namespace ? 'Role' : 'ClusterRole';
  const serviceAccount = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(user);
  const grant = `grant ${serviceAccount ? `ServiceAccount ${serviceAccount[1]}/${serviceAccount[2]}` : `user ${user}`} "${verb}" on ${qualified}${where}`;
  const fix = serviceAccount && MANIFEST_SERVICE_ACCOUNTS.includes(serviceAccount[2]!)
    ? `${grant}: deploy/eps-probe-plugin.yaml does so with the ${roleKind} ${serviceAccount[2]} and its ${roleKind}Binding; check that both are applied and unchanged`
    : `${grant}: bind a ${roleKind} with this rule to it (deploy/eps-probe-plugin.yaml holds the rules of the ServiceAccounts ${MANIFEST_SERVICE_ACCOUNTS.join(' and ')})`;
  return { transient: false, message: `${user} may not ${verb} ${qualified}${where} (403 Forbidden)`, fix };
}

/** A CRD missing for `path` (`/apis/GROUP/VERSION/...`): which manifest holds it. */
export function crdFix(path: string): string {
  if (path.includes('/multicluster.x-k8s.io/')) {
    return 'install the MCS CRDs (ServiceImport, ServiceExport; Kosmos ships them, deploy/crds/ holds copies)';
  }
  if (path.includes('/epsprobe.kosmos.io/')) return 'apply deploy/eps-probe-plugin.yaml, which holds the ProbeReport CRD';
  return 'install the CustomResourceDefinition that serves it';
}

/**
 * What `err` from `request` (e.g. `list configmaps in namespace x`) means. `path` is the request's
 * path, for a 404.
 */
export function describeApiFailure(err: unknown, request: string, path?: string): ApiFailure {
  if (err instanceof StartupError) return { transient: false, message: err.message, fix: err.fix };
  const status = statusCodeOf(err);
  if (status === 401) {
    return {
      transient: false,
      message: `the apiserver rejects this process's credentials (401 Unauthorized) on ${request}`,
      fix: 'in a pod the ServiceAccount token is not accepted (the ServiceAccount was deleted or re-created: delete the pod); with --kubeconfig renew its user\'s token or certificate',
    };
  }
  if (status === 403) return forbidden(err, request);
  if (status === 404) {
    const details = statusOf(err)?.details;
    if (details?.kind === 'namespaces') {
      return {
        transient: false,
        message: `namespace ${details.name} does not exist (404 Not Found on ${request})`,
        fix: 'point --namespace (POD_NAMESPACE) at the namespace of the plugin\'s ConfigMap and Lease, or create it',
      };
    }
    return {
      transient: false,
      message: `the apiserver does not serve ${path ?? request} (404 Not Found)`,
      fix: path ? crdFix(path) : 'check that the cluster serves this resource (its Kubernetes version, its CRDs)',
    };
  }
  if (status === 429 || (status !== undefined && status >= 500)) {
    return {
      transient: true,
      message: `the apiserver answers ${request} with ${status}${statusMessage(err) ? `: ${statusMessage(err)}` : ''}`,
      fix: status === 429 ? 'the apiserver is overloaded or still initialising; start-up retries' : 'the apiserver or its etcd is failing: check the control plane; start-up retries',
    };
  }
  if (status !== undefined) {
    return {
      transient: false,
      message: `the apiserver rejects ${request} with ${status}${statusMessage(err) ? `: ${statusMessage(err)}` : ''}`,
      fix: 'the cluster may run a Kubernetes version this release does not support (docs/deploy.md)',
    };
  }
  const code = networkCode(err);
  const text = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
  if (code && /CERT|SELF_SIGNED|TLS|SSL|UNABLE_TO_VERIFY|ALTNAME/.test(code)) {
    return {
      transient: false,
      message: `the apiserver's certificate is not trusted on ${request} (${code}: ${text})`,
      fix: 'check the kubeconfig\'s server address and certificate-authority (in a pod: the ServiceAccount\'s ca.crt)',
    };
  }
  if ((code && TRANSIENT_NETWORK_CODES.has(code)) || (err as { name?: unknown } | undefined)?.name === 'TimeoutError') {
    return { transient: true, message: `cannot reach the apiserver for ${request} (${code ?? 'timeout'}: ${text})`, fix: REACHABILITY_FIX };
  }
  return { transient: true, message: `${request} failed: ${text}`, fix: REACHABILITY_FIX };
}

export interface StartupRetryPolicy {
  /** A failure that retrying rarely fixes (401, 403, 404, an untrusted certificate) ends start-up at this attempt. */
  permanentAttempts: number;
  /** Start-up gives up when it has not succeeded for this long (transient failures, or no answer at all). */
  deadlineMs: number;
  /** Delay before the second attempt; doubles up to maxDelayMs. */
  initialDelayMs: number;
  maxDelayMs: number;
}

/**
 * Three tries over three seconds for what is probably a mistake (RBAC or a CRD applied in the same
 * rollout still gets its chance); a minute for an apiserver that is down or overloaded.
 */
export const DEFAULT_STARTUP_RETRY: Readonly<StartupRetryPolicy> = Object.freeze({
  permanentAttempts: 3,
  deadlineMs: 60_000,
  initialDelayMs: 1_000,
  maxDelayMs: 8_000,
});

export type StartupDecision = { retryInMs: number; failure: ApiFailure; attempt: number } | { giveUp: StartupError };

/** Counts the failed attempts of one start-up step and decides when to give up. */
export class StartupRetry {
  private attempts = 0;
  private permanentFailures = 0;
  private readonly startedAt: number;
  private lastFailure?: ApiFailure;

  constructor(
    /** The step, for messages: `list configmaps in namespace x`. */
    private readonly request: string,
    private readonly policy: StartupRetryPolicy = DEFAULT_STARTUP_RETRY,
    private readonly now: () => number = Date.now,
    private readonly path?: string,
  ) {
    this.startedAt = now();
  }

  /** After a failed attempt: when to try again, or the error to give up with. */
  failed(err: unknown): StartupDecision {
    const failure = describeApiFailure(err, this.request, this.path);
    this.lastFailure = failure;
    this.attempts += 1;
    if (!failure.transient) this.permanentFailures += 1;
    const retryInMs = Math.min(this.policy.initialDelayMs * 2 ** (this.attempts - 1), this.policy.maxDelayMs);
    if (this.permanentFailures >= this.policy.permanentAttempts) {
      return { giveUp: err instanceof StartupError ? err : new StartupError(failure.message, failure.fix, { cause: err }) };
    }
    if (this.now() + retryInMs - this.startedAt >= this.policy.deadlineMs) return { giveUp: this.expired(err) };
    return { retryInMs, failure, attempt: this.attempts };
  }

  /** The error for a step that did not succeed within the deadline. */
  expired(cause?: unknown): StartupError {
    const seconds = Math.round((this.now() - this.startedAt) / 1000);
    if (!this.lastFailure) {
      return new StartupError(`no answer from the apiserver to ${this.request} within ${seconds}s`, REACHABILITY_FIX, { cause });
    }
    return new StartupError(`${this.lastFailure.message}; still failing after ${seconds}s`, this.lastFailure.fix, { cause });
  }
}

/**
 * Runs `attempt` until it succeeds, retrying as StartupRetry decides; no attempt may outlast the
 * deadline (client-node sets no request timeout, and a hung apiserver must not hang start-up). An
 * attempt that throws a StartupError itself (e.g. for a group the cluster does not serve) counts as
 * a permanent failure.
 */
export async function retryDuringStartup<T>(
  request: string,
  attempt: () => Promise<T>,
  deps: { onRetry: (failure: ApiFailure, retryInMs: number, attempt: number) => void; policy?: StartupRetryPolicy },
): Promise<T> {
  const policy = deps.policy ?? DEFAULT_STARTUP_RETRY;
  const retry = new StartupRetry(request, policy);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<undefined>((resolve) => {
    timer = setTimeout(resolve, policy.deadlineMs, undefined);
  });
  try {
    for (;;) {
      const outcome = await Promise.race([attempt().then((value) => ({ value }), (error: unknown) => ({ error })), deadline]);
      if (!outcome) throw retry.expired();
      if ('value' in outcome) return outcome.value;
      const decision = retry.failed(outcome.error);
      if ('giveUp' in decision) throw decision.giveUp;
      deps.onRetry(decision.failure, decision.retryInMs, decision.attempt);
      await new Promise((resolve) => setTimeout(resolve, decision.retryInMs));
    }
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Why the agent's first ProbeReport write was refused, as a start-up failure. The manifest's admission
 * policy accepts a report only from a token that names the report's node (docs/deploy.md).
 */
export function reportRefused(err: unknown, nodeName: string): StartupError {
  const said = statusMessage(err) ?? '';
  if (/ValidatingAdmissionPolicy/.test(said)) {
    return new StartupError(
      `the admission policy refuses this agent's ProbeReport ${nodeName}: ${said}`,
      'run the agent as the DaemonSet does: with its pod\'s own ServiceAccount token (bound to the pod, so that it names the node; Kubernetes 1.30+) and --identity (NODE_NAME) set to spec.nodeName',
      { cause: err },
    );
  }
  const failure = describeApiFailure(err, `writing ProbeReport ${nodeName}`);
  return new StartupError(failure.message, failure.fix, { cause: err });
}
