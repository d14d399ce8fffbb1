import { X509Certificate } from 'node:crypto';
import forge from 'node-forge';
import t from 'tap';
import {
  CertificateError,
  createCA,
  createServingCert,
  isIssuedBy,
  keyMatchesCert,
  parseCert,
  serviceDnsNames,
  splitPemBundle,
} from '../../src/certs/pki.ts';

const now = new Date('2026-03-01T12:00:00.000Z');
const dayMs = 24 * 60 * 60 * 1000;
const ca = createCA({ commonName: 'wave-ca', validityDays: 3650, now });
const serving = createServingCert({
  ca,
  dnsNames: serviceDnsNames('wave', 'wave-system'),
  ipAddresses: ['127.0.0.1'],
  validityDays: 365,
  now,
});

t.test('a CA is self-signed, marked CA:true and valid from the injected clock', (t) => {
  const info = parseCert(ca.certPem);
  t.equal(info.isCA, true);
  t.equal(info.subjectCN, 'wave-ca');
  t.equal(info.issuerCN, 'wave-ca');
  t.same(info.notBefore, now);
  t.same(info.notAfter, new Date(now.getTime() + 3650 * dayMs));
  const x509 = new X509Certificate(ca.certPem);
  t.ok(x509.verify(x509.publicKey), 'signed by its own key');
  t.ok(keyMatchesCert(ca.certPem, ca.keyPem));
  t.end();
});

t.test('a serving certificate carries the Service names and 127.0.0.1, signed by the CA', (t) => {
  const info = parseCert(serving.certPem);
  t.same(info.dnsNames, [
    'wave',
    'wave.wave-system',
    'wave.wave-system.svc',
    'wave.wave-system.svc.cluster.local',
  ]);
  t.same(info.ips, ['127.0.0.1']);
  t.equal(info.isCA, false);
  t.equal(info.subjectCN, 'wave');
  t.equal(info.issuerCN, 'wave-ca');
  t.same(info.notBefore, now);
  t.same(info.notAfter, new Date(now.getTime() + 365 * dayMs));
  const x509 = new X509Certificate(serving.certPem);
  t.ok(x509.verify(new X509Certificate(ca.certPem).publicKey), 'signed by the CA');
  t.ok(
    x509.checkHost('wave.wave-system.svc') !== undefined,
    'a client verifying the Service name accepts it',
  );
  t.equal(x509.checkHost('wave.other.svc'), undefined);
  t.ok(x509.checkIP('127.0.0.1') !== undefined);
  t.ok(keyMatchesCert(serving.certPem, serving.keyPem));
  t.notOk(keyMatchesCert(serving.certPem, ca.keyPem), 'the CA key is not the serving key');
  t.end();
});

t.test('a serving certificate is for TLS servers only', (t) => {
  const x509 = new X509Certificate(serving.certPem);
  t.same(x509.keyUsage, ['1.3.6.1.5.5.7.3.1'], 'extKeyUsage serverAuth');
  t.end();
});

t.test('keys are RSA 2048 by default and the size is configurable', (t) => {
  t.equal(new X509Certificate(serving.certPem).publicKey.asymmetricKeyDetails?.modulusLength, 2048);
  const big = createCA({ commonName: 'big', validityDays: 1, now, keyBits: 3072 });
  t.equal(new X509Certificate(big.certPem).publicKey.asymmetricKeyDetails?.modulusLength, 3072);
  t.throws(() => createCA({ commonName: 'weak', validityDays: 1, now, keyBits: 1024 }), CertificateError);
  t.end();
});

t.test('each certificate gets a distinct serial number', (t) => {
  const again = createServingCert({ ca, dnsNames: ['wave'], validityDays: 1, now });
  t.not(parseCert(again.certPem).serialNumber, parseCert(serving.certPem).serialNumber);
  t.match(parseCert(again.certPem).serialNumber, /^[0-9A-F]{32}$/);
  t.end();
});

t.test('nonsense options are refused with a reason', (t) => {
  t.throws(
    () => createCA({ commonName: 'x', validityDays: 0, now }),
    /validityDays must be a positive number/,
  );
  t.throws(() => createCA({ commonName: ' ', validityDays: 1, now }), /non-empty commonName/);
  t.throws(
    () => createCA({ commonName: 'x', validityDays: 1, now: new Date(Number.NaN) }),
    /now is an invalid Date/,
  );
  t.throws(
    () => createServingCert({ ca, dnsNames: [], validityDays: 1, now }),
    /at least one DNS name or IP/,
  );
  t.throws(
    () => createServingCert({ ca, dnsNames: ['wave'], ipAddresses: ['localhost'], validityDays: 1, now }),
    /"localhost" is not an IP address/,
  );
  t.throws(
    () => createServingCert({ ca: serving, dnsNames: ['wave'], validityDays: 1, now }),
    /not a CA/,
    'a serving certificate cannot sign another',
  );
  t.throws(
    () =>
      createServingCert({
        ca: { certPem: ca.certPem, keyPem: serving.keyPem },
        dnsNames: ['w'],
        validityDays: 1,
        now,
      }),
    /CA private key does not belong to the CA certificate/,
  );
  t.end();
});

t.test('parseCert says what is wrong with text that is not a certificate', (t) => {
  t.throws(() => parseCert(''), { name: 'CertificateError', message: 'the certificate is empty' });
  t.throws(() => parseCert('hello'), /not a PEM certificate/);
  t.throws(() => parseCert(ca.keyPem), /not a PEM certificate/, 'a private key is not a certificate');
  t.throws(
    () => parseCert('-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n'),
    /cannot be decoded/,
  );
  const truncated = serving.certPem.slice(0, serving.certPem.length / 2) + '\n-----END CERTIFICATE-----\n';
  t.throws(() => parseCert(truncated), /cannot be decoded/, 'a half-written file');
  t.end();
});

t.test('a PEM bundle splits into its certificates and parseCert reads the first', (t) => {
  const other = createCA({ commonName: 'wave-ca-next', validityDays: 1, now });
  const bundle = ca.certPem + other.certPem;
  const parts = splitPemBundle(bundle);
  t.equal(parts.length, 2);
  t.equal(parseCert(parts[1] ?? '').subjectCN, 'wave-ca-next');
  t.equal(parseCert(bundle).subjectCN, 'wave-ca');
  t.end();
});

t.test('names are UTF8String, so a CN such as wave-ca@1700000000 stays parseable by Go', (t) => {
  // Go's x509 refuses a PrintableString holding '@'; the apiserver would then reject the whole caBundle.
  const utf8String = 12;
  const named = createCA({ commonName: 'wave-ca@1700000000', validityDays: 1, now });
  const issued = createServingCert({ ca: named, dnsNames: ['wave'], validityDays: 1, now });
  const caCert = forge.pki.certificateFromPem(named.certPem);
  const servingCert = forge.pki.certificateFromPem(issued.certPem);
  t.same(
    caCert.subject.attributes.map((a) => [a.shortName, a.value, a.valueTagClass]),
    [['CN', 'wave-ca@1700000000', utf8String]],
  );
  t.same(
    servingCert.issuer.attributes.map((a) => [a.value, a.valueTagClass]),
    [['wave-ca@1700000000', utf8String]],
    "the issuer repeats the CA's subject byte for byte",
  );
  t.equal(parseCert(named.certPem).subjectCN, 'wave-ca@1700000000');
  t.end();
});

t.test('PEM output has LF line ends and survives splitPemBundle unchanged', (t) => {
  t.notOk(ca.certPem.includes('\r'));
  t.equal(splitPemBundle(ca.certPem + serving.certPem).join(''), ca.certPem + serving.certPem);
  t.end();
});

t.test('isIssuedBy checks the issuer and the signature', (t) => {
  const other = createCA({ commonName: 'wave-ca', validityDays: 1, now });
  t.ok(isIssuedBy(serving.certPem, ca.certPem));
  t.notOk(isIssuedBy(serving.certPem, other.certPem), 'same name, different key');
  t.notOk(isIssuedBy('garbage', ca.certPem));
  t.end();
});
