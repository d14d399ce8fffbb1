// Flags with environment fallbacks, parsed once into a typed object. A command declares its flags as a
// table; parsing, validation and --help all come from that table, so they cannot drift apart.

export type FlagType = 'string' | 'int' | 'bool' | 'duration' | 'list';

interface FlagValueTypes {
  string: string;
  int: number;
  bool: boolean;
  /** milliseconds */
  duration: number;
  list: readonly string[];
}

export interface FlagSpec<T extends FlagType = FlagType> {
  type: T;
  help: string;
  /** Environment variable read when the flag is not given. */
  env?: string;
  default: FlagValueTypes[T];
  /** One-letter alias, as in -f. */
  short?: string;
}

export type FlagTable = Record<string, FlagSpec>;

export type FlagValues<F extends FlagTable> = {
  [K in keyof F]: F[K] extends FlagSpec<infer T> ? FlagValueTypes[T] : never;
};

export class UsageError extends Error {
  override name = 'UsageError';
}

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Go-style durations as operators write them: 500ms, 1s, 10m, 1h30m, plus days for certificate lifetimes
 * (90d, 1825d); a bare number means seconds.
 */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) {
    return Number(trimmed) * 1000;
  }
  const parts = [...trimmed.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== trimmed) {
    throw new Error(`"${text}" is not a duration (examples: 500ms, 1s, 10m, 1h30m, 90d)`);
  }
  return parts.reduce((sum, p) => sum + Number(p[1]) * (units[p[2] ?? 's'] ?? 0), 0);
}

function convert(name: string, spec: FlagSpec, raw: string): FlagValueTypes[FlagType] {
  switch (spec.type) {
    case 'string':
      return raw;
    case 'int': {
      if (!/^-?\d+$/.test(raw.trim())) {
        throw new UsageError(`--${name} takes a whole number, not "${raw}"`);
      }
      return Number(raw);
    }
    case 'bool': {
      const v = raw.trim().toLowerCase();
      if (['true', '1', 'yes', ''].includes(v)) return true;
      if (['false', '0', 'no'].includes(v)) return false;
      throw new UsageError(`--${name} takes true or false, not "${raw}"`);
    }
    case 'duration':
      try {
        return parseDuration(raw);
      } catch (err) {
        throw new UsageError(`--${name}: ${(err as Error).message}`, { cause: err });
      }
    case 'list':
      return raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
  }
}

/**
 * Parses `args` against the table: `--name value`, `--name=value`, `-x value`, bare `--bool-flag`, and
 * `--no-bool-flag`. Unset flags fall back to their environment variable, then their default.
 * Returns the values and the positional arguments.
 */
export function parseFlags<F extends FlagTable>(
  table: F,
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): { values: FlagValues<F>; positionals: string[] } {
  const given = new Map<string, string>();
  const positionals: string[] = [];
  const byShort = new Map(
    Object.entries(table)
      .filter(([, s]) => s.short !== undefined)
      .map(([n, s]) => [s.short, n]),
  );
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--') {
      positionals.push(...args.slice(i + 1));
      break;
    }
    let name: string | undefined;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq === -1 ? undefined : arg.slice(eq + 1);
      if (!(name in table) && name.startsWith('no-') && table[name.slice(3)]?.type === 'bool') {
        given.set(name.slice(3), 'false');
        continue;
      }
    } else if (/^-[a-zA-Z]$/.test(arg)) {
      name = byShort.get(arg.slice(1));
      if (name === undefined) throw new UsageError(`unknown flag ${arg}`);
    } else {
      positionals.push(arg);
      continue;
    }
    const spec = table[name];
    if (spec === undefined) throw new UsageError(`unknown flag --${name}`);
    if (inline === undefined) {
      if (spec.type === 'bool') {
        inline = 'true';
      } else {
        const next = args[i + 1];
        if (next === undefined) throw new UsageError(`--${name} needs a value`);
        inline = next;
        i++;
      }
    }
    given.set(name, inline);
  }
  const values: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(table)) {
    const fromFlag = given.get(name);
    const fromEnv = spec.env === undefined ? undefined : env[spec.env];
    if (fromFlag !== undefined) {
      values[name] = convert(name, spec, fromFlag);
    } else if (fromEnv !== undefined && fromEnv !== '') {
      try {
        values[name] = convert(name, spec, fromEnv);
      } catch (err) {
        throw new UsageError(`${spec.env} (for --${name}): ${(err as Error).message}`, { cause: err });
      }
    } else {
      values[name] = spec.default;
    }
  }
  return { values: values as FlagValues<F>, positionals };
}

function formatDefault(spec: FlagSpec): string {
  const d = spec.default;
  if (spec.type === 'duration' && typeof d === 'number') {
    if (d === 0) return '0s';
    // The largest unit that divides the value: 90d, 10m, 2s, 500ms.
    const [name, size] = Object.entries(units)
      .sort(([, a], [, b]) => b - a)
      .find(([, size]) => d % size === 0) ?? ['ms', 1];
    return `${d / size}${name}`;
  }
  if (Array.isArray(d)) return d.join(',');
  return String(d);
}

/** --help text for a flag table: one block per flag with its type, default and environment variable. */
export function flagHelp(table: FlagTable): string {
  return Object.entries(table)
    .map(([name, spec]) => {
      const short = spec.short === undefined ? '    ' : `-${spec.short}, `;
      const value = spec.type === 'bool' ? '' : ` <${spec.type}>`;
      const facts = [
        formatDefault(spec) === '' || spec.type === 'bool' ? undefined : `default ${formatDefault(spec)}`,
        spec.env === undefined ? undefined : `env ${spec.env}`,
      ].filter((f) => f !== undefined);
      const tail = facts.length > 0 ? ` (${facts.join('; ')})` : '';
      return `  ${short}--${name}${value}\n          ${spec.help}${tail}`;
    })
    .join('\n');
}
