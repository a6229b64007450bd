/**
 * Bans as an admin action (`tern ban`): list those in force, add one by hand, lift one. A
 * running server sees changes within 5 s. Addresses are single IPs, as the guard bans them.
 */
import { isIP } from 'node:net';
import { UserError } from '../errors.js';
import { plainAddress } from '../net/ip.js';
import type { Ban, DirectoryStore } from '../store/store.js';
import { requireSiteAdmin, type Actor } from './actor.js';

function address(value: string): string {
  const a = plainAddress(value.trim());
  if (!isIP(a)) throw new UserError(`not an IP address: ${JSON.stringify(value)}`);
  return a.toLowerCase();
}

export async function listBans(directory: DirectoryStore, actor: Actor): Promise<Ban[]> {
  requireSiteAdmin(actor, 'bans are the whole site’s');
  return directory.listBans(new Date());
}

export async function addBan(directory: DirectoryStore, actor: Actor, ip: string, seconds: number, reason = 'banned by an administrator'): Promise<Ban> {
  requireSiteAdmin(actor, 'bans are the whole site’s');
  if (!Number.isFinite(seconds) || seconds <= 0) throw new UserError('a ban lasts a positive time');
  return directory.addBan(address(ip), reason, new Date(Date.now() + seconds * 1000));
}

export async function deleteBan(directory: DirectoryStore, actor: Actor, ip: string): Promise<string> {
  requireSiteAdmin(actor, 'bans are the whole site’s');
  const a = address(ip);
  await directory.deleteBan(a);
  return a;
}

export const publicBan = (b: Ban) => ({ address: b.address, reason: b.reason, createdAt: b.createdAt.toISOString(), expiresAt: b.expiresAt.toISOString() });
