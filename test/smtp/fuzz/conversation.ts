/**
 * Random valid SMTP and LMTP conversations with the replies a correct server gives:
 * greetings (EHLO/HELO/LHLO), STARTTLS, MAIL with SIZE/BODY/SMTPUTF8, RCPT to local,
 * unknown, remote, Postmaster and quoted addresses, DATA with dot-stuffing, bare LF and
 * bare CR, smuggling attempts, oversize messages, BDAT chunks (including 0-size and
 * LAST), RSET, NOOP, VRFY, HELP and QUIT. Mutations (mutations.ts) start from these.
 */
import type { Prng } from '../../fuzz/prng.js';
import { line, type ConversationContext, type Segment } from './segments.js';

interface Rcpt {
  address: string;
  code: number;
  label: string;
  utf8?: boolean;
}

function recipients(ctx: ConversationContext, utf8: boolean): Rcpt[] {
  const d = ctx.domain;
  const list: Rcpt[] = [
    { address: `<alice@${d}>`, code: 250, label: 'RCPT local' },
    { address: `<bob@${d}>`, code: 250, label: 'RCPT local' },
    { address: `<BOB@${d.toUpperCase()}>`, code: 250, label: 'RCPT local, upper case' },
    { address: `<alice+tag@${d}>`, code: 250, label: 'RCPT subaddress' },
    { address: `<"alice"@${d}>`, code: 250, label: 'RCPT quoted local part' },
    { address: '<Postmaster>', code: 250, label: 'RCPT Postmaster' },
    { address: `<postmaster@${ctx.hostname}>`, code: 250, label: 'RCPT postmaster@hostname' },
    { address: `<@relay.remote.test:bob@${d}>`, code: 250, label: 'RCPT source route' },
    { address: `<nobody@${d}>`, code: 550, label: 'RCPT unknown' },
    { address: `<"no body"@${d}>`, code: 550, label: 'RCPT unknown quoted' },
    { address: '<someone@remote.test>', code: 554, label: 'RCPT not local' },
    { address: '<someone@[192.0.2.1]>', code: 554, label: 'RCPT address literal' },
  ];
  if (utf8) list.push({ address: `<ñobody@${d}>`, code: 550, label: 'RCPT unknown UTF-8', utf8: true });
  else list.push({ address: `<ñ@${d}>`, code: 553, label: 'RCPT UTF-8 without SMTPUTF8', utf8: true });
  return list;
}

const SENDERS = ['<>', '<sender@remote.test>', '<Sender.Name@Remote.Test>', '<"quoted sender"@remote.test>', '<@a.test,@b.test:routed@remote.test>'];

function domainName(r: Prng): string {
  return r.pick(['client.test', 'mail.remote.test', '[127.0.0.1]', '[IPv6:::1]', `host-${r.text(6)}.example`, 'localhost']);
}

interface Body {
  bytes: Buffer;
  label: string;
  /** The code the end of data gets: 250 stored, 552 too big, 554 smuggling. */
  code: number;
}

/** Lines of a message (without line ends); `eightBit` allows UTF-8 text. */
function messageLines(r: Prng, eightBit: boolean): string[] {
  const lines = ['From: <sender@remote.test>', 'To: <alice@example.test>', `Subject: fuzz ${r.text(8)}`, `Message-ID: <${r.text(16)}@remote.test>`, ''];
  const n = r.int(0, 25);
  for (let i = 0; i < n; i++) {
    lines.push(
      r.weighted<string>([
        [10, r.text(r.int(0, 90), 'abcdefghij klmnopqrstuvwxyz ABC,;:!?')],
        [2, `.${r.text(r.int(0, 20))}`],
        [1, '.'],
        [1, '..'],
        [1, ''],
        [1, 'x'.repeat(998)],
        [eightBit ? 2 : 0, 'héllo wörld ✉ 日本'],
        [1, 'bare\rcarriage return'],
        [1, 'looks like \r.\r but is not'],
      ]),
    );
  }
  return lines;
}

/** A DATA body, dot-stuffed and terminated, with the code it must get. */
function dataBody(r: Prng, ctx: ConversationContext, eightBit: boolean): Body {
  const lines = messageLines(r, eightBit);
  const bareLf = r.chance(0.15);
  const parts: string[] = [];
  let label = 'message';
  let code = 250;
  for (const [i, l] of lines.entries()) {
    const stuffed = l.startsWith('.') ? `.${l}` : l;
    // Bare LF line ends are normalised, but never on the line before the terminator.
    parts.push(stuffed + (bareLf && i < lines.length - 1 && r.chance(0.3) ? '\n' : '\r\n'));
  }
  if (bareLf) label += ', bare LFs';
  if (r.chance(0.1)) {
    const variant = r.pick(['\n.\n', '\r\n.\n', '\n.\r\n', '\r\n.\r\r\n', '\n..\n']);
    const smuggled = `MAIL FROM:<evil@remote.test>\r\nRCPT TO:<bob@${ctx.domain}>\r\nDATA\r\nsmuggled\r\n`;
    parts.splice(r.int(5, parts.length), 0, `tail${variant}${smuggled}`);
    // <LF>.<LF>, <CRLF>.<LF> and <LF>.<CRLF> must not end the data; they get the message rejected.
    const rejected = variant === '\n.\n' || variant === '\r\n.\n' || variant === '\n.\r\n';
    code = rejected ? 554 : 250;
    label += `, smuggling ${JSON.stringify(variant)}${rejected ? '' : ' (harmless)'}`;
  }
  let text = parts.join('');
  if (r.chance(0.05)) {
    const pad = ctx.limits.maxMessageSize + r.int(100, 50_000);
    text += `${'y'.repeat(76)}\r\n`.repeat(Math.ceil(pad / 78));
    code = 552; // checked before smuggling
    label += ', over the size limit';
  }
  return { bytes: Buffer.from(`${text}.\r\n`, 'utf8'), label, code };
}

/** Appends a DATA or BDAT message for a transaction with `accepted` recipients. */
function message(r: Prng, ctx: ConversationContext, segs: Segment[], accepted: number, opts: { esmtp: boolean; eightBit: boolean }): void {
  const none = ctx.mode === 'lmtp' ? 503 : 554;
  if (!opts.esmtp || r.chance(0.7)) {
    if (accepted === 0) {
      // The transaction stays open; a client resets it.
      segs.push(line('DATA', 'DATA without recipients', [none]), line('RSET', 'RSET', [250]));
      return;
    }
    // Pipelining the body without waiting for 354 breaks RFC 2920 but must still be read in order.
    segs.push(line('DATA', 'DATA', [354], !r.chance(0.1)));
    const body = dataBody(r, ctx, opts.eightBit);
    segs.push({ bytes: body.bytes, label: body.label, expect: { codes: [body.code] } });
    return;
  }
  const body = Buffer.from(messageLines(r, opts.eightBit).join(r.chance(0.8) ? '\r\n' : '\n') + '\r\n', 'utf8');
  const oversize = r.chance(0.05);
  const total = oversize ? Buffer.concat([body, Buffer.alloc(ctx.limits.maxMessageSize + 10, 'z')]) : body;
  const cuts = [0, total.length];
  for (let i = r.int(0, 3); i > 0; i--) cuts.push(r.int(0, total.length));
  cuts.sort((a, b) => a - b);
  const finalEmpty = r.chance(0.3); // "BDAT 0 LAST" ends the message
  let sent = 0;
  let failed = accepted === 0;
  for (let i = 0; i + 1 < cuts.length; i++) {
    const chunk = total.subarray(cuts[i], cuts[i + 1]);
    const last = !finalEmpty && i + 2 === cuts.length;
    sent += chunk.length;
    let code = 250;
    if (accepted === 0) code = none;
    else if (failed)
      code = 503; // the transaction ended with an earlier chunk's error
    else if (sent > ctx.limits.maxMessageSize) {
      code = 552;
      failed = true;
    }
    const head = Buffer.from(`BDAT ${chunk.length}${last ? ' LAST' : ''}\r\n`);
    segs.push({ bytes: Buffer.concat([head, chunk]), label: `BDAT ${chunk.length}${last ? ' LAST' : ''}`, expect: { codes: [code] } });
  }
  if (finalEmpty) {
    const code = accepted === 0 ? none : failed ? 503 : 250;
    segs.push({ bytes: Buffer.from('BDAT 0 LAST\r\n'), label: 'BDAT 0 LAST', expect: { codes: [code] } });
  }
  if (accepted === 0) segs.push(line('RSET', 'RSET', [250]));
}

/** Harmless commands; RSET only outside a transaction. */
function chatter(r: Prng, segs: Segment[], inTransaction: boolean): void {
  for (let i = r.few(); i > 0; i--) {
    const choices = [line('NOOP', 'NOOP', [250]), line('HELP', 'HELP', [214]), line('VRFY alice', 'VRFY', [252]), line('noop', 'noop (lower case)', [250])];
    if (!inTransaction) choices.push(line('RSET', 'RSET', [250]));
    segs.push(r.pick(choices));
  }
}

/** One mail transaction; `esmtp` false after HELO. */
function transaction(r: Prng, ctx: ConversationContext, segs: Segment[], esmtp: boolean): void {
  const utf8 = esmtp && r.chance(0.2);
  const eightBit = esmtp && r.chance(0.5);
  const params: string[] = [];
  let oversizeAnnounced = false;
  if (esmtp) {
    if (r.chance(0.3)) {
      oversizeAnnounced = r.chance(0.1);
      params.push(`SIZE=${oversizeAnnounced ? ctx.limits.maxMessageSize + r.int(1, 1e9) : r.int(0, 20_000)}`);
    }
    if (eightBit) params.push('BODY=8BITMIME');
    else if (r.chance(0.1)) params.push('BODY=7BIT');
    if (utf8) params.push('SMTPUTF8');
  } else if (r.chance(0.15)) {
    // ESMTP parameters need EHLO (RFC 5321 4.1.1.11, RFC 1869): after HELO they must be refused.
    segs.push(line(`MAIL FROM:<sender@remote.test> ${r.pick(['SIZE=100', 'BODY=8BITMIME', 'SMTPUTF8'])}`, 'MAIL with an ESMTP parameter after HELO', [5]));
    segs.push(line('RSET', 'RSET', [250]));
    return;
  }
  const sender = utf8 && r.chance(0.3) ? '<sénder@remote.test>' : r.pick(SENDERS);
  const mail = `MAIL FROM:${sender}${params.map((p) => ` ${p}`).join('')}`;
  if (oversizeAnnounced) return void segs.push(line(mail, 'MAIL with SIZE over the limit', [552]));
  segs.push(line(mail, 'MAIL', [250]));

  const table = recipients(ctx, utf8);
  let accepted = 0;
  const flood = r.chance(0.03);
  const count = flood
    ? ctx.limits.maxRecipients + r.int(1, 5)
    : r.weighted([
        [1, 0],
        [6, 1],
        [3, 2],
        [2, 4],
      ]);
  for (let i = 0; i < count; i++) {
    const rcpt = flood ? table[0]! : r.pick(table);
    if (rcpt.code === 250 && accepted >= ctx.limits.maxRecipients) {
      segs.push(line(`RCPT TO:${rcpt.address}`, 'RCPT over the recipient limit', [452]));
      continue;
    }
    segs.push(line(`RCPT TO:${rcpt.address}`, rcpt.label, [rcpt.code]));
    if (rcpt.code === 250) accepted++;
  }
  chatter(r, segs, true);
  if (r.chance(0.08)) return void segs.push(line('RSET', 'RSET mid-transaction', [250]));
  message(r, ctx, segs, accepted, { esmtp, eightBit });
}

/** A complete valid conversation (after the greeting), each segment with its expected reply. */
export function validConversation(r: Prng, ctx: ConversationContext): Segment[] {
  const segs: Segment[] = [];
  const lmtp = ctx.mode === 'lmtp';
  const helo = !lmtp && r.chance(0.2);
  const hello = (afterTls: boolean) => {
    const verb = lmtp ? 'LHLO' : helo && !afterTls ? 'HELO' : 'EHLO';
    const seg = line(`${verb} ${domainName(r)}`, verb, [250]);
    if (afterTls) seg.expect = { codes: [250], excludes: 'STARTTLS' };
    segs.push(seg);
  };
  hello(false);
  let secure = false;
  const startTls = () => {
    segs.push(line('STARTTLS', 'STARTTLS', [220], true));
    secure = true;
    hello(true);
  };
  if (!helo && r.chance(0.15)) startTls();
  for (
    let n = r.weighted([
      [2, 0],
      [6, 1],
      [3, 2],
      [1, 3],
    ]);
    n > 0;
    n--
  ) {
    chatter(r, segs, false);
    transaction(r, ctx, segs, !helo || secure);
  }
  if (!helo && !secure && r.chance(0.05)) startTls();
  if (secure && r.chance(0.1)) segs.push(line('STARTTLS', 'STARTTLS again under TLS', [503]));
  if (r.chance(0.75)) segs.push(line('QUIT', 'QUIT', [221]));
  return segs;
}
