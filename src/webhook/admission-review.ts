/**
 * AdmissionReview v1 at the edge: validate what the apiserver sent into a small typed request, and build
 * the responses. No I/O; every function here is pure.
 */

import type { JsonPatchOperation } from '../core/admission.ts';
import { isRecord } from '../core/json.ts';

export const admissionApiVersion = 'admission.k8s.io/v1';
export const admissionReviewKind = 'AdmissionReview';

export type JsonPrimitive = string | number | boolean | null;
export type JsonValue = JsonPrimitive | JsonObject | JsonValue[];
export interface JsonObject {
  [key: string]: JsonValue;
}

export const admissionOperations = ['CREATE', 'UPDATE', 'DELETE', 'CONNECT'] as const;
export type AdmissionOperation = (typeof admissionOperations)[number];

export interface GroupVersionKind {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
}

export interface AdmissionUserInfo {
  readonly username: string;
  readonly groups: readonly string[];
}

/** The parts of an AdmissionReview v1 request wave reads. */
export interface AdmissionRequestV1 {
  readonly uid: string;
  readonly kind: GroupVersionKind;
  readonly operation: AdmissionOperation;
  /** Empty on CREATE when the object uses generateName. */
  readonly name: string;
  readonly namespace: string;
  readonly userInfo: AdmissionUserInfo;
  /** null on DELETE. */
  readonly object: JsonObject | null;
  /** null on CREATE. */
  readonly oldObject: JsonObject | null;
  readonly dryRun: boolean;
  /** request.options.fieldManager of a CREATE or UPDATE (kept from a PATCH); empty when not given. */
  readonly fieldManager: string;
}

/** One RFC 6902 operation, as the core produces them. */
export type JsonPatchOp = JsonPatchOperation;

export type ParseResult =
  | { readonly ok: true; readonly request: AdmissionRequestV1 }
  | { readonly ok: false; readonly error: string };

export interface AdmissionResponseV1 {
  readonly uid: string;
  readonly allowed: true;
  readonly patchType?: 'JSONPatch';
  /** base64 of the JSON text of the patch operations. */
  readonly patch?: string;
}

export interface AdmissionReviewResponse {
  readonly apiVersion: typeof admissionApiVersion;
  readonly kind: typeof admissionReviewKind;
  readonly response: AdmissionResponseV1;
}

/** Validates a parsed JSON body as an AdmissionReview v1 request, or says precisely what is wrong. */
export function parseAdmissionReview(body: unknown): ParseResult {
  if (body === undefined) return fail('the body is empty');
  if (!isRecord(body)) return fail(`the body is ${describe(body)}, not an object`);
  if (body.apiVersion !== admissionApiVersion) {
    return fail(`apiVersion must be "${admissionApiVersion}" (got ${quote(body.apiVersion)})`);
  }
  if (body.kind !== admissionReviewKind) {
    return fail(`kind must be "${admissionReviewKind}" (got ${quote(body.kind)})`);
  }
  const request = body.request;
  if (!isRecord(request)) return fail(`request must be an object (got ${describe(request)})`);

  const uid = request.uid;
  if (typeof uid !== 'string' || uid === '') {
    return fail(`request.uid must be a non-empty string (got ${describe(uid)})`);
  }
  const operation = request.operation;
  if (!isOperation(operation)) {
    return fail(
      `request.operation must be one of ${admissionOperations.join(', ')} (got ${describe(operation)})`,
    );
  }
  const kind = request.kind;
  if (
    !isRecord(kind) ||
    typeof kind.group !== 'string' ||
    typeof kind.version !== 'string' ||
    typeof kind.kind !== 'string' ||
    kind.kind === ''
  ) {
    return fail('request.kind must be an object with string group, version and non-empty kind');
  }

  const name = optionalString(request, 'name');
  const namespace = optionalString(request, 'namespace');
  const object = optionalObject(request, 'object');
  const oldObject = optionalObject(request, 'oldObject');
  const dryRun = request.dryRun ?? false;
  if (name === undefined) return fail(`request.name must be a string (got ${describe(request.name)})`);
  if (namespace === undefined) {
    return fail(`request.namespace must be a string (got ${describe(request.namespace)})`);
  }
  if (object === undefined) return fail(`request.object must be an object (got ${describe(request.object)})`);
  if (oldObject === undefined) {
    return fail(`request.oldObject must be an object (got ${describe(request.oldObject)})`);
  }
  if (typeof dryRun !== 'boolean') return fail(`request.dryRun must be a boolean (got ${describe(dryRun)})`);

  const userInfo = parseUserInfo(request.userInfo);
  if (typeof userInfo === 'string') return fail(userInfo);
  // Options are informational: an odd value is treated as absent, never as a bad review.
  const options = request.options;
  const manager = isRecord(options) ? options['fieldManager'] : undefined;
  const fieldManager = typeof manager === 'string' ? manager : '';

  return {
    ok: true,
    request: {
      uid,
      kind: { group: kind.group, version: kind.version, kind: kind.kind },
      operation,
      name,
      namespace,
      userInfo,
      object,
      oldObject,
      dryRun,
      fieldManager,
    },
  };
}

/** Admit the object unchanged. */
export function allowed(uid: string): AdmissionReviewResponse {
  return review({ uid, allowed: true });
}

/** Admit the object with a JSONPatch; an empty patch is the same as `allowed(uid)`. */
export function allowedWithPatch(uid: string, ops: readonly JsonPatchOp[]): AdmissionReviewResponse {
  if (ops.length === 0) return allowed(uid);
  return review({
    uid,
    allowed: true,
    patchType: 'JSONPatch',
    patch: Buffer.from(JSON.stringify(ops), 'utf8').toString('base64'),
  });
}

/** The name to log for a request: the object's name, or its generateName prefix on CREATE. */
export function objectName(request: AdmissionRequestV1): string {
  if (request.name !== '') return request.name;
  const metadata = request.object?.metadata;
  if (isRecord(metadata)) {
    if (typeof metadata.name === 'string' && metadata.name !== '') return metadata.name;
    if (typeof metadata.generateName === 'string') return `${metadata.generateName}*`;
  }
  return '';
}

function review(response: AdmissionResponseV1): AdmissionReviewResponse {
  return { apiVersion: admissionApiVersion, kind: admissionReviewKind, response };
}

function fail(error: string): ParseResult {
  return { ok: false, error: `not an AdmissionReview v1: ${error}` };
}

function parseUserInfo(value: unknown): AdmissionUserInfo | string {
  if (value === undefined || value === null) return { username: '', groups: [] };
  if (!isRecord(value)) return `request.userInfo must be an object (got ${describe(value)})`;
  const username = value.username ?? '';
  if (typeof username !== 'string') {
    return `request.userInfo.username must be a string (got ${describe(username)})`;
  }
  const groups = value.groups ?? [];
  if (!Array.isArray(groups) || !groups.every((g) => typeof g === 'string')) {
    return 'request.userInfo.groups must be an array of strings';
  }
  return { username, groups };
}

// undefined means "present with the wrong type"; absent or null reads as ''.
function optionalString(obj: Record<string, unknown>, key: string): string | undefined {
  const value = obj[key];
  if (value === undefined || value === null) return '';
  return typeof value === 'string' ? value : undefined;
}

// undefined means "present with the wrong type"; absent or null reads as null.
function optionalObject(obj: Record<string, unknown>, key: string): JsonObject | null | undefined {
  const value = obj[key];
  if (value === undefined || value === null) return null;
  // A parsed JSON body only holds JSON values, so an object in it is a JsonObject.
  return isRecord(value) ? (value as JsonObject) : undefined;
}

function isOperation(value: unknown): value is AdmissionOperation {
  return typeof value === 'string' && (admissionOperations as readonly string[]).includes(value);
}

// Type only, never the value: request content must not reach the log through an error message.
function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value === '') return 'an empty string';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

// apiVersion and kind are quoted: "got admission.k8s.io/v1beta1" is the most useful hint there is.
function quote(value: unknown): string {
  return typeof value === 'string' && value !== '' && value.length <= 64
    ? JSON.stringify(value)
    : describe(value);
}
