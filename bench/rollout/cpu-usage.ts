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
    return -1; // the process ended: its CPU is gone with it
  }
}

export function processCpuSeconds(pid: number): number {
  return Math.max(0, ticksOf(pid)) / TICKS_PER_SECOND;
}

/** The machine's PostgreSQL processes (the bench's own database is served by the shared cluster). */
function postgresPids(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === 'postgres') pids.push(Number(entry));
    } catch {
      // gone between readdir and read
    }
  }
  return pids;
}

export interface CpuMeter {
  /** "server 4.1 s (410 µs/device), postgres 2.0 s (…), the bench's clients …" for what ran since the start */
  describe(perUnit: number, unit: string): string;
}

/**
 * PostgreSQL's share: the processes that ran at the start and still run at the end (the server's pool,
 * the WAL writer, the checkpointer); a backend that ended in between is left out rather than subtracted.
 * Other jobs' backends on the same cluster count too: read it beside the load average.
 */
export function startCpuMeter(label: string, pid: number): CpuMeter {
  const own = processCpuSeconds(pid);
  const clients = process.cpuUsage();
  const postgres = new Map(postgresPids().map((pg) => [pg, ticksOf(pg)]));
  return {
    describe(perUnit, unit) {
      const spent = processCpuSeconds(pid) - own;
      let ticks = 0;
      for (const [pg, before] of postgres) {
        const now = ticksOf(pg);
        if (now >= before) ticks += now - before;
      }
      const db = ticks / TICKS_PER_SECOND;
      const used = process.cpuUsage(clients);
      const bench = (used.user + used.system) / 1e6;
      const per = (seconds: number): string => `${((seconds * 1e6) / perUnit).toFixed(0)} µs/${unit}`;
      return (
        `CPU ${label} ${spent.toFixed(1)} s (${per(spent)}), postgres ${db.toFixed(1)} s (${per(db)}), ` +
        `the bench's clients ${bench.toFixed(1)} s (${per(bench)})`
      );
    },
  };
}
