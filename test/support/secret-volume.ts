// A directory laid out like a mounted Secret volume: tls.crt -> ..data/tls.crt, ..data -> ..<version>/.
// An update writes a new version directory and renames a new ..data symlink over the old one, as the
// kubelet does, so a reader sees either the old files or the new ones, never a mix.
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SecretVolume {
  readonly dir: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** Publishes a new version of the files atomically. */
  readonly publish: (files: Readonly<Record<string, string>>) => Promise<void>;
  readonly remove: () => Promise<void>;
}

export async function secretVolume(): Promise<SecretVolume> {
  const dir = await mkdtemp(join(tmpdir(), 'wave-tls-'));
  let version = 0;
  const linked = new Set<string>();
  return {
    dir,
    certFile: join(dir, 'tls.crt'),
    keyFile: join(dir, 'tls.key'),
    async publish(files) {
      version += 1;
      const versionDir = `..v${version}`;
      await mkdir(join(dir, versionDir));
      for (const [name, content] of Object.entries(files)) {
        await writeFile(join(dir, versionDir, name), content);
      }
      await symlink(versionDir, join(dir, '..data_tmp'));
      await rename(join(dir, '..data_tmp'), join(dir, '..data'));
      for (const name of Object.keys(files)) {
        if (linked.has(name)) continue;
        await symlink(`..data/${name}`, join(dir, name));
        linked.add(name);
      }
      if (version > 2) await rm(join(dir, `..v${version - 2}`), { recursive: true, force: true });
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
