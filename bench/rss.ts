// Samples a process's resident memory from /proc/<pid>/status (VmRSS now, VmHWM peak).
import { readFileSync, writeFileSync } from 'node:fs';

export interface MemorySample {
  rssKiB: number;
  hwmKiB: number;
}

/** Reads VmRSS and VmHWM in KiB; null once the process is gone. */
export function readMemory(pid: number): MemorySample | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
  return { rssKiB: field('VmRSS'), hwmKiB: field('VmHWM') };
}

/** Polls every intervalMs and remembers the highest RSS seen and the kernel's high-water mark. */
export class RssSampler {
  private timer: NodeJS.Timeout | undefined;
  peakRssKiB = 0;
  hwmKiB = 0;
  samples = 0;

  constructor(
    private readonly pid: number,
    private readonly intervalMs = 100,
  ) {}

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
  }

  sample(): void {
    const memory = readMemory(this.pid);
    if (!memory) return;
    this.samples += 1;
    this.peakRssKiB = Math.max(this.peakRssKiB, memory.rssKiB);
    this.hwmKiB = Math.max(this.hwmKiB, memory.hwmKiB);
  }

  stop(): void {
    this.sample();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** Resets the kernel's high-water mark (VmHWM) to the current RSS, so the next peak is this phase's own. */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}
