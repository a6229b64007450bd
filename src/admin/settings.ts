/**
 * Site settings an administrator may edit (`tern setting`, `/api/v1/settings`, `tern config
 * apply`): whole-site policy kept in the database's settings table, each with a validator
 * built on the parser its reader uses, so a value refused here is a value `tern serve` would
 * refuse at start. Other keys of the table are internal (the host name and first-run mark,
 * ACME challenges, MTA-STS caches, warm-up counters) or have commands of their own
 * (`tern route`, `tern queue pause|rate|warmup`, `tern domain policy`); they are never
 * listed or changed here. A `tern serve` flag (or its TERN_* variable) overrides a setting.
 */
import { NotFoundError, UserError } from '../errors.js';
import { parseDuration, parseHostPort } from '../config/parse.js';
import { DEFAULT_TRUSTED_NETWORKS, TRUSTED_NETWORKS_SETTING, TrustedNetworks } from '../config/trusted-networks.js';
import { DMARC_REPORTS_SETTING, parseDmarcReports } from '../delivery/dmarc-reports.js';
import { normalizeDomain } from '../mail/address.js';
import type { DirectoryStore } from '../store/store.js';
import { BACKUP_DIR_SETTING, BACKUP_INTERVAL_SETTING, BACKUP_KEEP_SETTING, validateBackupSetting } from '../store/transfer/scheduled.js';
import { requireSiteAdmin, type Actor } from './actor.js';

/** When a change is seen: `start` means the next `tern serve` start (a running server keeps what it read); `minute`, within a minute. */
export type TakesEffect = 'start' | 'minute';

export interface SettingSpec {
  key: string;
  /** What it does, for help text and listings. */
  description: string;
  /** What applies while it is not set. */
  unset: string;
  /** The `tern serve` flag that overrides it, if any. */
  flag: string | null;
  takesEffect: TakesEffect;
  /** The value as stored (trimmed, normalized), or a UserError naming the setting. */
  validate(value: string): string;
}

const MAX_VALUE_LENGTH = 4096;

/** How long an unused portal session lasts (http/session.ts). */
export const IDLE_TIMEOUT_SETTING = 'portal_idle_timeout';
export const DEFAULT_IDLE_TIMEOUT = '30m';
const RSPAMD_URL = /^https?:\/\/[^\s/]+/;

/** A value for `smarthost`: HOST:PORT (465 means implicit TLS), or none. */
export function validateSmarthost(value: string): string {
  const v = value.trim();
  if (v.toLowerCase() === 'none') return 'none';
  const { host, port } = parseHostPort('setting smarthost', v);
  if (port === 0) throw new UserError('setting smarthost: the port must not be 0');
  return host.includes(':') ? `[${host}]:${port}` : `${host.toLowerCase()}:${port}`;
}

/** A value for `dnsbl`: comma-separated zone names. */
export function validateDnsbl(value: string): string {
  const zones = value
    .split(',')
    .map((z) => z.trim())
    .filter(Boolean);
  if (zones.length === 0) throw new UserError('setting dnsbl: give zone names like zen.spamhaus.org (tern setting del dnsbl turns blocklists off)');
  return zones
    .map((z) => {
      try {
        return normalizeDomain(z);
      } catch {
        throw new UserError(`setting dnsbl: ${JSON.stringify(z)} is not a zone name`);
      }
    })
    .join(',');
}

/** A value for `rspamd`: the http(s) URL of its controller-less worker (e.g. http://127.0.0.1:11333). */
export function validateRspamd(value: string): string {
  const v = value.trim();
  if (!RSPAMD_URL.test(v)) throw new UserError(`setting rspamd: expected http://HOST:PORT, got ${JSON.stringify(value)}`);
  return v;
}

/** A value for `dmarc_reports`: the address reports come from, or off. */
export function validateDmarcReports(value: string): string {
  return parseDmarcReports(`setting ${DMARC_REPORTS_SETTING}`, value.trim()) ?? 'off';
}

/** A value for `trusted_networks`: addresses and CIDR ranges, or none. */
export function validateTrustedNetworks(value: string): string {
  return TrustedNetworks.parse(`setting ${TRUSTED_NETWORKS_SETTING}`, value).text;
}

/** The editable settings, in the order they are listed. */
export const SETTINGS: readonly SettingSpec[] = [
  {
    key: 'smarthost',
    description: 'relay for outbound mail without a route: HOST:PORT (465: implicit TLS), or none',
    unset: 'MX lookup',
    flag: '--smarthost',
    takesEffect: 'start',
    validate: validateSmarthost,
  },
  {
    key: TRUSTED_NETWORKS_SETTING,
    description: 'clients that skip the MX checks for strangers: addresses and CIDR ranges, comma-separated, or none; never a permission to relay',
    unset: DEFAULT_TRUSTED_NETWORKS,
    flag: '--trusted-networks',
    takesEffect: 'start',
    validate: validateTrustedNetworks,
  },
  {
    key: 'dnsbl',
    description: 'DNS blocklist zones (comma-separated) that refuse a listed stranger at the MX greeting',
    unset: 'no blocklist',
    flag: '--dnsbl',
    takesEffect: 'start',
    validate: validateDnsbl,
  },
  {
    key: 'rspamd',
    description: "rspamd that checks strangers' messages on the MX: http://HOST:PORT",
    unset: 'no spam filter',
    flag: '--rspamd',
    takesEffect: 'start',
    validate: validateRspamd,
  },
  {
    key: DMARC_REPORTS_SETTING,
    description: 'the address daily DMARC aggregate reports come from, or off (tern report send reads it at once)',
    unset: 'off',
    flag: '--dmarc-reports',
    takesEffect: 'start',
    validate: validateDmarcReports,
  },
  {
    key: IDLE_TIMEOUT_SETTING,
    description: 'the admin portal: a session unused this long ends (a duration; sessions end after 12h anyway)',
    unset: DEFAULT_IDLE_TIMEOUT,
    flag: null,
    takesEffect: 'minute',
    validate(value) {
      if (parseDuration(IDLE_TIMEOUT_SETTING, value) < 1000) throw new UserError(`${IDLE_TIMEOUT_SETTING}: must be at least 1s`);
      return value.trim();
    },
  },
  ...(
    [
      [BACKUP_DIR_SETTING, 'scheduled backups: the absolute directory they are written to', 'no scheduled backups'],
      [BACKUP_INTERVAL_SETTING, 'scheduled backups: how often (a duration, at least 1m)', '24h'],
      [BACKUP_KEEP_SETTING, 'scheduled backups: how many are kept (the oldest are deleted)', '7'],
    ] as const
  ).map(([key, description, unset]) => ({
    key,
    description,
    unset,
    flag: null,
    takesEffect: 'minute' as const,
    validate: (value: string) => validateBackupSetting(key, value),
  })),
];

/** The spec of an editable setting; NotFoundError (naming the editable ones) for any other key. */
export function settingSpec(key: string): SettingSpec {
  const spec = SETTINGS.find((s) => s.key === key.trim().toLowerCase());
  if (!spec) throw new NotFoundError(`unknown setting ${JSON.stringify(key)} (editable: ${SETTINGS.map((s) => s.key).join(', ')})`);
  return spec;
}

/** The value as it would be stored, or a UserError saying what is wrong. */
export function validateSetting(key: string, value: string): string {
  const spec = settingSpec(key);
  if (value.length > MAX_VALUE_LENGTH) throw new UserError(`setting ${spec.key}: at most ${MAX_VALUE_LENGTH} characters`);
  return spec.validate(value);
}

/** A setting as shown to people and API callers. */
export interface SettingView {
  key: string;
  /** The stored value; null when not set. */
  value: string | null;
  description: string;
  unset: string;
  flag: string | null;
  takesEffect: TakesEffect;
}

const view = (spec: SettingSpec, value: string | null): SettingView => ({
  key: spec.key,
  value,
  description: spec.description,
  unset: spec.unset,
  flag: spec.flag,
  takesEffect: spec.takesEffect,
});

/** Every editable setting with its stored value (null when not set). */
export async function listSettings(directory: DirectoryStore, actor: Actor): Promise<SettingView[]> {
  requireSiteAdmin(actor, 'site settings');
  const views: SettingView[] = [];
  for (const spec of SETTINGS) views.push(view(spec, await directory.getSetting(spec.key)));
  return views;
}

export async function getSetting(directory: DirectoryStore, actor: Actor, key: string): Promise<SettingView> {
  requireSiteAdmin(actor, 'site settings');
  const spec = settingSpec(key);
  return view(spec, await directory.getSetting(spec.key));
}

/** Validates and stores a value; returns the setting with the value before. */
export async function setSetting(
  directory: DirectoryStore,
  actor: Actor,
  key: string,
  value: string,
): Promise<{ setting: SettingView; previous: string | null }> {
  requireSiteAdmin(actor, 'site settings');
  const spec = settingSpec(key);
  const stored = validateSetting(spec.key, value);
  const previous = await directory.getSetting(spec.key);
  if (previous !== stored) await directory.setSetting(spec.key, stored);
  return { setting: view(spec, stored), previous };
}

/** Removes a setting (what applies when it is not set comes back); NotFoundError when it is not set. */
export async function deleteSetting(directory: DirectoryStore, actor: Actor, key: string): Promise<{ key: string; previous: string }> {
  requireSiteAdmin(actor, 'site settings');
  const spec = settingSpec(key);
  const previous = await directory.getSetting(spec.key);
  if (previous === null) throw new NotFoundError(`setting ${spec.key} is not set`);
  await directory.deleteSetting(spec.key);
  return { key: spec.key, previous };
}
