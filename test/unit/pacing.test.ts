// Per-workload rollout pacing as a pure function of the recorded state and the time.
import t from 'tap';
import { rolloutPacingAnnotation } from '../../src/core/annotations.ts';
import {
  describePacing,
  formatPacing,
  intervalAfter,
  isFlapping,
  pace,
  pacingPatch,
  pacingState,
} from '../../src/core/pacing.ts';
import type { PacingOptions, PacingState } from '../../src/core/pacing.ts';
import { isoFromMs, msFromIso } from '../../src/core/iso-time.ts';

const o: PacingOptions = { minIntervalMs: 30_000, maxIntervalMs: 600_000, flappingAfter: 3 };
const at = (s: number) => Date.parse('2026-12-01T10:00:00Z') + s * 1000;

t.test('the first change after a quiet period rolls at once and starts a streak', (t) => {
  t.same(pace(undefined, at(0), o), {
    roll: true,
    next: { lastRolloutMs: at(0), streak: 1 },
    startsFlapping: false,
  });
  const quiet = pace({ lastRolloutMs: at(0), streak: 1 }, at(60), o);
  t.same(
    quiet,
    { roll: true, next: { lastRolloutMs: at(60), streak: 1 }, startsFlapping: false },
    'after 2 × 30 s',
  );
  t.end();
});

t.test('a change within the interval waits for its end; then the streak grows', (t) => {
  const first: PacingState = { lastRolloutMs: at(0), streak: 1 };
  t.same(pace(first, at(5), o), { roll: false, atMs: at(30), state: first });
  t.same(pace(first, at(29.999), o), { roll: false, atMs: at(30), state: first });
  const second = pace(first, at(30), o);
  t.same(second, { roll: true, next: { lastRolloutMs: at(30), streak: 2 }, startsFlapping: false });
  const third = pace({ lastRolloutMs: at(30), streak: 2 }, at(60), o);
  t.same(
    third,
    { roll: true, next: { lastRolloutMs: at(60), streak: 3 }, startsFlapping: true },
    'flapping from 3',
  );
  t.end();
});

t.test('a flapping workload’s interval doubles up to the maximum', (t) => {
  t.same(
    [1, 2, 3, 4, 5, 6, 7, 8, 40].map((streak) => intervalAfter(streak, o) / 1000),
    [30, 30, 60, 120, 240, 480, 600, 600, 600],
  );
  t.same(pace({ lastRolloutMs: at(0), streak: 4 }, at(100), o), {
    roll: false,
    atMs: at(120),
    state: { lastRolloutMs: at(0), streak: 4 },
  });
  t.end();
});

t.test('flapping lasts until twice the current interval passes without a rollout', (t) => {
  const state: PacingState = { lastRolloutMs: at(0), streak: 3 };
  t.notOk(isFlapping({ lastRolloutMs: at(0), streak: 2 }, at(1), o), 'not before the threshold');
  t.ok(isFlapping(state, at(119), o));
  t.notOk(isFlapping(state, at(120), o), 'quiet for 2 × 60 s');
  t.notOk(isFlapping(state, at(1), { ...o, minIntervalMs: 0 }), 'never with pacing off');
  t.end();
});

t.test('pacing off rolls every change at once', (t) => {
  const off = { ...o, minIntervalMs: 0 };
  t.equal(pace({ lastRolloutMs: at(0), streak: 9 }, at(1), off).roll, true);
  t.end();
});

t.test('a state from a clock far ahead does not block the workload forever', (t) => {
  const ahead: PacingState = { lastRolloutMs: at(3600), streak: 1 };
  t.equal(pace(ahead, at(0), o).roll, true, 'an hour ahead: rolls');
  t.equal(pace({ lastRolloutMs: at(10), streak: 1 }, at(0), o).roll, false, '10 s ahead: waits');
  t.end();
});

t.test('the state round-trips through the annotation; anything unreadable counts as quiet', (t) => {
  const state: PacingState = { lastRolloutMs: at(0), streak: 4 };
  t.equal(formatPacing(state), '{"last":"2026-12-01T10:00:00.000Z","streak":4}');
  t.same(pacingState(pacingPatch(state).metadata.annotations), state);
  for (const bad of [
    '',
    'x',
    '{}',
    '{"last":"never","streak":1}',
    '{"last":"2026-12-01T10:00:00Z","streak":0}',
    '{"last":"2026-12-01T10:00:00Z","streak":1.5}',
    '[]',
    'null',
  ]) {
    t.equal(pacingState({ [rolloutPacingAnnotation]: bad }), undefined, JSON.stringify(bad));
  }
  t.equal(pacingState(undefined), undefined);
  t.end();
});

t.test('explain tells the state and the next allowed rollout', (t) => {
  const annotations = { [rolloutPacingAnnotation]: formatPacing({ lastRolloutMs: at(0), streak: 3 }) };
  t.same(describePacing(annotations, at(10), o), {
    lastRollout: '2026-12-01T10:00:00.000Z',
    streak: 3,
    flapping: true,
    nextRolloutAllowed: '2026-12-01T10:01:00.000Z',
  });
  t.equal(describePacing(annotations, at(61), o)?.nextRolloutAllowed, 'now');
  t.equal(describePacing({}, at(0), o), undefined);
  t.end();
});

t.test('the core’s RFC 3339 conversion agrees with Date, and refuses what is not a UTC timestamp', (t) => {
  let disagreements = 0;
  for (let i = 0; i < 20_000; i++) {
    const ms = Math.floor(Math.random() * 253_402_300_800_000); // 1970 to 9999
    const iso = new Date(ms).toISOString();
    if (isoFromMs(ms) !== iso || msFromIso(iso) !== ms) disagreements += 1;
  }
  t.equal(disagreements, 0, '20,000 random instants');
  t.equal(msFromIso('2024-02-29T12:00:00Z'), Date.parse('2024-02-29T12:00:00Z'), 'a leap day');
  t.equal(msFromIso('2026-12-01T10:00:00.5Z'), Date.parse('2026-12-01T10:00:00.500Z'), 'a short fraction');
  for (const bad of [
    '2025-02-29T00:00:00Z',
    '2026-04-31T00:00:00Z',
    '2026-13-01T00:00:00Z',
    '2026-12-01T24:00:00Z',
    '2026-12-01T10:00:00+01:00',
    '2026-12-01',
    'yesterday',
  ]) {
    t.equal(msFromIso(bad), undefined, bad);
  }
  t.end();
});
