/** The CLI progress display (cli/progress.ts): a bar redrawn in place on a terminal, plain lines otherwise, nothing with --json. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createProgress } from '../../src/cli/progress.js';

function fakeStream(isTTY: boolean): { stream: NodeJS.WriteStream; text: () => string } {
  let out = '';
  const stream = { isTTY, write: (s: string) => ((out += s), true) } as unknown as NodeJS.WriteStream;
  return { stream, text: () => out };
}

describe('CLI progress', () => {
  it('draws a bar with counts and rate on a terminal, and ends the line', () => {
    const { stream, text } = fakeStream(true);
    const p = createProgress('import', { stream });
    p.total(4);
    for (let i = 0; i < 4; i++) p.advance(1024);
    p.note('INBOX: new uids');
    p.finish();
    assert.match(text(), /^\r\x1b\[Kimport \[#{8}\.{22}\] 1\/4 messages, 1\.0 KiB, [\d.]+ msg\/s/);
    assert.match(text(), /\r\x1b\[Kimport: INBOX: new uids\n/);
    assert.match(text(), /\[#{30}\] 4\/4 messages, 4\.0 KiB, [\d.]+ msg\/s, [\d.]+ \wiB\/s\n$/);
  });

  it('prints plain lines when not on a terminal, and nothing with --json', () => {
    const plain = fakeStream(false);
    const p = createProgress('export', { stream: plain.stream });
    p.advance(10);
    p.note('something');
    p.finish();
    assert.doesNotMatch(plain.text(), /\r|\x1b/);
    assert.match(plain.text(), /^export: something\nexport: 1 messages, 0\.0 KiB, [\d.]+ msg\/s, [\d.]+ \wiB\/s\n$/);
    const json = fakeStream(false);
    const q = createProgress('export', { stream: json.stream, json: true });
    q.advance(10);
    q.note('something');
    q.finish();
    assert.equal(json.text(), '');
  });
});
