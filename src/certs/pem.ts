// Reading certificates and keys (node:crypto): what the webhook's TLS reload and `serve` need, without
// node-forge, which only issuing certificates (pki.ts: `certs`, `serve --self-signed`) loads.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { errorMessage } from '../errors.ts';

/** What wave needs to know about a certificate: validity, role, names. */
export interface CertificateInfo {
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly isCA: boolean;
  readonly subjectCN: string | undefined;
  readonly issuerCN: string | undefined;
  readonly dnsNames: readonly string[];
  readonly ips: readonly string[];
  /** Uppercase hex, as openssl prints it. */
  readonly serialNumber: string;
  /** SHA-256 fingerprint, colon-separated uppercase hex. */
  readonly fingerprint256: string;
}

export class CertificateError extends Error {
  override name = 'CertificateError';
}

/** The names a Service is reached by from inside the cluster, shortest first. */
export function serviceDnsNames(
  service: string,
  namespace: string,
  clusterDomain = 'cluster.local',
): string[] {
  return [
    service,
    `${service}.${namespace}`,
    `${service}.${namespace}.svc`,
    `${service}.${namespace}.svc.${clusterDomain}`,
  ];
}

const pemCertificate = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** The certificates in a PEM bundle (such as a caBundle holding two CAs), in order. */
export function splitPemBundle(pem: string): string[] {
  return [...pem.matchAll(pemCertificate)].map((m) => `${m[0]}\n`);
}

/**
 * Reads the first certificate of a PEM text. Any key type parses (a cert-manager certificate may be
 * ECDSA). Throws CertificateError saying what is wrong.
 */
export function parseCert(pem: string): CertificateInfo {
  const first = splitPemBundle(pem)[0];
  if (first === undefined) {
    throw new CertificateError(
      pem.trim() === ''
        ? 'the certificate is empty'
        : 'no "-----BEGIN CERTIFICATE-----" block found: the text is not a PEM certificate',
    );
  }
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(first);
  } catch (err) {
    throw new CertificateError(`the PEM certificate block cannot be decoded: ${errorMessage(err)}`);
  }
  const altNames = parseSubjectAltName(x509.subjectAltName);
  return {
    notBefore: x509.validFromDate,
    notAfter: x509.validToDate,
    isCA: x509.ca,
    subjectCN: commonNameOf(x509.subject),
    issuerCN: commonNameOf(x509.issuer),
    dnsNames: altNames.dns,
    ips: altNames.ips,
    serialNumber: x509.serialNumber.toUpperCase(),
    fingerprint256: x509.fingerprint256,
  };
}

/** Whether `keyPem` is the private key of the (first) certificate in `certPem`. False for unreadable input. */
export function keyMatchesCert(certPem: string, keyPem: string): boolean {
  try {
    return new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

/** Whether the (first) certificate in `certPem` was issued and signed by `caPem`. False for unreadable input. */
export function isIssuedBy(certPem: string, caPem: string): boolean {
  try {
    const cert = new X509Certificate(certPem);
    const ca = new X509Certificate(caPem);
    return cert.checkIssued(ca) && cert.verify(ca.publicKey);
  } catch {
    return false;
  }
}

function commonNameOf(distinguishedName: string): string | undefined {
  for (const line of distinguishedName.split('\n')) {
    if (line.startsWith('CN=')) return line.slice(3);
  }
  return undefined;
}

// Node prints SANs as `DNS:a, DNS:b, IP Address:127.0.0.1`, quoting (JSON) any entry containing ", ".
function parseSubjectAltName(san: string | undefined): { dns: string[]; ips: string[] } {
  const dns: string[] = [];
  const ips: string[] = [];
  if (san === undefined) return { dns, ips };
  for (const match of san.matchAll(/(?:^|, )("(?:[^"\\]|\\.)*"|[^,]+)/g)) {
    const raw = match[1] ?? '';
    const entry = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
    if (entry.startsWith('DNS:')) dns.push(entry.slice(4));
    else if (entry.startsWith('IP Address:')) ips.push(entry.slice(11));
  }
  return { dns, ips };
}
