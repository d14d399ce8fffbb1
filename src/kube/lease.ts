// Leader election on a coordination.k8s.io Lease, as client-go's leaderelection does it: a candidate takes
// the Lease when its holder has not renewed it for a lease duration as observed on the candidate's own
// clock (so clock skew between replicas does not matter), the leader renews it every retry period, and
// gives leadership up when it could not renew within the renew deadline. Unlike client-go, a candidate
// counts from its previous read (the renewal came after it) and tries again the moment the Lease expires, so
// a killed leader is replaced within the lease duration, not up to two retry periods later; the leader steps
// down at the renew deadline exactly, keeping leaseDuration - renewDeadline - retryPeriod of margin. Writes are optimistic
// (resourceVersion): of two candidates racing for an expired Lease, one gets 409 and stays a standby.
import { V1MicroTime, type CoordinationV1Api, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { systemClock } from '../clock.ts';
import type { Clock } from '../clock.ts';
import { apiErrorMessage, isConflict, isNotFound } from './client.ts';

export interface LeaderElectionOptions {
  api: CoordinationV1Api;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  logger: Logger;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  /** Times the renewals, the expiry of another's Lease and the renew deadline. Default systemClock. */
  clock?: Clock;
}

export class LeaderElector {
  private leading = false;
  private stopped = false;
  private lastRenew = 0;
  private observed: { holder: string; renewTime: string; at: number } | undefined;
  /** When the previous read of the Lease was sent. */
  private previousReadAt: number | undefined;
  /** When the Lease another replica holds expires as this replica counts; undefined when not held. */
  private heldUntil: number | undefined;
  private cancelTick: (() => void) | undefined;
  /** The write of the Lease under way, if any: settles, never rejects. */
  private writing: Promise<void> | undefined;
  private cancelStepDown: (() => void) | undefined;
  /** A write of the Lease was sent: only then can it name this replica. */
  private wrote = false;
  private readonly o: LeaderElectionOptions;
  private readonly clock: Clock;

  constructor(o: LeaderElectionOptions) {
    this.o = o;
    this.clock = o.clock ?? systemClock;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    void this.tick();
  }

  /** Stops trying; a leader hands the Lease back so a standby takes over at once, not after expiry. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelTick?.();
    this.cancelStepDown?.();
    // A renewal still in flight would otherwise land after the hand-back and hold the Lease again for a
    // whole lease duration; it may also have just taken the Lease, so the hand-back does not depend on
    // this.leading but on who the Lease names. A read in flight is not waited for: no write follows it
    // once stopped, so a hung read of a standby does not hold up the shutdown.
    await this.writing;
    if (this.leading) this.setLeading(false);
    // A standby that never wrote the Lease has nothing to hand back: no request, so stopping it takes no
    // time even while the apiserver is unreachable.
    if (!this.wrote) return;
    try {
      const lease = await this.o.api.readNamespacedLease({ name: this.o.name, namespace: this.o.namespace });
      if (lease.spec?.holderIdentity !== this.o.identity) return;
      lease.spec.holderIdentity = '';
      lease.spec.leaseDurationSeconds = 1;
      await this.o.api.replaceNamespacedLease({
        name: this.o.name,
        namespace: this.o.namespace,
        body: lease,
      });
      this.o.logger.info({ lease: this.leaseName() }, 'released the leader Lease');
    } catch (err) {
      this.o.logger.warn({ lease: this.leaseName() }, `could not release the Lease: ${apiErrorMessage(err)}`);
    }
  }

  private leaseName(): string {
    return `${this.o.namespace}/${this.o.name}`;
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    const attempt = this.tryAcquireOrRenew().catch((err: unknown) => {
      this.o.logger.warn({ lease: this.leaseName() }, `leader election: ${apiErrorMessage(err)}`);
      return false;
    });
    const acquired = await attempt;
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- stop() may run during the await
    if (this.stopped) return;
    if (acquired) {
      this.lastRenew = this.clock.now();
      if (!this.leading) this.setLeading(true);
      // Step down at the renew deadline itself, not at the next tick after it (which a hung request
      // delays): a standby may take over a lease duration after the last renewal, so the margin holds.
      this.cancelStepDown?.();
      this.cancelStepDown = this.clock.after(this.o.renewDeadlineMs + 1, () => {
        this.stepDownIfLate();
      });
    } else {
      this.stepDownIfLate();
    }
    // A standby tries again the moment the Lease it saw expires, not up to a retry period after.
    const untilExpiry =
      this.heldUntil === undefined ? Infinity : Math.max(0, this.heldUntil - this.clock.now());
    this.cancelTick = this.clock.after(Math.min(this.o.retryPeriodMs, untilExpiry), () => void this.tick());
  }

  private stepDownIfLate(): void {
    if (this.stopped || !this.leading || this.clock.now() - this.lastRenew <= this.o.renewDeadlineMs) return;
    this.o.logger.error(
      { lease: this.leaseName() },
      'could not renew the Lease in time: no longer the leader',
    );
    this.setLeading(false);
  }

  private setLeading(leading: boolean): void {
    this.leading = leading;
    if (leading) {
      this.o.logger.info({ lease: this.leaseName(), identity: this.o.identity }, 'became the leader');
      this.o.onStartedLeading();
    } else {
      this.o.onStoppedLeading();
    }
  }

  private spec(transitions: number, acquireTime: V1MicroTime | undefined): V1Lease['spec'] {
    const now = new V1MicroTime(this.clock.now());
    return {
      holderIdentity: this.o.identity,
      leaseDurationSeconds: Math.ceil(this.o.leaseDurationMs / 1000),
      acquireTime: acquireTime ?? now,
      renewTime: now,
      leaseTransitions: transitions,
    };
  }

  /** Sends a write of the Lease unless stop() came first (then false); stop() waits for one in flight. */
  private async write(request: () => Promise<unknown>): Promise<boolean> {
    if (this.stopped) return false;
    this.wrote = true;
    const sent = request();
    this.writing = sent.then(
      () => undefined,
      () => undefined,
    );
    try {
      await sent;
      return true;
    } finally {
      this.writing = undefined;
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { api, namespace, name, identity } = this.o;
    this.heldUntil = undefined;
    const readAt = this.clock.now();
    const previousReadAt = this.previousReadAt ?? readAt;
    this.previousReadAt = readAt;
    let lease: V1Lease;
    try {
      lease = await api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      try {
        return await this.write(() =>
          api.createNamespacedLease({
            namespace,
            body: { metadata: { name, namespace }, spec: this.spec(0, undefined) },
          }),
        );
      } catch (createErr) {
        if (isConflict(createErr)) return false;
        throw createErr;
      }
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const renewTime = spec.renewTime === undefined ? '' : new Date(spec.renewTime).toISOString();
    if (this.observed?.holder !== holder || this.observed.renewTime !== renewTime) {
      // The record changed after the previous read was served, so after that read was sent: counting the
      // lease from there (at most a retry period back) rather than from now lets a standby take over within
      // a lease duration of the holder's last renewal. The holder steps down at its renew deadline, which
      // is well inside that.
      this.observed = { holder, renewTime, at: Math.max(previousReadAt, readAt - this.o.retryPeriodMs) };
    }
    const durationMs = (spec.leaseDurationSeconds ?? 0) * 1000;
    const held = holder !== '' && holder !== identity && this.observed.at + durationMs > this.clock.now();
    if (held) {
      this.heldUntil = this.observed.at + durationMs;
      return false;
    }
    const transitions = (spec.leaseTransitions ?? 0) + (holder === identity ? 0 : 1);
    const acquireTime =
      holder === identity && spec.acquireTime ? new V1MicroTime(spec.acquireTime) : undefined;
    try {
      return await this.write(() =>
        api.replaceNamespacedLease({
          name,
          namespace,
          body: { metadata: lease.metadata, spec: this.spec(transitions, acquireTime) },
        }),
      );
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
  }
}
