// The frame every long-running command shares: parse its flags, answer --help, run with a logger;
// usage errors exit 2 with the usage, anything else exits 1 with one clear line.
import { apiErrorMessage } from '../kube/client.ts';
import { createLogger } from '../log.ts';
import type { Logger } from '../log.ts';
import { UsageError } from './flags.ts';
import type { CliIo } from './main.ts';

/** Parses, answers --help, runs with a logger; usage errors exit 2, anything else 1. */
export async function runLogged<V extends { help: boolean; 'log-level': string }>(
  label: string,
  usage: string,
  parse: () => V,
  run: (values: V, logger: Logger) => Promise<void>,
  io: CliIo,
): Promise<number> {
  let values: V;
  try {
    values = parse();
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.stderr(`${label}: ${err.message}\n\n${usage}`);
    return 2;
  }
  if (values.help) {
    io.stdout(usage);
    return 0;
  }
  const logger = createLogger({ level: values['log-level'] });
  try {
    await run(values, logger);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`${label}: ${err.message}\n`);
      return 2;
    }
    const message = apiErrorMessage(err);
    logger.error({ err }, `${label} failed: ${message}`);
    io.stderr(`${label}: ${message}\n`);
    return 1;
  }
}
