// Issuing certificates with node-forge: a CA and serving certificates signed by it (`certs`, `serve
// --self-signed`, the tests). Reading them is pem.ts, which everything else imports.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';
import { CertificateError, keyMatchesCert, parseCert } from './pem.ts';

export * from './pem.ts';

/** A certificate and its private key, PEM encoded (the key as PKCS#8). */
export interface CertificatePem {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface CreateCAOptions {
  readonly commonName: string;
  readonly validityDays: number;
  /** Start of the validity window; the caller owns the clock. */
  readonly now: Date;
  /** RSA modulus length; default 2048. */
  readonly keyBits?: number;
}

export interface CreateServingCertOptions {
  readonly ca: CertificatePem;
  /** Subject alternative names clients verify, e.g. `serviceDnsNames('wave', 'wave-system')`. */
  readonly dnsNames: readonly string[];
  readonly ipAddresses?: readonly string[];
  /** Subject CN; defaults to the first DNS name (clients verify SANs, never the CN). */
  readonly commonName?: string;
  readonly validityDays: number;
  readonly now: Date;
  readonly keyBits?: number;
}

const defaultKeyBits = 2048;
const dayMs = 24 * 60 * 60 * 1000;

/** A self-signed CA that signs serving certificates (basicConstraints CA:true, keyCertSign). */
export function createCA(opts: CreateCAOptions): CertificatePem {
  requireValidity(opts.validityDays, opts.now);
  if (opts.commonName.trim() === '') throw new CertificateError('a CA needs a non-empty commonName');
  const keys = generateRsaKey(opts.keyBits);
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = randomSerial();
  setValidity(cert, opts.now, opts.validityDays);
  const subject = commonNameField(opts.commonName);
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { certPem: certificatePem(cert), keyPem: keys.keyPem };
}

/** A TLS server certificate signed by `ca`, valid for the given DNS names and IP addresses. */
export function createServingCert(opts: CreateServingCertOptions): CertificatePem {
  requireValidity(opts.validityDays, opts.now);
  const ips = opts.ipAddresses ?? [];
  if (opts.dnsNames.length === 0 && ips.length === 0) {
    throw new CertificateError('a serving certificate needs at least one DNS name or IP address');
  }
  for (const ip of ips) {
    if (isIP(ip) === 0) throw new CertificateError(`"${ip}" is not an IP address`);
  }
  const caInfo = parseCert(opts.ca.certPem);
  if (!caInfo.isCA)
    throw new CertificateError('the issuing certificate is not a CA (basicConstraints CA:false)');
  if (!keyMatchesCert(opts.ca.certPem, opts.ca.keyPem)) {
    throw new CertificateError('the CA private key does not belong to the CA certificate');
  }
  const caCert = forge.pki.certificateFromPem(opts.ca.certPem);
  const caKey = forge.pki.privateKeyFromPem(opts.ca.keyPem);

  const keys = generateRsaKey(opts.keyBits);
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = randomSerial();
  setValidity(cert, opts.now, opts.validityDays);
  const commonName = opts.commonName ?? opts.dnsNames[0] ?? ips[0] ?? '';
  cert.setSubject(commonNameField(commonName));
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [
        ...opts.dnsNames.map((value) => ({ type: 2, value })),
        ...ips.map((ip) => ({ type: 7, ip })),
      ],
    },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { certPem: certificatePem(cert), keyPem: keys.keyPem };
}

// forge encodes attribute values as PrintableString, which has no '@' or '_': Go (the apiserver) refuses to
// parse such a certificate at all. UTF8String, as RFC 5280 recommends, takes any name. (forge reads
// valueTagClass as the ASN.1 type tag; its typings call it a Class.)
function commonNameField(value: string): forge.pki.CertificateField[] {
  const utf8String = forge.asn1.Type.UTF8 as unknown as forge.asn1.Class;
  return [{ shortName: 'CN', value, valueTagClass: utf8String }];
}

// forge writes CRLF line ends; OpenSSL, kubectl and Kubernetes write LF, and so does wave, so a PEM text
// compares equal to itself after a round trip through splitPemBundle.
function certificatePem(cert: forge.pki.Certificate): string {
  return forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n');
}

interface RsaKeys {
  readonly publicKey: forge.pki.rsa.PublicKey;
  readonly privateKey: forge.pki.rsa.PrivateKey;
  readonly keyPem: string;
}

// forge's keygen is pure JavaScript (seconds per 2048-bit key); OpenSSL's takes milliseconds.
function generateRsaKey(keyBits = defaultKeyBits): RsaKeys {
  if (!Number.isInteger(keyBits) || keyBits < 2048) {
    throw new CertificateError(`keyBits must be an integer of at least 2048 (got ${String(keyBits)})`);
  }
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: keyBits,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return {
    publicKey: forge.pki.publicKeyFromPem(publicKey),
    privateKey: forge.pki.privateKeyFromPem(privateKey),
    keyPem: privateKey,
  };
}

// 16 random bytes, high bit clear so the DER INTEGER is positive, next bit set so it has no leading zero.
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
  return bytes.toString('hex');
}

function setValidity(cert: forge.pki.Certificate, now: Date, validityDays: number): void {
  // X.509 times have one-second resolution; truncating keeps parseCert(cert).notBefore equal to now.
  const start = Math.floor(now.getTime() / 1000) * 1000;
  cert.validity.notBefore = new Date(start);
  cert.validity.notAfter = new Date(start + validityDays * dayMs);
}

function requireValidity(validityDays: number, now: Date): void {
  if (!Number.isFinite(validityDays) || validityDays <= 0) {
    throw new CertificateError(`validityDays must be a positive number (got ${String(validityDays)})`);
  }
  if (Number.isNaN(now.getTime())) throw new CertificateError('now is an invalid Date');
}
