import { pino } from 'pino';
import type { DestinationStream, Logger as PinoLogger, LevelWithSilentOrString } from 'pino';

export type Logger = PinoLogger;

export interface LoggerOptions {
  readonly level: LevelWithSilentOrString;
  /** Where the JSON lines go; stdout when omitted. Tests pass a stream to capture them. */
  readonly destination?: DestinationStream;
}

/**
 * Paths whose values may be Secret content or whole Kubernetes objects. Code should never log these in
 * the first place (log names and counts, not objects); redaction is the net under that rule. Wildcards
 * cover a sensitive field nested one or two levels deep under whatever key a caller chose.
 */
export const redactPaths: readonly string[] = [
  ...['data', 'stringData', 'binaryData'].flatMap((field) => [field, `*.${field}`, `*.*.${field}`]),
  ...['object', 'oldObject'].flatMap((field) => [`request.${field}`, `*.request.${field}`]),
  'headers.authorization',
  '*.headers.authorization',
];

export const redactedPlaceholder = '[redacted]';

/**
 * A pino logger with the field names every wave log line shares: `level` as a label ("info"), `time` as
 * ISO 8601, `msg`, `err` (serialised with message and stack), plus `name: "wave"`, `pid`, `hostname`.
 */
export function createLogger(opts: LoggerOptions): Logger {
  const options = {
    name: 'wave',
    level: opts.level,
    messageKey: 'msg',
    errorKey: 'err',
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
    serializers: { err: pino.stdSerializers.err },
    redact: { paths: [...redactPaths], censor: redactedPlaceholder },
  };
  return opts.destination === undefined ? pino(options) : pino(options, opts.destination);
}
