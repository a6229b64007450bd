/** `tern apikey create|list|revoke`: keys for the HTTP API (admin/api-keys.ts holds the rules). */
import type { Command } from 'commander';
import { createApiKey, listApiKeys, parseScopes, publicKey, revokeApiKey } from '../admin/api-keys.js';
import { parseInteger } from '../config/parse.js';
import { printJson, printTable, withStore, type GlobalOptions } from './context.js';

export function registerApiKeyCommands(program: Command, globals: () => GlobalOptions): void {
  const apikey = program.command('apikey').description('keys for the HTTP API (Authorization: Bearer KEY)');
  apikey
    .command('create')
    .description('make a key; it is shown once, only its hash is kept')
    .requiredOption('--scope <scopes>', 'comma-separated: send, read, admin')
    .option('--domain <domain>', 'limit the key to one domain: it sends only from it and manages only its accounts, aliases and keys')
    .option('--description <text>', 'what the key is for', '')
    .option('--rate <per-minute>', 'at most this many requests a minute (default: no limit)')
    .option('--json', 'print {"id", "key"}')
    .action(async (o: { scope: string; domain?: string; description: string; rate?: string; json?: boolean }) => {
      const scopes = parseScopes(o.scope);
      const ratePerMinute = o.rate === undefined ? null : parseInteger('--rate', o.rate, 1);
      const { key, token } = await withStore(globals(), (s) =>
        createApiKey(s.directory, null, { scopes, domain: o.domain, description: o.description, ratePerMinute }),
      );
      if (o.json) return printJson({ id: key.id, key: token });
      console.log(`API key ${key.id} (${key.scopes.join(', ')}${key.domain ? ` for ${key.domain}` : ''}):\n${token}\nIt is shown only now: keep it safe.`);
    });
  apikey
    .command('list')
    .description('every key (never its secret), revoked ones too')
    .option('--domain <domain>', 'only the keys limited to this domain')
    .option('--json', 'print JSON')
    .action(async (o: { domain?: string; json?: boolean }) => {
      const keys = await withStore(globals(), (s) => listApiKeys(s.directory, null, o.domain));
      if (o.json) return printJson(keys.map(publicKey));
      printTable(
        ['ID', 'SCOPES', 'DOMAIN', 'CREATED', 'LAST USED', 'STATE', 'DESCRIPTION'],
        keys.map((k) => [
          k.id,
          k.scopes.join(','),
          k.domain ?? '*',
          k.createdAt.toISOString(),
          k.lastUsedAt?.toISOString() ?? '-',
          k.revokedAt ? 'revoked' : 'active',
          k.description,
        ]),
      );
    });
  apikey
    .command('revoke <id>')
    .description('revoke a key at once (it stays listed as revoked)')
    .action(async (id: string) => {
      await withStore(globals(), (s) => revokeApiKey(s.directory, null, id));
      console.log(`API key ${id} revoked`);
    });
}
