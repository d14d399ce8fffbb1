// `wave certs local`: the same planner over a directory instead of a Secret, for local runs. The files are
// named like the Secret's keys (a directory laid out as the kubelet mounts the Secret), so running it again
// keeps a valid pair, renews one that is due, and replaces garbage.
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.ts';
import { reportPlan } from './rotate.ts';
import { planRotation, secretKeys } from './rotation.ts';
import type { RotationOptions, RotationPlan } from './rotation.ts';

const privateKeys = new Set<string>([secretKeys.key, secretKeys.caKey, secretKeys.nextCaKey]);

export async function writeLocalCertificates(
  dir: string,
  rotation: RotationOptions,
  logger: Logger,
  now: Date = new Date(),
): Promise<RotationPlan> {
  const data: Record<string, string> = {};
  for (const key of Object.values(secretKeys)) {
    const text = await readFile(join(dir, key), 'utf8').catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    });
    if (text !== undefined) data[key] = text;
  }
  // No webhook configuration and no one else reading the files: a CA rotation needs no overlap here.
  const plan = planRotation({
    secret: Object.keys(data).length === 0 ? undefined : { data, annotations: {} },
    webhooks: undefined,
    options: { ...rotation, overlapMs: 0 },
    now,
  });
  if (plan.secretChanged) {
    await mkdir(dir, { recursive: true });
    for (const key of Object.values(secretKeys)) {
      const next = plan.secret.data[key];
      if (next === undefined) {
        await rm(join(dir, key), { force: true });
      } else if (next !== data[key]) {
        // Written aside and renamed, so a server polling the directory never reads half a file.
        const tmp = join(dir, `.${key}.tmp`);
        await writeFile(tmp, next, { mode: privateKeys.has(key) ? 0o600 : 0o644 });
        await rename(tmp, join(dir, key));
      }
    }
  }
  reportPlan(logger, { dir }, plan, false);
  return plan;
}
