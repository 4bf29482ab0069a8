import * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { StartupRetry, describeApiFailure, type StartupRetryPolicy } from '../../src/kube/failures.js';
import { StartupError } from '../../src/startup.js';

/** An error as client-node's generated API raises it: the Status body kept as text. */
function apiError(code: number, status: Record<string, unknown>): k8s.ApiException<string> {
  return new k8s.ApiException(code, 'Unknown API Status Code!', JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, ...status }), {});
}

/** An error as undici's fetch raises it for a socket error. */
function networkError(code: string, message: string): TypeError {
  return new TypeError('fetch failed', { cause: Object.assign(new Error(message), { code }) });
}

describe('describeApiFailure', () => {
  it.each([
    {
      name: '403 on a namespaced list by a ServiceAccount of the manifest',
      err: apiError(403, {
        reason: 'Forbidden',
        message: 'configmaps is forbidden: User "system:serviceaccount:eps-probe-plugin:eps-probe-agent" cannot list resource "configmaps" in API group "" in the namespace "eps-probe-plugin"',
      }),
      transient: false,
      message: 'system:serviceaccount:eps-probe-plugin:eps-probe-agent may not list configmaps in namespace eps-probe-plugin (403 Forbidden)',
      fix: 'grant ServiceAccount eps-probe-plugin/eps-probe-agent "list" on configmaps in namespace eps-probe-plugin: deploy/eps-probe-plugin.yaml does so with the Role eps-probe-agent and its RoleBinding; check that both are applied and unchanged',
    },
    {
      name: '403 at the cluster scope by another ServiceAccount',
      err: apiError(403, {
        reason: 'Forbidden',
        message: 'serviceimports.multicluster.x-k8s.io is forbidden: User "system:serviceaccount:x:other" cannot watch resource "serviceimports" in API group "multicluster.x-k8s.io" at the cluster scope',
      }),
      transient: false,
      message: 'system:serviceaccount:x:other may not watch serviceimports.multicluster.x-k8s.io cluster-wide (403 Forbidden)',
      fix: 'grant ServiceAccount x/other "watch" on serviceimports.multicluster.x-k8s.io cluster-wide: bind a ClusterRole with this rule to it (deploy/eps-probe-plugin.yaml holds the rules of the ServiceAccounts eps-probe-agent and eps-probe-controller)',
    },
    {
      name: '403 of a watch (no body)',
      err: Object.assign(new Error('Forbidden'), { statusCode: 403 }),
      transient: false,
      message: 'the apiserver forbids list/watch x (403 Forbidden)',
      fix: expect.stringContaining('ClusterRole and Role'),
    },
    {
      name: '401',
      err: apiError(401, { reason: 'Unauthorized', message: 'Unauthorized' }),
      transient: false,
      message: "the apiserver rejects this process's credentials (401 Unauthorized) on list/watch x",
      fix: expect.stringContaining('ServiceAccount token'),
    },
    {
      name: '404 of a resource without its CRD',
      err: apiError(404, { reason: 'NotFound', message: 'the server could not find the requested resource' }),
      transient: false,
      message: 'the apiserver does not serve /apis/epsprobe.kosmos.io/v1alpha1/probereports (404 Not Found)',
      fix: 'apply deploy/eps-probe-plugin.yaml, which holds the ProbeReport CRD',
    },
    {
      name: '404 of a namespace',
      err: apiError(404, { reason: 'NotFound', message: 'namespaces "gone" not found', details: { name: 'gone', kind: 'namespaces' } }),
      transient: false,
      message: 'namespace gone does not exist (404 Not Found on list/watch x)',
      fix: expect.stringContaining('--namespace'),
    },
    {
      name: '429',
      err: apiError(429, { reason: 'TooManyRequests', message: 'storage is (re)initializing' }),
      transient: true,
      message: 'the apiserver answers list/watch x with 429: storage is (re)initializing',
      fix: expect.stringContaining('overloaded'),
    },
    {
      name: '503',
      err: apiError(503, { reason: 'ServiceUnavailable', message: 'etcd down' }),
      transient: true,
      message: 'the apiserver answers list/watch x with 503: etcd down',
      fix: expect.stringContaining('etcd'),
    },
    {
      name: 'connection refused',
      err: networkError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:6443'),
      transient: true,
      message: 'cannot reach the apiserver for list/watch x (ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:6443)',
      fix: expect.stringContaining('apiserver address'),
    },
    {
      name: 'a certificate not trusted',
      err: networkError('UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate'),
      transient: false,
      message: "the apiserver's certificate is not trusted on list/watch x (UNABLE_TO_VERIFY_LEAF_SIGNATURE: unable to verify the first certificate)",
      fix: expect.stringContaining('certificate-authority'),
    },
    {
      name: 'a StartupError thrown by a step itself',
      err: new StartupError('group not served', 'install it'),
      transient: false,
      message: 'group not served',
      fix: 'install it',
    },
  ])('$name', ({ err, transient, message, fix }) => {
    expect(describeApiFailure(err, 'list/watch x', '/apis/epsprobe.kosmos.io/v1alpha1/probereports')).toEqual({ transient, message, fix });
  });
});

describe('StartupRetry', () => {
  const policy: StartupRetryPolicy = { permanentAttempts: 3, deadlineMs: 60_000, initialDelayMs: 1_000, maxDelayMs: 8_000 };
  const forbidden = apiError(403, { message: 'User "u" cannot list resource "configmaps" in API group "" in the namespace "n"' });
  const refused = networkError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:6443');

  function withClock(): { retry: StartupRetry; advance: (ms: number) => void } {
    let now = 1_000_000;
    return { retry: new StartupRetry('list/watch x', policy, () => now), advance: (ms) => (now += ms) };
  }

  it('gives up on the third permanent failure, after waiting 1 s and 2 s', () => {
    const { retry, advance } = withClock();
    expect(retry.failed(forbidden)).toMatchObject({ retryInMs: 1_000, attempt: 1 });
    advance(1_000);
    expect(retry.failed(forbidden)).toMatchObject({ retryInMs: 2_000, attempt: 2 });
    advance(2_000);
    const decision = retry.failed(forbidden);
    expect(decision).toEqual({ giveUp: expect.any(StartupError) });
    expect((decision as { giveUp: StartupError }).giveUp).toMatchObject({ message: 'u may not list configmaps in namespace n (403 Forbidden)', cause: forbidden });
  });

  it('retries transient failures with doubling delays up to the maximum until the deadline', () => {
    const { retry, advance } = withClock();
    const delays: number[] = [];
    for (;;) {
      const decision = retry.failed(refused);
      if ('giveUp' in decision) {
        expect(decision.giveUp.message).toBe('cannot reach the apiserver for list/watch x (ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:6443); still failing after 55s');
        break;
      }
      delays.push(decision.retryInMs);
      advance(decision.retryInMs);
    }
    expect(delays).toEqual([1_000, 2_000, 4_000, 8_000, 8_000, 8_000, 8_000, 8_000, 8_000]);
  });

  it('counts only permanent failures towards the attempts', () => {
    const { retry, advance } = withClock();
    for (const err of [forbidden, refused, refused, forbidden]) {
      expect(retry.failed(err)).not.toHaveProperty('giveUp');
      advance(1_000);
    }
    expect(retry.failed(forbidden)).toHaveProperty('giveUp');
  });

  it('names the step when no answer came at all by the deadline', () => {
    const { retry, advance } = withClock();
    advance(60_000);
    expect(retry.expired()).toMatchObject({ message: 'no answer from the apiserver to list/watch x within 60s', fix: expect.stringContaining('apiserver address') });
  });
});
