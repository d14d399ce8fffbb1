import t from 'tap';
import {
  decodeBase64,
  encodeBase64,
  encodeUtf8Base64,
  isCanonicalBase64,
  normaliseBase64,
} from '../../src/core/base64.ts';

t.test('encoding matches Node for every length and byte value', (t) => {
  for (let length = 0; length < 70; length++) {
    const bytes = Uint8Array.from({ length }, (_, i) => (i * 97 + length * 31) & 255);
    const expected = Buffer.from(bytes).toString('base64');
    t.equal(encodeBase64(bytes), expected, `length ${length}`);
    t.strictSame(decodeBase64(expected), bytes, `decodes length ${length}`);
    t.ok(isCanonicalBase64(expected), `canonical at length ${length}`);
  }
  t.equal(encodeUtf8Base64('🌊 wave'), '8J+MiiB3YXZl');
  t.end();
});

t.test('decoding tolerates whitespace and missing padding, and refuses what is not base64', (t) => {
  t.strictSame(decodeBase64('YW\r\nJj ZA'), Uint8Array.from(Buffer.from('abcd')));
  for (const bad of ['Y', 'YQ=', 'YQ===', 'Y=Q=', 'YQ==YQ==', '%%%%', 'YWJj-_', 'é']) {
    t.equal(decodeBase64(bad), undefined, JSON.stringify(bad));
  }
  t.end();
});

t.test('normalising gives the one canonical spelling of the same bytes', (t) => {
  t.equal(normaliseBase64('YQ'), 'YQ==');
  t.equal(normaliseBase64('YR=='), 'YQ==', 'non-zero trailing bits');
  t.notOk(isCanonicalBase64('YR=='));
  t.equal(normaliseBase64('YQ=='), 'YQ==');
  t.equal(normaliseBase64(''), '');
  t.equal(normaliseBase64('not base64'), undefined);
  t.end();
});
