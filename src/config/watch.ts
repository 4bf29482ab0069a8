// Hot reload: watches the ConfigMap and hands each valid `config.yaml` to the process. A rejected edit,
// a deleted ConfigMap or an emptied one is an error (log line naming it, metric, Event) and the last
// good configuration stays in force, also across restarts: the leading controller keeps a copy of it
// in a second ConfigMap that every process falls back to (docs/adr/0007-last-good-configuration.md).
import * as k8s from '@kubernetes/client-node';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../log.js';
import type { EventRecorder } from '../kube/events.js';
import type { InformerMetrics } from '../kube/informer-metrics.js';
import { SupervisedInformer } from '../kube/informer.js';
import { configMapInformerSpec, statusCodeOf } from '../kube/resources.js';
import { METRIC_PREFIX } from '../metrics.js';
import { ConfigError, DEFAULT_CONFIG, configVersion, parseConfig, type Config } from './config.js';

export const CONFIG_KEY = 'config.yaml';
/** The last good copy lives in the ConfigMap named like the configuration's plus this suffix. */
export const LAST_GOOD_SUFFIX = '-last-good';
/** On the last good copy: the version of the configuration it holds, for operators. */
export const ANNOTATION_CONFIG_VERSION = 'epsprobe.kosmos.io/config-version';

/** Where the configuration in force came from. */
export type ConfigSource = 'configmap' | 'last-good' | 'defaults';

export interface AppliedConfig {
  config: Config;
  /** configVersion(config): the same on every process running these settings. */
  version: string;
  source: ConfigSource;
  /** The `config.yaml` it was parsed from; none for the built-in defaults. */
  text?: string;
}

export interface ConfigWatchOptions {
  namespace: string;
  name: string;
  /**
   * Keep the last good copy up to date while this returns true (the leading controller). Agents and
   * standby controllers only read the copy.
   */
  persist?: () => boolean;
}

/** What the live ConfigMap holds: a configuration, or why it holds none. */
type LiveReading =
  | { ok: true; applied: AppliedConfig }
  | { ok: false; result: 'missing' | 'rejected'; reason: string; key?: string };

const DEFAULTS: AppliedConfig = { config: DEFAULT_CONFIG, version: configVersion(DEFAULT_CONFIG), source: 'defaults' };

export class ConfigWatch {
  private current: AppliedConfig = DEFAULTS;
  private readonly live: SupervisedInformer<k8s.V1ConfigMap>;
  private readonly lastGood: SupervisedInformer<k8s.V1ConfigMap>;
  private readonly lastGoodName: string;
  private readonly core: k8s.CoreV1Api;
  private readonly listeners = new Set<(applied: AppliedConfig) => void>();
  private readonly reloads: Counter<'result'>;
  /** resourceVersions of both ConfigMaps last looked at, so that a re-list of unchanged objects does nothing. */
  private lastSeen?: string;
  /** resourceVersion of the live ConfigMap last judged, so that each edit is counted and reported once. */
  private lastJudged?: string;
  private lastRejected = false;
  /** Listeners hear of configurations applied after start() resolved. */
  private started = false;
  private writing = false;

  constructor(
    kc: k8s.KubeConfig,
    private readonly options: ConfigWatchOptions,
    private readonly deps: { logger: Logger; registry: Registry; informerMetrics: InformerMetrics; events: EventRecorder },
  ) {
    this.lastGoodName = `${options.name}${LAST_GOOD_SUFFIX}`;
    const informerDeps = { logger: deps.logger, metrics: deps.informerMetrics };
    this.live = new SupervisedInformer(kc, configMapInformerSpec(kc, options.namespace, options.name), informerDeps);
    this.lastGood = new SupervisedInformer(
      kc,
      { ...configMapInformerSpec(kc, options.namespace, this.lastGoodName), resource: 'configmaps-last-good' },
      informerDeps,
    );
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    this.reloads = new Counter({
      name: `${METRIC_PREFIX}config_reloads_total`,
      help: 'ConfigMap loads by result: applied, rejected (invalid) or missing (no ConfigMap, no or empty config.yaml); on the last two the last good configuration stays.',
      labelNames: ['result'],
      registers: [deps.registry],
    });
    const inForce = (): AppliedConfig => this.current;
    const lastRejected = (): boolean => this.lastRejected;
    new Gauge({
      name: `${METRIC_PREFIX}config_info`,
      help: 'The configuration in force: its version (a digest of its settings) and source (configmap, last-good, defaults).',
      labelNames: ['version', 'source'],
      registers: [deps.registry],
      collect() {
        this.reset();
        this.set({ version: inForce().version, source: inForce().source }, 1);
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}config_last_reload_successful`,
      help: '1 when the ConfigMap holds a configuration that was applied, 0 when it was rejected or is missing.',
      registers: [deps.registry],
      collect() {
        this.set(lastRejected() ? 0 : 1);
      },
    });
    for (const informer of [this.live, this.lastGood]) informer.onChange(() => this.reconcile());
  }

  get applied(): AppliedConfig {
    return this.current;
  }

  /** Runs `listener` for every newly applied configuration (not for the one in force at start). */
  onApplied(listener: (applied: AppliedConfig) => void): void {
    this.listeners.add(listener);
  }

  /** Starts watching; resolves with the configuration in force once both ConfigMaps have been read. */
  async start(): Promise<AppliedConfig> {
    await Promise.all([this.live.start(), this.lastGood.start()]);
    this.reconcile();
    this.started = true;
    return this.current;
  }

  stop(): void {
    this.live.stop();
    this.lastGood.stop();
  }

  isSynced(): boolean {
    return this.live.isSynced() && this.lastGood.isSynced();
  }

  /** Writes the configuration in force to the last good copy if it came from the ConfigMap and the copy differs. */
  persistLastGood(): void {
    const applied = this.current;
    if (!this.options.persist?.() || this.writing || applied.source !== 'configmap' || applied.text === undefined) return;
    if (this.readLastGood()?.version === applied.version) return;
    this.writing = true;
    void this.writeLastGood(applied).finally(() => {
      this.writing = false;
    });
  }

  private reconcile(): void {
    if (!this.isSynced()) return;
    const configMap = this.live.get(this.options.name, this.options.namespace);
    const liveVersion = configMap?.metadata?.resourceVersion ?? '';
    const seen = `${liveVersion}|${this.lastGood.get(this.lastGoodName, this.options.namespace)?.metadata?.resourceVersion ?? ''}`;
    if (seen === this.lastSeen) return;
    this.lastSeen = seen;
    const reading = readLive(configMap);
    const judged = liveVersion !== this.lastJudged;
    this.lastJudged = liveVersion;
    if (reading.ok) {
      if (judged) {
        this.lastRejected = false;
        this.reloads.inc({ result: 'applied' });
        this.deps.logger.info({ configMap: this.configMapName, version: reading.applied.version }, 'configuration applied');
      }
      this.apply(reading.applied);
    } else {
      // The copy the leader keeps is what every other process falls back to as well, so all agree.
      const fallback = this.readLastGood();
      if (fallback) this.apply(fallback);
      if (judged) this.reportProblem(reading, configMap?.metadata?.uid);
    }
    this.persistLastGood();
  }

  private get configMapName(): string {
    return `${this.options.namespace}/${this.options.name}`;
  }

  private reportProblem(problem: Extract<LiveReading, { ok: false }>, uid: string | undefined): void {
    this.lastRejected = true;
    this.reloads.inc({ result: problem.result });
    const { version, source } = this.current;
    const kept = source === 'defaults' ? 'no good configuration is known: the defaults are in force' : `configuration ${version} (from ${source}) stays in force`;
    const message = problem.result === 'missing' ? `configuration missing: ${problem.reason}; ${kept}` : `${CONFIG_KEY} rejected (${problem.reason}); ${kept}`;
    this.deps.logger.error({ configMap: this.configMapName, key: problem.key, result: problem.result, inForce: version, source }, message);
    this.deps.events.warning(
      { apiVersion: 'v1', kind: 'ConfigMap', name: this.options.name, namespace: this.options.namespace, uid },
      problem.result === 'missing' ? 'ConfigMissing' : 'ConfigRejected',
      message,
    );
  }

  private readLastGood(): AppliedConfig | undefined {
    return lastGoodOf(this.lastGood.get(this.lastGoodName, this.options.namespace));
  }

  private async writeLastGood(applied: AppliedConfig): Promise<void> {
    const { namespace } = this.options;
    const name = this.lastGoodName;
    const metadata = { name, namespace, annotations: { [ANNOTATION_CONFIG_VERSION]: applied.version } };
    const data = { [CONFIG_KEY]: applied.text! };
    try {
      try {
        await this.core.patchNamespacedConfigMap({ name, namespace, body: { metadata, data } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
      } catch (err) {
        if (statusCodeOf(err) !== 404) throw err;
        await this.core.createNamespacedConfigMap({ namespace, body: { metadata, data } });
      }
      this.deps.logger.info({ configMap: `${namespace}/${name}`, version: applied.version }, 'last good configuration saved');
    } catch (err) {
      this.deps.logger.warn({ err, configMap: `${namespace}/${name}` }, 'could not save the last good configuration; retrying at the next change');
    }
  }

  private apply(applied: AppliedConfig): void {
    const previous = this.current;
    this.current = applied;
    if (!this.started || applied.version === previous.version) return;
    for (const listener of this.listeners) listener(applied);
  }
}

/** The last good copy, if present and valid for this version of the code. */
function lastGoodOf(configMap: k8s.V1ConfigMap | undefined): AppliedConfig | undefined {
  const text = configMap?.data?.[CONFIG_KEY];
  if (text === undefined) return undefined;
  try {
    const config = parseConfig(text);
    return { config, version: configVersion(config), source: 'last-good', text };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return undefined;
  }
}

/**
 * The configuration the processes run, given the live ConfigMap and the last good copy, as
 * ConfigWatch applies it (for a reader such as the `status` command): the live one when valid, else
 * the copy, else the defaults; `problem` says what is wrong with the live one.
 */
export function configInForce(live: k8s.V1ConfigMap | undefined, lastGood: k8s.V1ConfigMap | undefined): { applied: AppliedConfig; problem?: string } {
  const reading = readLive(live);
  if (reading.ok) return { applied: reading.applied };
  return { applied: lastGoodOf(lastGood) ?? DEFAULTS, problem: reading.reason };
}

function readLive(configMap: k8s.V1ConfigMap | undefined): LiveReading {
  if (!configMap) return { ok: false, result: 'missing', reason: 'the ConfigMap does not exist' };
  const text = configMap.data?.[CONFIG_KEY];
  if (text === undefined) return { ok: false, result: 'missing', reason: `the ConfigMap has no ${CONFIG_KEY} key` };
  if (text.trim() === '') return { ok: false, result: 'missing', reason: `${CONFIG_KEY} is empty` };
  try {
    const config = parseConfig(text);
    return { ok: true, applied: { config, version: configVersion(config), source: 'configmap', text } };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return { ok: false, result: 'rejected', reason: err.message, key: err.key };
  }
}
