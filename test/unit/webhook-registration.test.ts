// The webhook's matchCondition and the core's opt-in rule cannot drift apart: the CEL is rendered from the
// core's list, the manifests carry it verbatim, and a model of the apiserver's CEL sends wave exactly the
// values the core acts on. No cluster: test/integration/webhook.test.ts runs the real thing.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { parse } from 'yaml';
import { optInStatus } from '../../src/core/admission.ts';
import { optInAnnotation, optInNearMissValues, optInValue } from '../../src/core/annotations.ts';
import { atTemplate, builtinKinds, workloadKinds } from '../../src/core/kinds.ts';
import type { WorkloadKind } from '../../src/core/kinds.ts';
import {
  celString,
  celStringList,
  notFromWaveCondition,
  optInCondition,
  webhookConfiguration,
} from '../../src/webhook/registration.ts';
import { deploymentObject, workload } from './support/workloads.ts';

const root = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

/** A single-quoted CEL string literal, unquoted by the escapes of the CEL language definition. */
function unquoteCel(literal: string): string {
  if (!/^'(?:[^'\\\n\r]|\\.)*'$/su.test(literal)) throw new Error(`not a CEL string literal: ${literal}`);
  const simple: Record<string, string> = {
    '\\': '\\',
    "'": "'",
    '"': '"',
    '`': '`',
    '?': '?',
    a: '\x07',
    b: '\b',
    f: '\f',
    n: '\n',
    r: '\r',
    t: '\t',
    v: '\v',
  };
  return literal
    .slice(1, -1)
    .replace(/\\(?:x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|([0-3][0-7]{2})|(.))/gsu, (...m) => {
      const [, x, u, U, octal, other] = m as (string | undefined)[];
      const hex = x ?? u ?? U;
      if (hex !== undefined) return String.fromCodePoint(parseInt(hex, 16));
      if (octal !== undefined) return String.fromCodePoint(parseInt(octal, 8));
      const char = simple[other ?? ''];
      if (char === undefined) throw new Error(`invalid CEL escape \\${other} in ${literal}`);
      return char;
    });
}

const stringLiteral = String.raw`'(?:[^'\\]|\\.)*'`;
const field = String.raw`object(?:\.[A-Za-z_][A-Za-z0-9_]*)+`;
const list = String.raw`\[((?:${stringLiteral}(?:, )?)*)\]`;
/** optInCondition's one shape; a change to it must come with a change to celSends() below. */
const conditionShape = new RegExp(
  String.raw`^\(has\(object\.metadata\.annotations\) && (${stringLiteral}) in object\.metadata\.annotations` +
    String.raw` && object\.metadata\.annotations\[(${stringLiteral})\]\.trim\(\)\.lowerAscii\(\) in ${list}\)` +
    String.raw` \|\| \(!\(has\(object\.metadata\.annotations\) && (${stringLiteral}) in object\.metadata\.annotations\) && \((.*)\)\)$`,
  'su',
);
const templateClause = new RegExp(
  String.raw`^\(((?:has\(${field}\) && )+)(${stringLiteral}) in (${field}) && \3\[(${stringLiteral})\]\.trim\(\)\.lowerAscii\(\) in ${list}\)$`,
  'su',
);

function literals(text: string): string[] {
  const found = text.match(new RegExp(stringLiteral, 'gsu')) ?? [];
  if (found.join(', ') !== text) throw new Error(`not a plain list of string literals: [${text}]`);
  return found.map(unquoteCel);
}

interface Condition {
  key: string;
  keys: string[];
  values: string[];
  /** Each template clause: the annotations it reads (dotted, below object), and its values. */
  templates: { path: string[]; guards: string[]; values: string[] }[];
}

function parseCondition(expression: string): Condition {
  const match = conditionShape.exec(expression);
  if (match === null) throw new Error(`optInCondition has an unexpected shape: ${expression}`);
  const [, key = '', keyAgain = '', values = '', keyOnMetadata = '', rest = ''] = match;
  const templates = rest.split(' || ').map((clause) => {
    const m = templateClause.exec(clause);
    if (m === null) throw new Error(`a template clause has an unexpected shape: ${clause}`);
    const [, guards = '', k = '', at = '', kAgain = '', vs = ''] = m;
    if (unquoteCel(k) !== unquoteCel(key) || unquoteCel(kAgain) !== unquoteCel(key)) {
      throw new Error(`a template clause reads another annotation: ${clause}`);
    }
    return {
      path: at.split('.').slice(1),
      guards: [...guards.matchAll(/has\(([^)]*)\)/g)].map((g) => g[1] ?? ''),
      values: literals(vs),
    };
  });
  return {
    key: unquoteCel(key),
    keys: [keyAgain, keyOnMetadata].map(unquoteCel),
    values: literals(values),
    templates,
  };
}

// cel-go's trim() is Go's strings.TrimSpace: unicode.IsSpace, spelled out here rather than taken from the
// core, so the comparison below is not the core against itself.
const goSpace = new Set([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005,
  0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]);

// By code point, as Go strings are read by rune.
function celTrim(value: string): string {
  const chars = Array.from(value);
  const isSpace = (c: string | undefined) => c !== undefined && goSpace.has(c.codePointAt(0) ?? -1);
  while (isSpace(chars[0])) chars.shift();
  while (isSpace(chars.at(-1))) chars.pop();
  return chars.join('');
}

function celLowerAscii(value: string): string {
  return Array.from(value)
    .map((c) => (c >= 'A' && c <= 'Z' ? String.fromCharCode(c.charCodeAt(0) + 32) : c))
    .join('');
}

/** The value at a dotted path of fields, as CEL's field selection reads a map. */
function at(object: unknown, path: readonly string[]): unknown {
  let current = object;
  for (const segment of path) {
    if (typeof current !== 'object' || current === null || !(segment in current)) return undefined;
    current = (current as Record<string, unknown>)[segment];
  }
  return current;
}

/**
 * What the apiserver evaluates optInCondition to for an object: the metadata's annotation when it is there,
 * else any template clause whose guards all hold.
 */
function celSendsObject(object: Record<string, unknown>): boolean {
  const { key, values, templates } = parseCondition(optInCondition);
  const compare = (value: unknown) =>
    typeof value === 'string' && values.includes(celLowerAscii(celTrim(value)));
  const own = at(object, ['metadata', 'annotations']) as Record<string, unknown> | undefined;
  if (own !== undefined && key in own) return compare(own[key]);
  return templates.some((clause) => {
    const guarded = clause.guards.every((guard) => at(object, guard.split('.').slice(1)) !== undefined);
    const annotations = at(object, clause.path) as Record<string, unknown> | undefined;
    return (
      guarded &&
      annotations !== undefined &&
      key in annotations &&
      clause.values.includes(celLowerAscii(celTrim(String(annotations[key])))) &&
      compare(annotations[key])
    );
  });
}

/** What the apiserver evaluates optInCondition to for a workload with these annotations. */
function celSends(annotations: Record<string, string> | undefined): boolean {
  return celSendsObject(deploymentObject(annotations === undefined ? {} : { annotations }));
}

function coreActsOnObject(object: Record<string, unknown>): boolean {
  const status = optInStatus(workload(object));
  return status.optedIn || status.nearMiss !== undefined;
}

function coreActsOn(annotations: Record<string, string>): boolean {
  return coreActsOnObject(deploymentObject({ annotations }));
}

t.test('celString quotes for CEL: quotes, backslashes and anything outside printable ASCII', (t) => {
  t.equal(celString('wave.pusher.com/update-on-config-change'), "'wave.pusher.com/update-on-config-change'");
  t.equal(celString(`it's \\ "x"`), String.raw`'it\'s \\ "x"'`);
  t.equal(celString('a\nb\u00e9\u{1f600}'), String.raw`'a\u000ab\u00e9\U0001f600'`);
  for (const value of [
    '',
    "'",
    '\\',
    "\\'",
    'tab\there',
    'line\r\n',
    'ümlaut',
    '\u{1f600}',
    '\u2028',
    '\x7f',
  ]) {
    t.equal(unquoteCel(celString(value)), value, celString(value));
  }
  t.equal(celStringList(['a', "b'"]), String.raw`['a', 'b\'']`);
  t.end();
});

t.test('optInCondition tests the opt-in annotation against the opt-in and every near miss', (t) => {
  const { key, keys, values, templates } = parseCondition(optInCondition);
  t.equal(key, optInAnnotation, 'the annotation it checks for');
  t.same(keys, [optInAnnotation, optInAnnotation], 'the annotation it reads');
  t.strictSame(
    [...values].sort(),
    [...new Set([optInValue, ...optInNearMissValues])].sort(),
    'the opt-in value and the near misses of the core, nothing else',
  );
  for (const value of optInNearMissValues) t.ok(values.includes(value), `sends ${JSON.stringify(value)}`);
  t.ok(values.includes(optInValue), `sends the opt-in ${JSON.stringify(optInValue)}`);
  t.equal(new Set(values).size, values.length, 'no value twice');
  for (const clause of templates) t.strictSame(clause.values, values, 'the same values on the template');
  t.strictSame(
    templates.map((c) => c.path.join('.')),
    [...new Set(builtinKinds.map((k) => [...k.templatePath, 'metadata', 'annotations'].join('.')))],
    'one template clause per distinct template path of the kinds table',
  );
  for (const clause of templates) {
    t.strictSame(
      clause.guards,
      clause.path.map((_, i) => ['object', ...clause.path.slice(0, i + 1)].join('.')),
      `every step of ${clause.path.join('.')} is guarded by has()`,
    );
  }
  t.end();
});

/** A workload of `kind` with the annotations on its metadata and on its pod template, where the kind keeps it. */
function objectOf(
  kind: WorkloadKind,
  annotations: Record<string, string> | undefined,
  templateAnnotations: Record<string, string> | undefined,
): Record<string, unknown> {
  return {
    apiVersion: `${kind.group}/${kind.version}`,
    kind: kind.kind,
    metadata: { name: 'web', namespace: 'shop', ...(annotations && { annotations }) },
    ...atTemplate(kind, {
      metadata: { labels: { app: 'web' }, ...(templateAnnotations && { annotations: templateAnnotations }) },
      spec: { containers: [{ name: 'web', image: 'web' }] },
    }),
  };
}

t.test(
  'for every kind, the apiserver sends an opt-in on the pod template exactly as the core reads it',
  (t) => {
    const values = ['true', 'True', ' yes ', 'only-annotated', 'false', 'nope', ''];
    for (const kind of workloadKinds) {
      for (const onMetadata of [undefined, ...values]) {
        for (const onTemplate of [undefined, ...values]) {
          const object = objectOf(
            kind,
            onMetadata === undefined ? undefined : { [optInAnnotation]: onMetadata },
            onTemplate === undefined ? undefined : { [optInAnnotation]: onTemplate },
          );
          t.equal(
            celSendsObject(object),
            coreActsOnObject(object),
            `${kind.kind}: metadata ${JSON.stringify(onMetadata)}, template ${JSON.stringify(onTemplate)}`,
          );
        }
      }
    }
    t.ok(
      celSendsObject(objectOf(kind('CronJob'), undefined, { [optInAnnotation]: 'true' })),
      'a CronJob opted in on its Job template is sent',
    );
    t.end();
  },
);

function kind(name: string): WorkloadKind {
  const found = workloadKinds.find((k) => k.kind === name);
  if (found === undefined) throw new Error(`no kind ${name}`);
  return found;
}

t.test('the apiserver sends wave exactly the opt-in values the core acts on', (t) => {
  const spaces = [' ', '\t', '\n', '\u00a0', '\u0085', '\u2003', '\u3000'];
  const candidates = new Set<string>(['', 'false', 'no', 'off', '0', 'tru', 'truee', 'tr ue']);
  for (const value of [optInValue, ...optInNearMissValues]) {
    candidates.add(value);
    candidates.add(value.toUpperCase());
    candidates.add(value.charAt(0).toUpperCase() + value.slice(1));
    for (const space of spaces) candidates.add(`${space}${value}${space}`);
    // Where JavaScript's trim() and toLowerCase() part from CEL's trim() and lowerAscii().
    candidates.add(`\ufeff${value}`);
    candidates.add(`${value}\u200b`);
    candidates.add(`\u0130${value}`);
  }
  for (const value of candidates) {
    const annotations = { [optInAnnotation]: value };
    t.equal(celSends(annotations), coreActsOn(annotations), celString(value));
  }
  t.notOk(celSends(undefined), 'no annotations: not sent');
  t.notOk(celSends({ other: 'true' }), 'another annotation: not sent');
  for (const value of optInNearMissValues) {
    if (value === optInValue) continue;
    t.ok(celSends({ [optInAnnotation]: value }), `the near miss ${JSON.stringify(value)} is sent`);
  }
  t.end();
});

/** The user of the base's ServiceAccount wave in wave-system. */
const ownUsername = 'system:serviceaccount:wave-system:wave';

/** The matchConditions block of a manifest, parsed; it must not depend on the chart's templating. */
function matchConditionsOf(text: string, file: string): unknown {
  const lines = text.split('\n');
  const start = lines.findIndex((line) => /^\s*matchConditions:\s*$/.test(line));
  if (start === -1 || lines.findIndex((l, i) => i > start && /^\s*matchConditions:/.test(l)) !== -1) {
    throw new Error(`${file}: expected one matchConditions block`);
  }
  const indent = (line: string) => line.length - line.trimStart().length;
  const keyIndent = indent(lines[start] ?? '');
  const block = [lines[start] ?? ''];
  for (const line of lines.slice(start + 1)) {
    const inBlock =
      line.trim() === '' ||
      indent(line) > keyIndent ||
      (indent(line) === keyIndent && line.trimStart().startsWith('- '));
    if (!inBlock) break;
    block.push(line);
  }
  const yaml = block
    .map((line) => line.slice(Math.min(keyIndent, indent(line))))
    .join('\n')
    // The one templated value: the chart's own user, which a release named wave in wave-system renders so.
    .replaceAll('{{ include "wave.ownUsername" . }}', ownUsername);
  if (yaml.includes('{{')) throw new Error(`${file}: matchConditions must not be templated`);
  return (parse(yaml) as { matchConditions: unknown }).matchConditions;
}

const expected = webhookConfiguration({
  name: 'wave',
  target: { service: { namespace: 'wave-system', name: 'wave', port: 443 } },
  path: '/mutate',
  caBundlePem: '',
  namespaces: [],
  excludedNamespaces: ['kube-system', 'wave-system'],
  timeoutSeconds: 5,
  ownUsername,
}).webhooks?.[0]?.matchConditions;

for (const file of [
  'manifests/base/mutating-webhook-configuration.yaml',
  'manifests/helm/wave/templates/mutating-webhook-configuration.yaml',
]) {
  t.test(`${file} carries optInCondition verbatim`, (t) => {
    t.strictSame(
      matchConditionsOf(read(file), file),
      expected,
      `regenerate it: expression: ${JSON.stringify(optInCondition)}`,
    );
    t.end();
  });
}

t.test('the base parses to the same matchConditions as its block', (t) => {
  const file = 'manifests/base/mutating-webhook-configuration.yaml';
  const object = parse(read(file)) as { webhooks: { matchConditions: unknown }[] };
  t.strictSame(object.webhooks[0]?.matchConditions, expected);
  t.end();
});

t.test("not-from-wave: wave's own user is left out, after the opt-in, only when named", (t) => {
  const config = (ownUsername?: string) =>
    webhookConfiguration({
      name: 'wave',
      target: { url: 'https://127.0.0.1:9443' },
      path: '/mutate',
      caBundlePem: '',
      namespaces: [],
      excludedNamespaces: ['kube-system'],
      timeoutSeconds: 5,
      ...(ownUsername === undefined ? {} : { ownUsername }),
    }).webhooks?.[0]?.matchConditions;
  t.strictSame(config(), [{ name: 'opted-in', expression: optInCondition }], 'no user named: none left out');
  t.strictSame(config('system:serviceaccount:ops:wave'), [
    { name: 'opted-in', expression: optInCondition },
    { name: 'not-from-wave', expression: "request.userInfo.username != 'system:serviceaccount:ops:wave'" },
  ]);
  t.equal(
    notFromWaveCondition("it's"),
    "request.userInfo.username != 'it\\'s'",
    'the name is a CEL string literal',
  );
  t.end();
});
