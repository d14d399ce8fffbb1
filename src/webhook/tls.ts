import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import type { SecureContextOptions } from 'node:tls';
import { CertificateError, keyMatchesCert, parseCert } from '../certs/pem.ts';
import type { CertificateInfo } from '../certs/pem.ts';
import { systemClock } from '../clock.ts';
import type { Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { errorMessage } from '../errors.ts';

export const tlsMinVersion = 'TLSv1.2';

/** A serving certificate (with any intermediates) and its private key, PEM. */
export interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
}

export interface LoadedTlsMaterial extends TlsMaterial {
  readonly info: CertificateInfo;
}

/** What the webhook server asks of a certificate source: the material now, and news of changes. */
export interface TlsSource {
  current(): LoadedTlsMaterial;
  /** Calls `onChange` after each change until the returned function is called. */
  subscribe(onChange: (material: LoadedTlsMaterial) => void): () => void;
}

/** The secure-context options every wave TLS server uses. */
export function secureContextOptions(material: TlsMaterial): SecureContextOptions {
  return { key: material.key, cert: material.cert, minVersion: tlsMinVersion };
}

/** Validates a certificate and key pair: both parse and belong together. Throws CertificateError. */
export function validateTlsMaterial(material: TlsMaterial): LoadedTlsMaterial {
  const info = parseCert(material.cert);
  if (!keyMatchesCert(material.cert, material.key)) {
    throw new CertificateError('the private key is unreadable or does not belong to the certificate');
  }
  try {
    createSecureContext(secureContextOptions(material));
  } catch (err) {
    throw new CertificateError(`OpenSSL refuses the pair: ${errorMessage(err)}`);
  }
  return { ...material, info };
}

export interface TlsFileSourceOptions {
  readonly certFile: string;
  readonly keyFile: string;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  /** How often to compare the files with what is served. Default 2000. */
  readonly pollIntervalMs?: number;
  /** Times the polls and says what "now" is for isServable. Default systemClock. */
  readonly clock?: Clock;
}

export type ReloadResult = 'unchanged' | 'applied' | 'rejected';

/**
 * Certificate and key read from files, such as a mounted Secret (`tls.crt`, `tls.key`). Kubernetes updates
 * a Secret volume by swapping a symlink, which fs.watch does not reliably report, so the source polls:
 * it rereads both files and compares their content with what it serves. A changed, valid pair is handed
 * to subscribers (the server applies it with setSecureContext: open connections keep their session).
 * An invalid or half-written pair is logged once and ignored; the previous pair keeps serving, and the
 * next poll tries again.
 */
export class TlsFileSource implements TlsSource {
  readonly #opts: TlsFileSourceOptions;
  readonly #clock: Clock;
  readonly #subscribers = new Set<(material: LoadedTlsMaterial) => void>();
  #material: LoadedTlsMaterial;
  #rejected: string | undefined;
  #cancelPoll: (() => void) | undefined;
  #polling: Promise<ReloadResult> | undefined;

  private constructor(opts: TlsFileSourceOptions, material: LoadedTlsMaterial) {
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
    this.#material = material;
    this.#recordExpiry();
  }

  /** Reads and validates the files once; rejects with a clear error when they cannot be served. */
  static async load(opts: TlsFileSourceOptions): Promise<TlsFileSource> {
    let material: LoadedTlsMaterial;
    try {
      material = validateTlsMaterial(await readPair(opts));
    } catch (err) {
      throw new CertificateError(
        `cannot serve TLS from ${opts.certFile} and ${opts.keyFile}: ${errorMessage(err)}`,
      );
    }
    opts.logger.info(certificateFields(opts, material.info), 'serving certificate loaded');
    return new TlsFileSource(opts, material);
  }

  current(): LoadedTlsMaterial {
    return this.#material;
  }

  subscribe(onChange: (material: LoadedTlsMaterial) => void): () => void {
    this.#subscribers.add(onChange);
    this.#startPolling();
    return () => {
      this.#subscribers.delete(onChange);
      if (this.#subscribers.size === 0) this.#stopPolling();
    };
  }

  /** True while a certificate is loaded and `now` lies inside its validity window. */
  isServable(now: Date = new Date(this.#clock.now())): boolean {
    const { notBefore, notAfter } = this.#material.info;
    return notBefore <= now && now < notAfter;
  }

  /** Compares the files with what is served now, and applies a valid change. Polling calls this. */
  reload(): Promise<ReloadResult> {
    this.#polling ??= this.#reload().finally(() => {
      this.#polling = undefined;
    });
    return this.#polling;
  }

  /** Stops polling; subscribers hear nothing more. */
  close(): void {
    this.#subscribers.clear();
    this.#stopPolling();
  }

  async #reload(): Promise<ReloadResult> {
    const { logger, metrics } = this.#opts;
    let pair: TlsMaterial;
    try {
      pair = await readPair(this.#opts);
    } catch (err) {
      return this.#reject(errorMessage(err), 'unreadable');
    }
    if (pair.cert === this.#material.cert && pair.key === this.#material.key) {
      this.#rejected = undefined;
      return 'unchanged';
    }
    let next: LoadedTlsMaterial;
    try {
      next = validateTlsMaterial(pair);
    } catch (err) {
      return this.#reject(errorMessage(err), pair.cert + pair.key);
    }
    const previous = this.#material.info;
    this.#material = next;
    this.#rejected = undefined;
    this.#recordExpiry();
    metrics?.certificateReloads.inc({ result: 'applied' });
    logger.info(
      { ...certificateFields(this.#opts, next.info), previousSerial: previous.serialNumber },
      'serving certificate changed on disk; new TLS connections present the new one',
    );
    for (const subscriber of this.#subscribers) {
      try {
        subscriber(next);
      } catch (err) {
        logger.error({ err }, 'applying the new serving certificate failed');
      }
    }
    return 'applied';
  }

  // Logs once per distinct bad pair, so a half-written Secret does not flood the log every poll.
  #reject(reason: string, fingerprint: string): ReloadResult {
    if (this.#rejected !== fingerprint) {
      this.#rejected = fingerprint;
      this.#opts.metrics?.certificateReloads.inc({ result: 'rejected' });
      this.#opts.logger.warn(
        {
          certFile: this.#opts.certFile,
          keyFile: this.#opts.keyFile,
          reason,
          servingSerial: this.#material.info.serialNumber,
        },
        'certificate files changed but cannot be served; keeping the current certificate and retrying',
      );
    }
    return 'rejected';
  }

  #recordExpiry(): void {
    this.#opts.metrics?.certificateExpiry.set(this.#material.info.notAfter.getTime() / 1000);
  }

  #startPolling(): void {
    if (this.#cancelPoll !== undefined) return;
    const intervalMs = this.#opts.pollIntervalMs ?? 2000;
    // Re-armed before the poll, as setInterval would: a slow read delays no later poll.
    const poll = () => {
      this.#cancelPoll = this.#clock.after(intervalMs, poll);
      void this.reload();
    };
    this.#cancelPoll = this.#clock.after(intervalMs, poll);
  }

  #stopPolling(): void {
    this.#cancelPoll?.();
    this.#cancelPoll = undefined;
  }
}

async function readPair(opts: TlsFileSourceOptions): Promise<TlsMaterial> {
  const [cert, key] = await Promise.all([readFile(opts.certFile, 'utf8'), readFile(opts.keyFile, 'utf8')]);
  return { cert, key };
}

function certificateFields(opts: TlsFileSourceOptions, info: CertificateInfo): Record<string, unknown> {
  return {
    certFile: opts.certFile,
    serial: info.serialNumber,
    subject: info.subjectCN,
    issuer: info.issuerCN,
    dnsNames: info.dnsNames,
    notAfter: info.notAfter.toISOString(),
  };
}
