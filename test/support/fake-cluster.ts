// An in-memory cluster behind the fake apiserver: it keeps objects, serves their lists, watches (replaying
// what happened after the watch's resourceVersion, as the apiserver's watch cache does) and GETs, and
// counts every GET of a single object. Enough for the sync loop's watches and reads, with no etcd.
import { FakeApiServer, WatchStream } from './fake-apiserver.ts';
import type { FakeRequest, FakeResponse } from './fake-apiserver.ts';

type Json = Record<string, unknown>;

interface Change {
  readonly resourceVersion: number;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly object: Json;
}

interface Watcher {
  readonly namespace: string | undefined;
  readonly stream: WatchStream;
}

/** `/apis/apps/v1/namespaces/shop/deployments/web` → resource `apps/v1/deployments`, namespace, name. */
function parsePath(path: string): { resource: string; namespace?: string; name?: string } | undefined {
  const match = /^\/(?:api|apis\/([^/]+))\/([^/]+)(?:\/namespaces\/([^/]+))?\/([^/]+)(?:\/([^/]+))?$/.exec(
    path,
  );
  if (match === null) return undefined;
  const [, group, version = '', namespace, plural = '', name] = match;
  return {
    resource: `${group === undefined ? '' : `${group}/`}${version}/${plural}`,
    ...(namespace === undefined ? {} : { namespace }),
    ...(name === undefined ? {} : { name }),
  };
}

function metadataOf(object: Json): Json {
  return (object['metadata'] ?? {}) as Json;
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const base: Json =
    typeof target === 'object' && target !== null && !Array.isArray(target) ? (target as Json) : {};
  const result = new Map(Object.entries(base));
  for (const [key, value] of Object.entries(patch as Json)) {
    if (value === null) result.delete(key);
    else result.set(key, mergePatch(result.get(key), value));
  }
  return Object.fromEntries(result);
}

export class FakeCluster {
  readonly server: FakeApiServer;
  /** resource → `namespace/name` → object. */
  readonly #objects = new Map<string, Map<string, Json>>();
  readonly #history = new Map<string, Change[]>();
  readonly #watchers = new Map<string, Set<Watcher>>();
  #revision = 100;
  /** GETs of single objects, as `resource namespace/name`. */
  readonly gets: string[] = [];

  private constructor(server: FakeApiServer) {
    this.server = server;
  }

  static async start(): Promise<FakeCluster> {
    const ready: { cluster?: FakeCluster } = {};
    const server = await FakeApiServer.start((request, response) => {
      ready.cluster?.respond(request, response);
    });
    ready.cluster = new FakeCluster(server);
    return ready.cluster;
  }

  /** Creates or replaces an object (`resource` as `apps/v1/deployments` or `v1/configmaps`). */
  put(resource: string, object: Json): string {
    const meta = metadataOf(object);
    const key = `${String(meta['namespace'])}/${String(meta['name'])}`;
    const objects = this.#store(resource);
    const existed = objects.has(key);
    const resourceVersion = String((this.#revision += 1));
    const stored: Json = {
      ...object,
      metadata: { uid: `uid-${String(meta['name'])}`, ...meta, resourceVersion },
    };
    objects.set(key, stored);
    this.#publish(resource, {
      resourceVersion: this.#revision,
      type: existed ? 'MODIFIED' : 'ADDED',
      object: stored,
    });
    return resourceVersion;
  }

  /** Applies a merge patch to an existing object; resolves with its new resourceVersion. */
  patch(resource: string, namespace: string, name: string, body: unknown): string {
    const current = this.get(resource, namespace, name);
    if (current === undefined) throw new Error(`${resource} ${namespace}/${name} not found`);
    return this.put(resource, mergePatch(current, body) as Json);
  }

  delete(resource: string, namespace: string, name: string): void {
    const objects = this.#store(resource);
    const object = objects.get(`${namespace}/${name}`);
    if (object === undefined) return;
    objects.delete(`${namespace}/${name}`);
    this.#revision += 1;
    this.#publish(resource, { resourceVersion: this.#revision, type: 'DELETED', object });
  }

  get(resource: string, namespace: string, name: string): Json | undefined {
    return this.#objects.get(resource)?.get(`${namespace}/${name}`);
  }

  async close(): Promise<void> {
    for (const watchers of this.#watchers.values()) for (const w of watchers) w.stream.end();
    await this.server.close();
  }

  private respond(request: FakeRequest, response: FakeResponse): void {
    // What wave serve's start-up asks before anything else.
    if (request.path === '/version') {
      response.json(200, { major: '1', minor: '37', gitVersion: 'v1.37.0-fake' });
      return;
    }
    const parsed = parsePath(request.path);
    if (parsed === undefined) {
      response.status(404, 'NotFound', `no route ${request.path}`);
      return;
    }
    const { resource, namespace, name } = parsed;
    if (name !== undefined) {
      this.gets.push(`${resource} ${namespace ?? ''}/${name}`);
      const object = namespace === undefined ? undefined : this.get(resource, namespace, name);
      if (object === undefined) response.status(404, 'NotFound', `${name} not found`);
      else response.json(200, object);
      return;
    }
    const inScope = (object: Json) =>
      namespace === undefined || metadataOf(object)['namespace'] === namespace;
    if (!request.watch) {
      response.json(200, {
        kind: 'List',
        apiVersion: 'v1',
        metadata: { resourceVersion: String(this.#revision) },
        items: [...this.#store(resource).values()].filter(inScope),
      });
      return;
    }
    const since = Number(request.query.get('resourceVersion') ?? '0');
    const stream = response.stream();
    for (const change of this.#history.get(resource) ?? []) {
      if (change.resourceVersion > since && inScope(change.object)) stream.event(change.type, change.object);
    }
    const watcher: Watcher = { namespace, stream };
    let watchers = this.#watchers.get(resource);
    if (watchers === undefined) {
      watchers = new Set();
      this.#watchers.set(resource, watchers);
    }
    watchers.add(watcher);
    void stream.closed.then(() => this.#watchers.get(resource)?.delete(watcher));
  }

  #store(resource: string): Map<string, Json> {
    let objects = this.#objects.get(resource);
    if (objects === undefined) {
      objects = new Map();
      this.#objects.set(resource, objects);
    }
    return objects;
  }

  #publish(resource: string, change: Change): void {
    let history = this.#history.get(resource);
    if (history === undefined) {
      history = [];
      this.#history.set(resource, history);
    }
    history.push(change);
    for (const watcher of this.#watchers.get(resource) ?? []) {
      if (watcher.namespace === undefined || metadataOf(change.object)['namespace'] === watcher.namespace) {
        watcher.stream.event(change.type, change.object);
      }
    }
  }
}
