// How a long-running command's process ends, whatever happens: SIGTERM or SIGINT asks for a graceful
// shutdown and a second one exits at once; an uncaught exception or unhandled rejection is logged and
// shuts down the same way, ending in exit status 1; and once the command has closed what it started, the
// process exits even if a hung request or a stray timer would keep it up. node runs as PID 1 in the
// image, where a signal without a handler does nothing, so all of this is done here.
import { constants } from 'node:os';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';

/** After the command returned, how long the process may take to exit by itself before it is made to. */
export const exitGraceMs = 1000;

export interface ProcessEnd {
  /** Aborts at the first signal (reason: its name) or fatal error (reason: an Error saying so). */
  readonly signal: AbortSignal;
  /** Rethrows a fatal error that came after the shutdown had begun, so the exit status says so. */
  throwIfFatal(): void;
  /** The command is done: exit within exitGraceMs even if something still holds the event loop. */
  exitSoon(): void;
}

export function endOfProcess(logger: Logger): ProcessEnd {
  const controller = new AbortController();
  let fatal: Error | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (!controller.signal.aborted) {
      controller.abort(signal);
      return;
    }
    logger.warn({ signal }, 'second signal while shutting down: exiting at once');
    process.exit(128 + constants.signals[signal]);
  };
  const onFatal = (err: unknown) => {
    logger.fatal({ err }, 'uncaught error: shutting down');
    fatal ??= new Error(`internal error: ${errorMessage(err)}`, { cause: err });
    if (!controller.signal.aborted) controller.abort(fatal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('uncaughtException', onFatal);
  process.on('unhandledRejection', onFatal);
  return {
    signal: controller.signal,
    throwIfFatal: () => {
      if (fatal !== undefined && fatal !== controller.signal.reason) throw fatal;
    },
    exitSoon: () => {
      setTimeout(() => {
        logger.warn(
          { open: process.getActiveResourcesInfo() },
          `still running ${String(exitGraceMs)} ms after shutting down: exiting`,
        );
        process.exit();
      }, exitGraceMs).unref();
    },
  };
}
