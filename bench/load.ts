// A closed-loop HTTPS load client: a fixed number of requests in flight over keep-alive connections,
// every latency kept (no sampling), percentiles by nearest rank over all samples.
import { randomUUID } from 'node:crypto';
import https from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { errorMessage } from '../src/errors.ts';

export interface LoadOptions {
  readonly port: number;
  readonly path: string;
  /** PEM of the CA that signed the server's certificate: the client verifies it, as the apiserver does. */
  readonly ca: string;
  readonly concurrency: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** The request body for one uid. */
  readonly body: (uid: string) => string;
  /** What is wrong with an answer, or undefined when it is right. */
  readonly check: (uid: string, status: number, body: string) => string | undefined;
  /** Called once when the warm-up ends and the measured window begins. */
  readonly onMeasureStart?: () => void;
  /** Ends the run early (Ctrl-C). */
  readonly signal?: AbortSignal;
}

export interface LoadResult {
  /** Requests completed inside the measured window, answered correctly or not. */
  readonly requests: number;
  readonly requestsPerSecond: number;
  /** Latencies in ms of the requests completed inside the window. */
  readonly latency: Percentiles;
  /** Wrong answers, HTTP errors and failed requests inside the window. */
  readonly errors: number;
  readonly warmupErrors: number;
  /** The first few distinct error messages. */
  readonly errorSamples: readonly string[];
  /** Client CPU time over the window, in microseconds. */
  readonly clientCpuMicros: number;
}

export interface Percentiles {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

/** Nearest-rank percentiles over every sample. */
export function percentiles(samples: Float64Array): Percentiles {
  const sorted = samples.slice().sort();
  const at = (p: number) =>
    sorted.length === 0 ? NaN : (sorted[Math.ceil((p / 100) * sorted.length) - 1] ?? NaN);
  return { p50: at(50), p90: at(90), p99: at(99), max: sorted.at(-1) ?? NaN };
}

/** A growable Float64Array: hundreds of thousands of samples without boxing each number. */
class Samples {
  #data = new Float64Array(1 << 16);
  #length = 0;

  push(value: number): void {
    if (this.#length === this.#data.length) {
      const bigger = new Float64Array(this.#data.length * 2);
      bigger.set(this.#data);
      this.#data = bigger;
    }
    this.#data[this.#length] = value;
    this.#length += 1;
  }

  values(): Float64Array {
    return this.#data.subarray(0, this.#length);
  }
}

interface Answer {
  readonly status: number;
  readonly body: string;
}

function post(agent: https.Agent, opts: LoadOptions, body: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: opts.port,
        path: opts.path,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, body: text });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const agent = new https.Agent({
    keepAlive: true,
    maxSockets: opts.concurrency,
    ca: opts.ca,
    // Node's default session cache would be used anyway; set explicitly so reconnects are cheap too.
    maxCachedSessions: opts.concurrency,
  });
  const samples = new Samples();
  const errorSamples = new Set<string>();
  let errors = 0;
  let warmupErrors = 0;

  const started = performance.now();
  const measureFrom = started + opts.warmupMs;
  const measureUntil = measureFrom + opts.durationMs;
  let cpuAtStart = process.cpuUsage();
  const marker = setTimeout(() => {
    cpuAtStart = process.cpuUsage();
    opts.onMeasureStart?.();
  }, opts.warmupMs);

  const fail = (at: number, message: string) => {
    if (at < measureFrom) warmupErrors += 1;
    else errors += 1;
    if (errorSamples.size < 5) errorSamples.add(message);
  };

  const worker = async () => {
    for (;;) {
      const begin = performance.now();
      if (begin >= measureUntil || opts.signal?.aborted === true) return;
      const uid = randomUUID();
      let answer: Answer;
      try {
        answer = await post(agent, opts, opts.body(uid));
      } catch (err) {
        const end = performance.now();
        if (end <= measureUntil) fail(end, errorMessage(err));
        // A refused or reset connection fails at once; do not spin on it.
        await sleep(10);
        continue;
      }
      const end = performance.now();
      if (end > measureUntil) return;
      const problem = opts.check(uid, answer.status, answer.body);
      if (problem !== undefined) fail(end, problem);
      if (end >= measureFrom) samples.push(end - begin);
    }
  };

  try {
    await Promise.all(Array.from({ length: opts.concurrency }, worker));
  } finally {
    clearTimeout(marker);
    agent.destroy();
  }
  const cpu = process.cpuUsage(cpuAtStart);
  const values = samples.values();
  return {
    requests: values.length,
    requestsPerSecond: values.length / (opts.durationMs / 1000),
    latency: percentiles(values),
    errors,
    warmupErrors,
    errorSamples: [...errorSamples],
    clientCpuMicros: cpu.user + cpu.system,
  };
}
