import t from 'tap';
import { eventRecorder, eventsInFlight } from '../../src/kube/events.ts';
import type { KubeTransport } from '../../src/kube/transport.ts';
import { createLogger } from '../../src/log.ts';

interface Sent {
  path: string;
  body: { reason: string; firstTimestamp: string; involvedObject: { name: string } };
}

/**
 * A transport that records each POST. Answers come at once, or with `hold` only when `answer()` is
 * called; `fail` makes them reject as the apiserver would.
 */
function fakeTransport() {
  const sent: Sent[] = [];
  const held: (() => void)[] = [];
  const state = { fail: false, hold: false };
  const transport = {
    sendJson(method: string, path: string, options: { body: unknown }) {
      if (method !== 'POST') throw new Error(`unexpected ${method}`);
      sent.push({ path, body: options.body as Sent['body'] });
      if (state.fail) return Promise.reject(new Error('etcdserver: request timed out'));
      if (!state.hold) return Promise.resolve(null);
      return new Promise((resolve) => {
        held.push(() => {
          resolve(null);
        });
      });
    },
  } as unknown as KubeTransport;
  /** Answers the oldest held request, then lets the recorder react. */
  const answer = async () => {
    held.shift()?.();
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { transport, sent, state, answer };
}

const target = (name: string) => ({ apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'ns', name });
const changed = { type: 'Normal' as const, reason: 'ConfigChanged', message: 'config hash a → b' };

t.test('an Event is written when recorded, stamped then', async (t) => {
  const { transport, sent } = fakeTransport();
  const events = eventRecorder(transport, createLogger({ level: 'silent' }));
  const before = new Date().toISOString();
  events.record(target('a'), changed);
  t.equal(sent.length, 1, 'sent in the same turn');
  t.equal(sent[0]?.path, '/api/v1/namespaces/ns/events');
  t.equal(sent[0]?.body.involvedObject.name, 'a');
  t.ok((sent[0]?.body.firstTimestamp ?? '') >= before, 'stamped when recorded');
  await events.flush();
  t.end();
});

t.test('a burst of Events is written a few at a time, each next one as an answer comes in', async (t) => {
  const { transport, sent, state, answer } = fakeTransport();
  const events = eventRecorder(transport, createLogger({ level: 'silent' }));
  state.hold = true;
  const burst = eventsInFlight + 3;
  for (let i = 0; i < burst; i++) events.record(target(`app-${String(i)}`), changed);
  t.equal(sent.length, eventsInFlight, `${String(eventsInFlight)} in flight, the others wait`);
  await answer();
  t.equal(sent.length, eventsInFlight + 1, 'one answer lets one more out');
  const flushed = events.flush();
  for (let i = 0; i < burst; i++) await answer();
  await flushed;
  t.same(
    sent.map((s) => s.body.involvedObject.name),
    Array.from({ length: burst }, (_, i) => `app-${String(i)}`),
    'all written, in the order recorded, and flush waited for the last',
  );
  t.end();
});

t.test('a recorder given its number keeps that many in flight', async (t) => {
  const { transport, sent, state, answer } = fakeTransport();
  const events = eventRecorder(transport, createLogger({ level: 'silent' }), 20);
  state.hold = true;
  for (let i = 0; i < 25; i++) events.record(target(`app-${String(i)}`), changed);
  t.equal(sent.length, 20, 'a tick of the default limit: twenty in flight together');
  const flushed = events.flush();
  for (let i = 0; i < 25; i++) await answer();
  await flushed;
  t.equal(sent.length, 25, 'the others as answers come in');
  t.end();
});

t.test('a failed write is only logged, naming the workload, and the next one still goes out', async (t) => {
  const { transport, sent, state } = fakeTransport();
  const lines: string[] = [];
  const logger = createLogger({
    level: 'warn',
    destination: { write: (line: string) => lines.push(line) },
  });
  const events = eventRecorder(transport, logger);
  state.fail = true;
  events.record(target('a'), changed);
  await events.flush();
  t.match(lines.join(''), /could not record Event: .*request timed out/, 'the failure is logged');
  t.match(lines.join(''), /Deployment\/ns\/a/, 'naming the workload');
  state.fail = false;
  events.record(target('b'), changed);
  await events.flush();
  t.equal(sent.length, 2, 'the failure took no slot with it');
  t.end();
});
