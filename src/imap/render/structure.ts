/**
 * ENVELOPE and BODYSTRUCTURE / BODY (RFC 3501 7.4.2) from the structure stored at delivery
 * (mail/mime): no message is parsed here. Offsets in the structure count from the start of
 * the shared body; the per-recipient trace lines stored before it only lengthen the top
 * header, which BODYSTRUCTURE does not describe.
 */
import type { Envelope, EnvelopeAddress, MimePart } from '../../mail/mime/index.js';
import { nstring } from '../proto/format.js';

function addresses(list: EnvelopeAddress[] | null): string {
  if (!list || list.length === 0) return 'NIL';
  return `(${list.map((a) => `(${nstring(a.name)} ${nstring(a.adl)} ${nstring(a.mailbox)} ${nstring(a.host)})`).join('')})`;
}

export function renderEnvelope(e: Envelope): string {
  // RFC 3501: Sender and Reply-To default to From when absent.
  const sender = e.sender && e.sender.length > 0 ? e.sender : e.from;
  const replyTo = e.replyTo && e.replyTo.length > 0 ? e.replyTo : e.from;
  return `(${[
    nstring(e.date),
    nstring(e.subject),
    addresses(e.from),
    addresses(sender),
    addresses(replyTo),
    addresses(e.to),
    addresses(e.cc),
    addresses(e.bcc),
    nstring(e.inReplyTo),
    nstring(e.messageId),
  ].join(' ')})`;
}

function params(list: Array<[string, string]>): string {
  if (list.length === 0) return 'NIL';
  return `(${list.map(([k, v]) => `${nstring(k.toUpperCase())} ${nstring(v)}`).join(' ')})`;
}

/** BODYSTRUCTURE (extensible) or BODY (basic fields only). */
export function renderBodyStructure(part: MimePart, extensible: boolean): string {
  // A multipart without parts cannot be shown as one: it is rendered as a basic part.
  if (part.children && part.children.length > 0) {
    const children = part.children.map((c) => renderBodyStructure(c, extensible)).join('');
    const ext = extensible ? ` ${params(part.params)} ${disposition(part)} ${language(part)} ${nstring(part.location)}` : '';
    return `(${children} ${nstring(part.subtype.toUpperCase())}${ext})`;
  }
  const fields = [
    nstring(part.type.toUpperCase()),
    nstring(part.subtype.toUpperCase()),
    params(part.params),
    nstring(part.id),
    nstring(part.description),
    nstring(part.encoding.toUpperCase()),
    String(part.bodyEnd - part.bodyStart),
  ];
  if (part.type === 'message' && (part.subtype === 'rfc822' || part.subtype === 'global') && part.message) {
    fields.push(renderEnvelope(part.message.envelope), renderBodyStructure(part.message.root, extensible), String(part.lines));
  } else if (part.type === 'text') fields.push(String(part.lines));
  if (extensible) fields.push(nstring(part.md5), disposition(part), language(part), nstring(part.location));
  return `(${fields.join(' ')})`;
}

function disposition(part: MimePart): string {
  return part.disposition ? `(${nstring(part.disposition.type.toUpperCase())} ${params(part.disposition.params)})` : 'NIL';
}

function language(part: MimePart): string {
  if (!part.language || part.language.length === 0) return 'NIL';
  return part.language.length === 1 ? nstring(part.language[0]) : `(${part.language.map((l) => nstring(l)).join(' ')})`;
}
