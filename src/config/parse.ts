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
