/**
 * Standard padded base64 (RFC 4648 §4), the form Go's encoding/json gives []byte and the API serves
 * Secret data in. Pure, so the core needs no Buffer.
 */

const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const encodeTable = Uint8Array.from(alphabet, (c) => c.charCodeAt(0));
const padCode = '='.charCodeAt(0);
/** Sextet value of an ASCII code, or -1. */
const decodeTable = new Int8Array(128).fill(-1);
for (let i = 0; i < alphabet.length; i++) decodeTable[alphabet.charCodeAt(i)] = i;

const utf8Encoder = new TextEncoder();
const asciiDecoder = new TextDecoder();

export function encodeBase64(bytes: Uint8Array): string {
  const out = new Uint8Array(Math.ceil(bytes.length / 3) * 4);
  let o = 0;
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = ((bytes[i] ?? 0) << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out[o++] = encodeTable[n >>> 18] ?? 0;
    out[o++] = encodeTable[(n >>> 12) & 63] ?? 0;
    out[o++] = encodeTable[(n >>> 6) & 63] ?? 0;
    out[o++] = encodeTable[n & 63] ?? 0;
  }
  const rest = bytes.length - i;
  if (rest > 0) {
    const n = ((bytes[i] ?? 0) << 16) | (rest === 2 ? (bytes[i + 1] ?? 0) << 8 : 0);
    out[o++] = encodeTable[n >>> 18] ?? 0;
    out[o++] = encodeTable[(n >>> 12) & 63] ?? 0;
    out[o++] = rest === 2 ? (encodeTable[(n >>> 6) & 63] ?? 0) : padCode;
    out[o] = padCode;
  }
  return asciiDecoder.decode(out);
}

/** Base64 of a string's UTF-8 bytes (how ConfigMap `data` is hashed). */
export function encodeUtf8Base64(text: string): string {
  return encodeBase64(utf8Encoder.encode(text));
}

function isWhitespace(code: number): boolean {
  return code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09;
}

/**
 * Decodes base64, tolerating ASCII whitespace and missing padding (as hand-written manifests have);
 * undefined for anything else that is not base64.
 */
export function decodeBase64(text: string): Uint8Array | undefined {
  const out = new Uint8Array(Math.floor((text.length * 3) / 4) + 3);
  let o = 0;
  let buffer = 0;
  let sextets = 0;
  let padding = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (isWhitespace(code)) continue;
    if (code === padCode) {
      padding++;
      continue;
    }
    const value = code < 128 ? (decodeTable[code] ?? -1) : -1;
    if (value < 0 || padding > 0) return undefined;
    buffer = (buffer << 6) | value;
    if (++sextets === 4) {
      out[o++] = (buffer >>> 16) & 255;
      out[o++] = (buffer >>> 8) & 255;
      out[o++] = buffer & 255;
      buffer = 0;
      sextets = 0;
    }
  }
  if (sextets === 1 || padding > 2 || (padding > 0 && sextets + padding !== 4)) return undefined;
  if (sextets === 2) out[o++] = (buffer >>> 4) & 255;
  if (sextets === 3) {
    out[o++] = (buffer >>> 10) & 255;
    out[o++] = (buffer >>> 2) & 255;
  }
  return out.subarray(0, o);
}

/**
 * True when `text` is exactly what encodeBase64 would produce for some bytes: the API's own output always
 * is, so normalising it needs no decoding.
 */
export function isCanonicalBase64(text: string): boolean {
  if (text.length % 4 !== 0) return false;
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  const dataLength = text.length - padding;
  for (let i = 0; i < dataLength; i++) {
    const code = text.charCodeAt(i);
    if (code >= 128 || (decodeTable[code] ?? -1) < 0) return false;
  }
  if (padding === 0) return true;
  // The bits after the last whole byte must be zero, or two spellings would decode to the same bytes.
  const last = decodeTable[text.charCodeAt(dataLength - 1)] ?? 0;
  return (last & (padding === 1 ? 0b11 : 0b1111)) === 0;
}

/** The canonical base64 spelling of the bytes `text` encodes, or undefined when it is not base64. */
export function normaliseBase64(text: string): string | undefined {
  if (isCanonicalBase64(text)) return text;
  const bytes = decodeBase64(text);
  return bytes && encodeBase64(bytes);
}
