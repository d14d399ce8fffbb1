import t from 'tap';
import { tickMs } from '../../src/clock.ts';
import { eventRecorder, eventsInFlight } from '../../src/kube/events.ts';
import type { KubeTransport } from '../../src/kube/transport.ts';
import { createLogger } from '../../src/log.ts';
import { FakeClock } from './support/fake-clock.ts';

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

t.test('Events recorded within one tick go out together on the next tick, in order', async (t) => {
  const clock = new FakeClock(10 * tickMs + 30);
  const { transport, sent } = fakeTransport();
  const events = eventRecorder(transport, createLogger({ level: 'silent' }), clock);
  events.record(target('a'), changed);
  clock.advance(100);
  events.record(target('b'), changed);
  t.equal(sent.length, 0, 'nothing is sent before the tick');
  t.same(clock.pending, [tickMs - 130], 'one timer for both, at the next tick');
  clock.advance(tickMs - 130);
  t.same(
    sent.map((s) => s.body.involvedObject.name),
    ['a', 'b'],
    'both on the tick, in the order recorded',
  );
  t.equal(sent[0]?.path, '/api/v1/namespaces/ns/events');
  t.equal(sent[0]?.body.firstTimestamp, new Date(10 * tickMs + 30).toISOString(), 'stamped when recorded');
  t.same(clock.pending, [], 'no timer left once the batch is out');
  events.record(target('c'), changed);
  t.same(clock.pending, [tickMs], 'one recorded on a tick waits for the next one');
  clock.advance(tickMs);
  t.equal(sent.length, 3);
  await events.flush();
  t.end();
});

t.test('flush sends what is waiting at once and waits for it; a failed write is only logged', async (t) => {
  const clock = new FakeClock(0);
  const { transport, sent, state } = fakeTransport();
  const lines: string[] = [];
  const logger = createLogger({
    level: 'warn',
    destination: { write: (line: string) => lines.push(line) },
  });
  const events = eventRecorder(transport, logger, clock);
  state.fail = true;
  events.record(target('a'), changed);
  await events.flush();
  t.equal(sent.length, 1, 'sent without the clock moving');
  t.same(clock.pending, [], 'the tick timer is cancelled');
  t.match(lines.join(''), /could not record Event: .*request timed out/, 'the failure is logged');
  t.match(lines.join(''), /Deployment\/ns\/a/, 'naming the workload');
  t.end();
});

t.test('a burst of Events is written a few at a time, each next one as an answer comes in', async (t) => {
  const clock = new FakeClock(0);
  const { transport, sent, state, answer } = fakeTransport();
  const events = eventRecorder(transport, createLogger({ level: 'silent' }), clock);
  state.hold = true;
  const burst = eventsInFlight + 3;
  for (let i = 0; i < burst; i++) events.record(target(`app-${String(i)}`), changed);
  clock.advance(tickMs);
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
