import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CounterConfiguration, GaugeConfiguration, HistogramConfiguration } from 'prom-client';

/**
 * What the webhook did with one AdmissionReview. `error` is an internal failure answered fail-open;
 * `invalid` is a body that was not an AdmissionReview (answered 400).
 */
export const admissionDecisions = ['stamp', 'hold', 'keep', 'skip', 'error', 'invalid'] as const;
export type AdmissionDecision = (typeof admissionDecisions)[number];

type AdmissionLabel = 'kind' | 'operation' | 'decision';

/** Why an admission failed open: admit threw, or did not answer before the deadline. */
export type AdmissionErrorCause = 'exception' | 'timeout';

/** How often nodejs_eventloop_lag_{min,max,mean,stddev,p50,p90,p99}_seconds sample the loop's delay. */
export const eventLoopSampleMs = 1000;

export interface MetricsOptions {
  /** Process and Node.js runtime metrics (CPU, memory, event loop, GC). Default true. */
  readonly defaultMetrics?: boolean;
}

type Unregistered<T> = Omit<T, 'registers'>;

/**
 * Every metric wave exports, in a registry of its own (never prom-client's global one), so a test can
 * build as many as it likes. Add a metric with `counter()`, `gauge()` or `histogram()`: they register it
 * here and return it typed by its label names.
 */
export class Metrics {
  readonly registry: Registry;
  readonly admissionDuration: Histogram<AdmissionLabel>;
  readonly admissionTotal: Counter<AdmissionLabel>;
  readonly admissionErrors: Counter<'kind' | 'operation' | 'cause'>;
  readonly certificateExpiry: Gauge;
  readonly certificateReloads: Counter<'result'>;
  readonly watchRestarts: Counter<'resource' | 'reason'>;
  readonly cacheObjects: Gauge<'kind' | 'form'>;
  readonly cacheBytes: Gauge<'kind' | 'form'>;

  constructor(opts: MetricsOptions = {}) {
    this.registry = new Registry();
    if (opts.defaultMetrics ?? true) {
      // prom-client samples the event loop's delay every 10 ms by default: a timer that wakes an idle wave
      // 100 times a second, each wake-up CPU of its own (2-4% of a core idle on a shared VM, and half the
      // CPU of a throttled mass rollout: bench/README.md). Once a second still shows a loop held up.
      collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: eventLoopSampleMs });
    }

    this.admissionDuration = this.histogram({
      name: 'wave_admission_duration_seconds',
      help: 'Time to answer one AdmissionReview, by workload kind, operation and decision.',
      labelNames: ['kind', 'operation', 'decision'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    });
    this.admissionTotal = this.counter({
      name: 'wave_admission_total',
      help: `AdmissionReviews answered, by workload kind, operation and decision (${admissionDecisions.join(', ')}).`,
      labelNames: ['kind', 'operation', 'decision'],
    });
    this.admissionErrors = this.counter({
      name: 'wave_admission_errors_total',
      help: 'Admissions answered fail-open (allowed, no patch) because of an internal error or the deadline.',
      labelNames: ['kind', 'operation', 'cause'],
    });
    this.certificateExpiry = this.gauge({
      name: 'wave_webhook_certificate_expiry_timestamp_seconds',
      help: 'notAfter of the serving certificate the webhook presents, as Unix time.',
    });
    this.certificateReloads = this.counter({
      name: 'wave_webhook_certificate_reloads_total',
      help: 'Changed certificate files seen: result "applied" or "rejected" (the previous certificate stays).',
      labelNames: ['result'],
    });
    this.watchRestarts = this.counter({
      name: 'wave_watch_restarts_total',
      help:
        'Lists and watches started again, by resource and reason: closed (server timeout), early_close, ' +
        'silence (no bytes for the silence timeout), gone (410, relisted), continue_expired, throttled (429), error.',
      labelNames: ['resource', 'reason'],
    });
    this.cacheObjects = this.gauge({
      name: 'wave_cache_objects',
      help:
        'ConfigMaps and Secrets in the config cache, by kind and form: "metadata" (known to exist, nobody ' +
        'consumes them, no data held) or "data" (consumed; data held).',
      labelNames: ['kind', 'form'],
    });
    this.cacheBytes = this.gauge({
      name: 'wave_cache_bytes',
      help:
        'Approximate bytes the config cache retains, by kind and form: names and versions for "metadata", ' +
        'keys and values of consumed objects for "data".',
      labelNames: ['kind', 'form'],
    });
  }

  counter<L extends string = never>(config: Unregistered<CounterConfiguration<L>>): Counter<L> {
    return new Counter<L>({ ...config, registers: [this.registry] });
  }

  gauge<L extends string = never>(config: Unregistered<GaugeConfiguration<L>>): Gauge<L> {
    return new Gauge<L>({ ...config, registers: [this.registry] });
  }

  histogram<L extends string = never>(config: Unregistered<HistogramConfiguration<L>>): Histogram<L> {
    return new Histogram<L>({ ...config, registers: [this.registry] });
  }

  /** The Prometheus text exposition of every metric. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
