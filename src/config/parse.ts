/**
 * Parsers for flag and environment values; each throws a UserError naming the option.
 */
import { UserError } from '../errors.js';

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** "25M", "512k", "1048576" → bytes. */
export function parseSize(name: string, value: string): number {
  const m = /^(\d+)\s*([kmg]?)i?b?$/i.exec(value.trim());
  if (!m) throw new UserError(`${name}: expected a size like 25M, 512k or 1048576, got ${JSON.stringify(value)}`);
  return Number(m[1]) * UNITS[m[2]!.toLowerCase()]!;
}

export function parseInteger(name: string, value: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(value.trim())) throw new UserError(`${name}: expected a whole number, got ${JSON.stringify(value)}`);
  const n = Number(value);
  if (n < min || n > max) throw new UserError(`${name}: must be between ${min} and ${max}, got ${n}`);
  return n;
}

export function parsePort(name: string, value: string): number {
  return parseInteger(name, value, 0, 65535);
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "300s", "5m", "4h", "5d", "500ms" (a bare number is seconds) → milliseconds. */
export function parseDuration(name: string, value: string): number {
  const m = /^(\d+)\s*(ms|s|m|h|d)?$/i.exec(value.trim());
  if (!m) throw new UserError(`${name}: expected a duration like 30s, 5m, 4h or 5d, got ${JSON.stringify(value)}`);
  return Number(m[1]) * DURATION_UNITS[(m[2] ?? 's').toLowerCase()]!;
}

/** "host:port" (or "[v6]:port") → its parts; the port is required. */
export function parseHostPort(name: string, value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]\s]+)):(\d+)$/.exec(value.trim());
  if (!m) throw new UserError(`${name}: expected HOST:PORT, got ${JSON.stringify(value)}`);
  return { host: (m[1] ?? m[2])!, port: parsePort(name, m[3]!) };
}

/** DNS servers, comma-separated HOST:PORT, in the form node:dns takes (`[::1]:53`); none: the system resolver. */
export function parseDnsServers(name: string, value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean)
    .map((v) => {
      const { host, port } = parseHostPort(name, v);
      return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    });
}
