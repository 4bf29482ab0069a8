// Hot reload: watches the ConfigMap and hands each valid `config.yaml` to the process. An invalid
// edit is rejected with a message naming the key, a metric and an Event; the last good config stays.
import type * as k8s from '@kubernetes/client-node';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../log.js';
import type { EventRecorder } from '../kube/events.js';
import type { InformerMetrics } from '../kube/informer.js';
import { SupervisedInformer } from '../kube/informer.js';
import { configMapInformerSpec } from '../kube/resources.js';
import { METRIC_PREFIX } from '../metrics.js';
import { ConfigError, DEFAULT_CONFIG, parseConfig, type Config } from './config.js';

export const CONFIG_KEY = 'config.yaml';
/** The version reported when no ConfigMap exists and the defaults are in force. */
export const DEFAULT_CONFIG_VERSION = 'default';

export interface AppliedConfig {
  config: Config;
  /** resourceVersion of the ConfigMap it came from, or `default`. */
  version: string;
}

export interface ConfigWatchOptions {
  namespace: string;
  name: string;
}

export class ConfigWatch {
  private current: AppliedConfig = { config: DEFAULT_CONFIG, version: DEFAULT_CONFIG_VERSION };
  private readonly informer: SupervisedInformer<k8s.V1ConfigMap>;
  private readonly listeners = new Set<(applied: AppliedConfig) => void>();
  private readonly reloads: Counter<'result'>;
  /** resourceVersion last looked at, so that an unchanged object (re-list) is not parsed again. */
  private lastSeenVersion?: string;

  constructor(
    kc: k8s.KubeConfig,
    private readonly options: ConfigWatchOptions,
    private readonly deps: { logger: Logger; registry: Registry; informerMetrics: InformerMetrics; events: EventRecorder },
  ) {
    this.informer = new SupervisedInformer(kc, configMapInformerSpec(kc, options.namespace, options.name), {
      logger: deps.logger,
      metrics: deps.informerMetrics,
    });
    this.reloads = new Counter({
      name: `${METRIC_PREFIX}config_reloads_total`,
      help: 'Configuration loads by result: applied, rejected (invalid; the last good config stays), defaults (no ConfigMap).',
      labelNames: ['result'],
      registers: [deps.registry],
    });
    const inForce = (): AppliedConfig => this.current;
    const lastRejected = (): boolean => this.lastRejected;
    new Gauge({
      name: `${METRIC_PREFIX}config_info`,
      help: 'The configuration in force: version is the resourceVersion of its ConfigMap (or "default").',
      labelNames: ['version'],
      registers: [deps.registry],
      collect() {
        this.reset();
        this.set({ version: inForce().version }, 1);
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}config_last_reload_successful`,
      help: '1 when the last edit of the ConfigMap was applied, 0 when it was rejected.',
      registers: [deps.registry],
      collect() {
        this.set(lastRejected() ? 0 : 1);
      },
    });
    this.informer.onChange(() => this.reconcile());
  }

  private lastRejected = false;
  /** Listeners hear of configurations applied after start() resolved. */
  private started = false;

  get applied(): AppliedConfig {
    return this.current;
  }

  /** Runs `listener` for every newly applied configuration (not for the one in force at start). */
  onApplied(listener: (applied: AppliedConfig) => void): void {
    this.listeners.add(listener);
  }

  /** Starts watching; resolves with the configuration in force once the ConfigMap has been read. */
  async start(): Promise<AppliedConfig> {
    await this.informer.start();
    this.reconcile();
    this.started = true;
    return this.current;
  }

  stop(): void {
    this.informer.stop();
  }

  isSynced(): boolean {
    return this.informer.isSynced();
  }

  private reconcile(): void {
    if (!this.informer.isSynced()) return;
    const configMap = this.informer.get(this.options.name, this.options.namespace);
    const version = configMap?.metadata?.resourceVersion ?? DEFAULT_CONFIG_VERSION;
    if (version === this.lastSeenVersion) return;
    this.lastSeenVersion = version;
    const log = this.deps.logger.child({ configMap: `${this.options.namespace}/${this.options.name}`, version });
    if (!configMap) {
      this.reloads.inc({ result: 'defaults' });
      log.warn('ConfigMap not found; using the default configuration');
      this.apply({ config: DEFAULT_CONFIG, version: DEFAULT_CONFIG_VERSION });
      return;
    }
    let config: Config;
    try {
      config = parseConfig(configMap.data?.[CONFIG_KEY] ?? '');
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      this.lastRejected = true;
      this.reloads.inc({ result: 'rejected' });
      log.error({ key: err.key, err: err.message, inForce: this.current.version }, `configuration rejected, keeping the last good one: ${err.message}`);
      this.deps.events.warning(
        { apiVersion: 'v1', kind: 'ConfigMap', name: this.options.name, namespace: this.options.namespace, uid: configMap.metadata?.uid },
        'ConfigRejected',
        `${CONFIG_KEY} rejected (${err.message}); configuration of resourceVersion ${this.current.version} stays in force`,
      );
      return;
    }
    this.lastRejected = false;
    this.reloads.inc({ result: 'applied' });
    log.info('configuration applied');
    this.apply({ config, version });
  }

  private apply(applied: AppliedConfig): void {
    this.current = applied;
    if (!this.started) return;
    for (const listener of this.listeners) listener(applied);
  }
}
