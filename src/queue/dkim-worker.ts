/**
 * A DKIM signing thread: an RSA signature costs over half a millisecond, so signing runs
 * on threads of its own, beside the event loop that drives the connections. Requests
 * carry the message and the keys; answers carry the DKIM-Signature lines or the error text.
 *
 * mailauth parses the PEM private key again for every message, which costs as much as
 * the signature. This thread exists only to sign, so here (and only here) the parse is
 * remembered: the same PEM gives the same immutable KeyObject.
 */
import crypto from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import type { DKIMSignOptions } from 'mailauth';

const parse = crypto.createPrivateKey;
const parsed = new Map<string, crypto.KeyObject>();
crypto.createPrivateKey = (key: Parameters<typeof parse>[0]) => {
  const options = key as { key?: unknown; format?: string };
  const pem = Buffer.isBuffer(options.key) && options.format === 'pem' ? options.key.toString('latin1') : null;
  if (pem === null) return parse(key);
  let keyObject = parsed.get(pem);
  if (!keyObject) {
    if (parsed.size >= 1000) parsed.clear();
    parsed.set(pem, (keyObject = parse(key)));
  }
  return keyObject;
};

interface SignRequest {
  id: number;
  message: Uint8Array;
  signatureData: DKIMSignOptions[];
}

parentPort!.on('message', (req: SignRequest) => {
  const message = Buffer.from(req.message.buffer, req.message.byteOffset, req.message.byteLength);
  dkimSign(message, { ...req.signatureData[0]!, canonicalization: 'relaxed/relaxed', signatureData: req.signatureData }).then(
    (result) => {
      const errors = (result.errors ?? []).map((e) => e.message);
      parentPort!.postMessage(errors.length > 0 ? { id: req.id, error: errors.join('; ') } : { id: req.id, signatures: result.signatures });
    },
    (err: unknown) => parentPort!.postMessage({ id: req.id, error: err instanceof Error ? err.message : String(err) }),
  );
});
