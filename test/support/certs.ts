// A throwaway CA and a serving certificate signed by it, for tests that listen on TLS locally.
import { createCA, createServingCert } from '../../src/certs/pki.ts';
import type { CertificatePem } from '../../src/certs/pki.ts';

export interface LocalServingPairOptions {
  /** Default ['wave']. */
  readonly dnsNames?: readonly string[];
  /** Default ['127.0.0.1']. */
  readonly ipAddresses?: readonly string[];
  /** Of both certificates; default 1. */
  readonly validityDays?: number;
  /** Start of both validity windows; default now. */
  readonly now?: Date;
}

export interface LocalServingPair {
  readonly ca: CertificatePem;
  readonly serving: CertificatePem;
}

/** A CA named wave-test-ca and a serving certificate it issued, both valid from `now`. */
export function localServingPair(opts: LocalServingPairOptions = {}): LocalServingPair {
  const now = opts.now ?? new Date();
  const validityDays = opts.validityDays ?? 1;
  const ca = createCA({ commonName: 'wave-test-ca', validityDays, now });
  const serving = createServingCert({
    ca,
    dnsNames: opts.dnsNames ?? ['wave'],
    ipAddresses: opts.ipAddresses ?? ['127.0.0.1'],
    validityDays,
    now,
  });
  return { ca, serving };
}
