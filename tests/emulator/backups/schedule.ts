/**
 * Dokploy's volume backup schedule: node-schedule jobs in the Dokploy process, one per
 * enabled row, named by its volumeBackupId (scheduleVolumeBackup / removeVolumeBackupJob).
 * The real library decides what runs when: 5 fields, or 6 with seconds first; a bad
 * expression is stored anyway and its job simply never fires. Times are UTC (Dokploy's
 * container has no TZ).
 *
 * A restart loses every job (`dropAll`), even a deleted row's (Dokploy's delete does not
 * cancel it), and the boot registers the enabled rows again.
 */
// @ts-types="@types/node-schedule"
import schedule from "node-schedule";

export interface BackupJobView {
  volumeBackupId: string;
  cronExpression: string;
  /** Whether node-schedule accepted the expression (else it never fires). */
  scheduled: boolean;
  /** Times it fired in this Dokploy lifetime. */
  runs: number;
  /** ISO time of the next run, null when none is pending. */
  nextRun: string | null;
}

interface Entry {
  /** null: node-schedule refused the expression (it never fires). */
  job: schedule.Job | null;
  cronExpression: string;
  runs: number;
}

export class BackupSchedule {
  /** node-schedule's `scheduledJobs` of this Dokploy process, by name. */
  #byName = new Map<string, Entry>();
  /** Every job made, an overwritten name's too (node-schedule keeps it running). */
  #all = new Set<schedule.Job>();

  /** scheduleVolumeBackup: a job named `volumeBackupId` at `cronExpression`. */
  register(volumeBackupId: string, cronExpression: string, run: () => Promise<void>): void {
    const entry: Entry = { job: null, cronExpression, runs: 0 };
    entry.job = schedule.scheduleJob(volumeBackupId, { rule: cronExpression, tz: "UTC" }, () => {
      entry.runs++;
      // Dokploy awaits nothing here; a failure (e.g. a deleted row) is only logged.
      return run().catch(() => {});
    });
    this.#byName.set(volumeBackupId, entry);
    if (entry.job) this.#all.add(entry.job);
  }

  /** removeVolumeBackupJob: cancels the job of that name, if any. */
  cancel(volumeBackupId: string): void {
    const entry = this.#byName.get(volumeBackupId);
    entry?.job?.cancel();
    this.#byName.delete(volumeBackupId);
  }

  /** The Dokploy process died: its timers with it. */
  dropAll(): void {
    for (const job of this.#all) job.cancel();
    this.#all.clear();
    this.#byName.clear();
  }

  list(): BackupJobView[] {
    return [...this.#byName].map(([volumeBackupId, e]) => ({
      volumeBackupId,
      cronExpression: e.cronExpression,
      scheduled: e.job !== null,
      runs: e.runs,
      nextRun: e.job?.nextInvocation()?.toISOString() ?? null,
    }));
  }
}
