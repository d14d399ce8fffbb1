// The flags that change what counts (src/core/counting.ts), shared by every command that decides it:
// `wave serve`, `wave explain` and `wave hash`, so that the three agree for the same flags.
import { defaultCounting, ignorableResources } from '../core/counting.ts';
import { LabelSelectorError, parseLabelSelector } from '../core/label-selector.ts';
import type { CountingOptions } from '../core/counting.ts';
import type { ChildKind } from '../core/objects.ts';
import { UsageError } from './flags.ts';
import type { FlagTable } from './flags.ts';

export const countingFlags = {
  'reloader-annotations': {
    type: 'bool',
    env: 'WAVE_RELOADER_ANNOTATIONS',
    default: false,
    help: "also honour Stakater Reloader's annotations (reloader.stakater.com/auto and the rest: see README, Migrating from Reloader); off, so wave and Reloader never both act on one cluster by accident",
  },
  'auto-reload-all': {
    type: 'bool',
    env: 'WAVE_AUTO_RELOAD_ALL',
    default: false,
    help: 'with --reloader-annotations: every workload counts as reloader.stakater.com/auto "true" unless it says "false" (Reloader\'s --auto-reload-all)',
  },
  'resources-to-ignore': {
    type: 'list',
    env: 'WAVE_RESOURCES_TO_IGNORE',
    default: [],
    help: `kinds of objects that never count: ${Object.keys(ignorableResources).join(' or ')} (Reloader's --resources-to-ignore)`,
  },
  'resource-label-selector': {
    type: 'string',
    env: 'WAVE_RESOURCE_LABEL_SELECTOR',
    default: '',
    help: "only ConfigMaps and Secrets whose labels this selector selects count, e.g. 'reload=true' (kubectl -l syntax; Reloader's --resource-label-selector); empty: all",
  },
} as const satisfies FlagTable;

/** The typed options of the counting flags; a usage error names what is wrong. */
export function countingOptions(values: {
  readonly 'reloader-annotations': boolean;
  readonly 'auto-reload-all': boolean;
  readonly 'resources-to-ignore': readonly string[];
  readonly 'resource-label-selector': string;
}): CountingOptions {
  if (values['auto-reload-all'] && !values['reloader-annotations']) {
    throw new UsageError('--auto-reload-all needs --reloader-annotations');
  }
  const resourcesToIgnore = values['resources-to-ignore'].map((name): ChildKind => {
    const kind = ignorableResources[name];
    if (kind === undefined) {
      throw new UsageError(
        `--resources-to-ignore takes ${Object.keys(ignorableResources).join(' and ')}, not "${name}"`,
      );
    }
    return kind;
  });
  let selector;
  try {
    selector = parseLabelSelector(values['resource-label-selector']);
  } catch (err) {
    if (!(err instanceof LabelSelectorError)) throw err;
    throw new UsageError(`--resource-label-selector: ${err.message}`);
  }
  const resourceLabelSelector = selector.requirements.length === 0 ? undefined : selector;
  if (
    !values['reloader-annotations'] &&
    resourcesToIgnore.length === 0 &&
    resourceLabelSelector === undefined
  ) {
    return defaultCounting;
  }
  return {
    reloaderAnnotations: values['reloader-annotations'],
    autoReloadAll: values['auto-reload-all'],
    resourcesToIgnore,
    ...(resourceLabelSelector === undefined ? {} : { resourceLabelSelector }),
  };
}
