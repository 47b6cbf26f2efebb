/**
 * BACKUP_SCHEDULE: the cron expression Dokploy's scheduler (node-schedule) runs a
 * machine's backup at. Dokploy stores it unchecked and a bad one simply never fires,
 * so it is checked here, field by field, before it reaches Dokploy.
 *
 * The default `nightly` is not one fixed time: every machine of a server backing up at
 * 03:00 would queue all their uploads at once on one link. Each machine gets its own
 * minute between 02:00 and 04:59 (server time), derived from its id, so the same
 * machine always gets the same time.
 */
import { fnv1a } from "../hash.ts";

export const NIGHTLY = "nightly";

/** node-schedule's fields: optional seconds, then minute hour day-of-month month day-of-week. */
const FIELDS: { name: string; min: number; max: number; names?: string[] }[] = [
  { name: "second", min: 0, max: 59 },
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day of month", min: 1, max: 31 },
  {
    name: "month",
    min: 1,
    max: 12,
    names: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
  },
  { name: "day of week", min: 0, max: 7, names: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"] },
];

/** Why `expr` is not a cron expression node-schedule runs, or null when it is. */
export function cronProblem(expr: string): string | null {
  const parts = expr.trim().split(/\s+/);
  if (parts.length !== 5 && parts.length !== 6) {
    return `"${expr}" must have 5 fields (minute hour day month weekday), e.g. "30 2 * * *", or be ${NIGHTLY}`;
  }
  const fields = parts.length === 5 ? FIELDS.slice(1) : FIELDS;
  for (let i = 0; i < parts.length; i++) {
    const problem = fieldProblem(parts[i], fields[i]);
    if (problem) return `"${expr}": the ${fields[i].name} field ${problem}`;
  }
  return null;
}

function fieldProblem(text: string, f: (typeof FIELDS)[number]): string | null {
  for (const item of text.split(",")) {
    const m = /^(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:\/(\d+))?$/i.exec(item);
    if (!m) return `"${text}" is not a list of values, ranges (a-b) or steps (*/n)`;
    if (m[2] !== undefined && Number(m[2]) < 1) return `"${item}" has a step below 1`;
    if (m[1] === "*") continue;
    for (const v of m[1].split("-")) {
      const n = valueOf(v, f);
      if (n === null || n < f.min || n > f.max) {
        return `"${v}" is outside ${f.min}-${f.max}`;
      }
    }
  }
  return null;
}

function valueOf(v: string, f: (typeof FIELDS)[number]): number | null {
  if (/^\d+$/.test(v)) return Number(v);
  const i = f.names?.indexOf(v.toLowerCase()) ?? -1;
  return i < 0 ? null : i + (f.min === 1 ? 1 : 0);
}

/** The cron expression a machine's backup runs at: `nightly` becomes its own time. */
export function scheduleFor(option: string, machineId: string): string {
  if (option.trim().toLowerCase() !== NIGHTLY) return option.trim();
  const slot = fnv1a(machineId) % 180; // 180 minutes from 02:00
  return `${slot % 60} ${2 + Math.floor(slot / 60)} * * *`;
}

/**
 * An upper bound of a cron expression's period, as far as `doctor` needs it: a backup
 * older than twice this is late.
 */
export function periodMs(expr: string): number {
  const parts = expr.trim().split(/\s+/);
  const [, hour, dom, month, dow] = parts.length === 6 ? parts.slice(1) : parts;
  const day = 86_400_000;
  if (month !== "*") return 366 * day;
  if (dom !== "*") return 31 * day;
  if (dow !== "*") return 7 * day;
  return hour === "*" || hour.includes("/") ? 3_600_000 : day;
}
