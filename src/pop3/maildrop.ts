/**
 * A POP3 maildrop: the account's INBOX as it was at login (RFC 1939 numbering never
 * changes within a session), the deletion marks of the session, and the store calls that
 * POP3 makes (mark \Seen at RETR, expunge at QUIT).
 *
 * Rules: messages that arrive after login are not shown; a message another client
 * (IMAP) expunged meanwhile keeps its number and fails when read; deletion marks live
 * only in memory until `commit` (the UPDATE state), so a dropped connection deletes nothing.
 */
import { NotFoundError } from '../errors.js';
import type { Store } from '../store/store.js';

export interface DropMessage {
  /** 1-based message number (RFC 1939 "msg"). */
  msg: number;
  id: number;
  uid: number;
  /** Octets as stored (trace prefix and body). */
  size: number;
  seen: boolean;
  deleted: boolean;
}

/** What a message number refers to. */
export type Lookup = { kind: 'message'; message: DropMessage } | { kind: 'no-such-message' } | { kind: 'deleted' };

export class Maildrop {
  private constructor(
    private readonly store: Store,
    readonly mailboxId: number,
    private readonly uidValidity: number,
    private readonly messages: DropMessage[],
  ) {}

  /** Takes the snapshot of the account's INBOX. NotFoundError when it has none. */
  static async open(store: Store, accountId: number): Promise<Maildrop> {
    const inbox = await store.mailboxes.get(accountId, 'INBOX');
    if (!inbox) throw new NotFoundError('the account has no INBOX');
    const stored = await store.mailboxes.messages(inbox.id);
    const messages = [...stored]
      .sort((a, b) => a.uid - b.uid)
      .map((m, i) => ({ msg: i + 1, id: m.id, uid: m.uid, size: m.size, seen: m.flags.includes('\\Seen'), deleted: false }));
    return new Maildrop(store, inbox.id, inbox.uidValidity, messages);
  }

  /** Messages not marked deleted, in number order. */
  live(): DropMessage[] {
    return this.messages.filter((m) => !m.deleted);
  }

  /** Count and octets of the messages not marked deleted (STAT). */
  stat(): { count: number; octets: number } {
    const live = this.live();
    return { count: live.length, octets: live.reduce((n, m) => n + m.size, 0) };
  }

  lookup(msg: number): Lookup {
    const message = Number.isInteger(msg) && msg >= 1 ? this.messages[msg - 1] : undefined;
    if (!message) return { kind: 'no-such-message' };
    return message.deleted ? { kind: 'deleted' } : { kind: 'message', message };
  }

  /** The unique-id listing value (RFC 1939 7): stable across sessions, never reused, since uids are not reused within a UIDVALIDITY. */
  uniqueId(m: DropMessage): string {
    return `${this.uidValidity}.${m.uid}`;
  }

  markDeleted(m: DropMessage): void {
    m.deleted = true;
  }

  /** RSET: unmarks every message. */
  reset(): void {
    for (const m of this.messages) m.deleted = false;
  }

  /** The stored message, streamed; fails with NotFoundError (on first read) if it was expunged since login. */
  read(m: DropMessage): AsyncIterable<Buffer> {
    return this.store.mailboxes.read(m.id);
  }

  /** Sets \Seen (shared with IMAP) once per message. */
  async markSeen(m: DropMessage): Promise<void> {
    if (m.seen) return;
    await this.store.mailboxes.setFlags(this.mailboxId, [m.uid], 'add', ['\\Seen']);
    m.seen = true;
  }

  /** The UPDATE state: expunges the messages marked deleted. Returns how many live messages remain. */
  async commit(): Promise<number> {
    const uids = this.messages.filter((m) => m.deleted).map((m) => m.uid);
    if (uids.length > 0) await this.store.mailboxes.expunge(this.mailboxId, uids);
    return this.messages.length - uids.length;
  }
}
