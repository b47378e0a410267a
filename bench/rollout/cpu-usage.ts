import { readFileSync, readdirSync } from 'node:fs';

/**
 * CPU seconds (user + system) spent so far, read from /proc: the bench prints the CPU a phase cost beside its
 * wall time, because on a shared 2-core machine the wall time moves with the neighbours' load and the CPU
 * much less.
 */
const TICKS_PER_SECOND = 100; // USER_HZ: 100 on every Linux architecture this project builds for

function ticksOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name may hold spaces and parentheses: the fields start after its last ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]); // utime, stime (proc(5) fields 14, 15)
  } catch {
    return 0; // the process ended: its CPU is gone with it
  }
}

export function processCpuSeconds(pid: number): number {
  return ticksOf(pid) / TICKS_PER_SECOND;
}

/** Every PostgreSQL process on the machine (the bench's own database is served by the shared cluster). */
export function postgresCpuSeconds(): number {
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === 'postgres') ticks += ticksOf(Number(entry));
    } catch {
      // gone between readdir and read
    }
  }
  return ticks / TICKS_PER_SECOND;
}

export interface CpuMeter {
  /** "server 4.1 s (410 µs/device), postgres 2.0 s (200 µs/device)" for what ran since start() */
  describe(perUnit: number, unit: string): string;
}

export function startCpuMeter(label: string, pid: number): CpuMeter {
  const own = processCpuSeconds(pid);
  const postgres = postgresCpuSeconds();
  return {
    describe(perUnit, unit) {
      const spent = processCpuSeconds(pid) - own;
      const db = postgresCpuSeconds() - postgres;
      const per = (seconds: number): string => `${((seconds * 1e6) / perUnit).toFixed(0)} µs/${unit}`;
      return `CPU ${label} ${spent.toFixed(1)} s (${per(spent)}), postgres ${db.toFixed(1)} s (${per(db)})`;
    },
  };
}
