// Which filesystem a data directory lives on (from /proc/mounts), so a report says
// whether its figures came from a real disk, a tmpfs or an overlay.
import { readFileSync, realpathSync } from 'node:fs';

export interface FilesystemInfo {
  dir: string;
  device: string;
  type: string;
  mountPoint: string;
  options: string;
}

// /proc/mounts escapes spaces and other bytes in paths as octal (\040).
const unescape = (field: string): string => field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));

/** The mount holding dir (the longest mount point that is a prefix of its real path); null if unknown. */
export function filesystemOf(dir: string): FilesystemInfo | null {
  let real: string;
  let mounts: string;
  try {
    real = realpathSync(dir);
    mounts = readFileSync('/proc/mounts', 'utf8');
  } catch {
    return null;
  }
  let best: FilesystemInfo | null = null;
  for (const line of mounts.split('\n')) {
    const [device, point, type, options] = line.split(' ').map(unescape);
    if (!device || !point || !type) continue;
    const inside = point === '/' || real === point || real.startsWith(`${point}/`);
    // Later lines win at equal length: they are mounted over the earlier ones.
    if (inside && (!best || point.length >= best.mountPoint.length)) best = { dir, device, type, mountPoint: point, options: options ?? '' };
  }
  return best;
}

/** One line for the report: "ext4 /dev/vda on / (rw,relatime)". */
export function describeFilesystem(dir: string): string {
  const fs = filesystemOf(dir);
  return fs ? `${fs.type} ${fs.device} on ${fs.mountPoint} (${fs.options})` : 'unknown';
}
