/**
 * Real IMAP client programs for test/imap/clients.test.ts, each run as a child process with
 * a hard timeout: Python's imaplib (Debian's /usr/bin/python3) driven by a JSON plan,
 * isync's mbsync with a generated config, and any curses program (mutt) on a
 * pseudo-terminal made by Python's pty module, fed keys when the screen shows what a step
 * waits for. Not a test file itself.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runProgram, type ProgramResult } from '../smtp/support.js';

export const PYTHON = '/usr/bin/python3';
export const MBSYNC = '/usr/bin/mbsync';
export const MUTT = '/usr/bin/mutt';

/** Runs `python3 -c script` with `input` as JSON on stdin; resolves with the JSON it prints. */
function runPython<T>(script: string, input: unknown, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, ['-c', script], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(stdout) as T);
      } catch {
        reject(new Error(`python3 exited ${code ?? signal}: ${stderr}${stdout}`));
      }
    });
    child.stdin.end(JSON.stringify(input));
  });
}

/**
 * Drives imaplib. Each step is `[method, ...args]` called on the IMAP4 object (its
 * `(typ, data)` answer is returned with bytes as latin1 strings), or one of:
 * - `["starttls"]`: STARTTLS with a context that accepts the self-signed certificate;
 * - `["literal", text]`: the next command sends `text` (UTF-8) as a literal (imaplib's `literal`);
 * - `["append", mailbox, flags, message]`: APPEND with the message (UTF-8) as a literal;
 * - `["raw", tag, chunks]`: sends the chunks (UTF-8) on the socket; after each chunk but the
 *   last, reads the continuation line (and stops sending if it is not "+"); then reads up to
 *   the tagged answer; returns everything read, literals included;
 * - `["idle", mailbox, message]`: IDLE, APPENDs `message` to `mailbox` from a second
 *   connection, reads the untagged line that announces it, DONE; returns
 *   [continuation, announcement, rest up to the tagged answer, the APPEND answer].
 * An `IMAP4.error` from a step is returned as `{error, message}`; a socket error or timeout
 * stops the plan (`error` on the step and on the result).
 */
const IMAPLIB_DRIVER = String.raw`
import imaplib, json, ssl, sys
plan = json.load(sys.stdin)
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
out = {"steps": []}
def text(v):
    if isinstance(v, bytes):
        return v.decode("latin1")
    if isinstance(v, (tuple, list)):
        return [text(x) for x in v]
    return v
def connect():
    if plan["mode"] == "ssl":
        return imaplib.IMAP4_SSL("127.0.0.1", plan["port"], ssl_context=ctx, timeout=15)
    return imaplib.IMAP4("127.0.0.1", plan["port"], timeout=15)
def read_tagged(M, tag, got):
    while True:
        line = M.readline()
        if not line:
            raise EOFError("connection closed")
        got.append(line)
        if line.endswith(b"}\r\n") and b"{" in line:
            got.append(M.read(int(line[line.rindex(b"{") + 1 : -3].rstrip(b"+"))))
        elif line.startswith(tag + b" "):
            return
def step(M, op, args):
    if op == "starttls":
        return M.starttls(ssl_context=ctx)
    if op == "append":
        return M.append(args[0], args[1], None, args[2].encode("utf-8"))
    if op == "raw":
        tag, chunks, got = args[0].encode(), args[1], []
        try:
            for i, chunk in enumerate(chunks):
                M.send(chunk.encode("utf-8"))
                if i < len(chunks) - 1:
                    got.append(M.readline())
                    if not got[-1].startswith(b"+"):
                        break
            if not got or not got[-1].startswith(tag + b" "):
                read_tagged(M, tag, got)
        except (OSError, EOFError) as e:
            raise OSError(str(e) + "; received " + repr(b"".join(got)))
        return b"".join(got)
    if op == "idle":
        tag, got = M._new_tag(), []
        M.send(tag + b" IDLE\r\n")
        cont = M.readline()
        other = connect()
        other.login(plan["user"], plan["password"])
        appended = other.append(args[0], None, None, args[1].encode("utf-8"))
        other.logout()
        pushed = M.readline()
        M.send(b"DONE\r\n")
        read_tagged(M, tag, got)
        return [cont, pushed, b"".join(got), appended]
    return getattr(M, op)(*args)
try:
    M = connect()
    out["welcome"] = text(M.welcome)
    for s in plan["steps"]:
        if s[0] == "literal":
            M.literal = s[1].encode("utf-8")
            out["steps"].append(None)
            continue
        try:
            out["steps"].append(text(step(M, s[0], s[1:])))
        except imaplib.IMAP4.error as e:
            out["steps"].append({"error": type(e).__name__, "message": str(e)})
except Exception as e:
    out["error"] = type(e).__name__ + ": " + str(e)
print(json.dumps(out))
`;

export type ImaplibStep =
  | ['starttls']
  | ['literal', string]
  | ['append', string, string | null, string]
  | ['raw', string, string[]]
  | ['idle', string, string]
  | [string, ...Array<string | null>];

export interface ImaplibPlan {
  port: number;
  mode: 'plain' | 'ssl';
  user: string;
  password: string;
  steps: ImaplibStep[];
}

export interface ImaplibResult {
  welcome?: string;
  /** One entry per step: imaplib's `[typ, data]`, a raw step's text, or `{error, message}`. */
  steps: unknown[];
  error?: string;
}

export function imaplib(plan: ImaplibPlan): Promise<ImaplibResult> {
  return runPython<ImaplibResult>(IMAPLIB_DRIVER, plan, 60_000);
}

/**
 * Runs a program on a pseudo-terminal of 40 rows by 132 columns. Steps wait for a regular expression to appear in the screen output written
 * after the previous step's match (escape sequences removed), then type their keys. Prints
 * the exit code (or "timeout"), the whole output with escapes removed and the steps left.
 */
const PTY_DRIVER = String.raw`
import fcntl, json, os, pty, re, select, struct, sys, termios, time
plan = json.load(sys.stdin)
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 132, 0, 0))
    os.chdir(plan["cwd"])
    os.execve(plan["argv"][0], plan["argv"], plan["env"])
ESC = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]|\x1b[=>]|[\x0e\x0f]")
out, seen, steps, status = b"", 0, list(plan["steps"]), None
deadline = time.time() + plan["timeoutMs"] / 1000
while status is None and time.time() < deadline:
    screen = ESC.sub(b"", out)
    if steps:
        m = re.search(steps[0]["wait"].encode("utf-8"), screen[seen:])
        if m:
            seen += m.end()
            os.write(fd, steps.pop(0)["keys"].encode("utf-8"))
    ready, _, _ = select.select([fd], [], [], 0.1)
    if ready:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        out += data
    done, st = os.waitpid(pid, os.WNOHANG)
    if done:
        status = os.waitstatus_to_exitcode(st)
if status is None:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    status = "timeout"
else:
    try:
        while select.select([fd], [], [], 0.2)[0]:
            data = os.read(fd, 65536)
            if not data:
                break
            out += data
    except OSError:
        pass
print(json.dumps({"status": status, "screen": ESC.sub(b"", out).decode("utf-8", "replace"), "stepsLeft": len(steps)}))
`;

export interface PtyStep {
  /** A regular expression (Python syntax) the output must show before `keys` are typed. */
  wait: string;
  keys: string;
}

export interface PtyResult {
  status: number | 'timeout';
  screen: string;
  stepsLeft: number;
}

export function runOnPty(argv: string[], opts: { cwd: string; env: Record<string, string>; steps?: PtyStep[]; timeoutMs?: number }): Promise<PtyResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return runPython<PtyResult>(PTY_DRIVER, { argv, cwd: opts.cwd, env: opts.env, steps: opts.steps ?? [], timeoutMs }, timeoutMs + 10_000);
}

/** isync's version as [major, minor] ("isync 1.4.4" → [1, 4]). */
export async function mbsyncVersion(): Promise<[number, number]> {
  const r = await runProgram(MBSYNC, ['--version'], 10_000);
  const m = /isync (\d+)\.(\d+)/.exec(r.stdout);
  if (!m) throw new Error(`mbsync --version said: ${r.stdout}${r.stderr}`);
  return [Number(m[1]), Number(m[2])];
}

/**
 * Writes an mbsync config syncing every mailbox of `user` (IMAP on `port`, no TLS) with a
 * Maildir tree under `maildir`, in the spelling of the installed version: isync 1.5 renamed
 * SSLType to TLSType, 1.4 (Debian 12) renamed Master/Slave to Far/Near.
 */
export function writeMbsyncConfig(file: string, opts: { port: number; user: string; password: string; maildir: string; version: [number, number] }): void {
  const [major, minor] = opts.version;
  const atLeast = (ma: number, mi: number) => major > ma || (major === ma && minor >= mi);
  writeFileSync(
    file,
    [
      'IMAPAccount tern',
      'Host 127.0.0.1',
      `Port ${opts.port}`,
      `User ${opts.user}`,
      `Pass ${opts.password}`,
      atLeast(1, 5) ? 'TLSType None' : 'SSLType None',
      'AuthMechs LOGIN',
      'Timeout 20',
      '',
      'IMAPStore tern-far',
      'Account tern',
      '',
      'MaildirStore tern-near',
      `Path ${opts.maildir}/`,
      `Inbox ${join(opts.maildir, 'INBOX')}`,
      'SubFolders Verbatim',
      '',
      'Channel tern',
      atLeast(1, 4) ? 'Far :tern-far:' : 'Master :tern-far:',
      atLeast(1, 4) ? 'Near :tern-near:' : 'Slave :tern-near:',
      'Patterns *',
      'Create Both',
      'Expunge Both',
      'SyncState *',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
}

/** Runs `mbsync -D -V` (debug: every IMAP command and answer) on the config's channel. */
export function mbsync(config: string): Promise<ProgramResult> {
  return runProgram(MBSYNC, ['-D', '-V', '-c', config, 'tern'], 120_000);
}

/** The IMAP commands mbsync sent ("F: >>> 12 UID STORE 3 +FLAGS.SILENT (\Seen)" → "UID STORE 3 +FLAGS.SILENT (\Seen)"). */
export function mbsyncCommands(result: ProgramResult): string[] {
  return [...`${result.stdout}\n${result.stderr}`.matchAll(/F: >>> \d+ ([^\r\n]*)/g)].map((m) => m[1]!);
}

/** One message file of a Maildir folder as mbsync names them: `base[,U=uid][:2,FLAGS]`. */
export interface MaildirFile {
  /** Path relative to the folder, e.g. "cur/1795…,U=3:2,FS". */
  path: string;
  uid: number | null;
  /** Maildir flag letters (D F P R S T), sorted. */
  flags: string;
  data: Buffer;
}

export function readMaildir(folder: string): MaildirFile[] {
  return ['cur', 'new'].flatMap((sub) =>
    readdirSync(join(folder, sub)).map((name) => ({
      path: `${sub}/${name}`,
      uid: /,U=(\d+)/.test(name) ? Number(/,U=(\d+)/.exec(name)![1]) : null,
      flags: /:2,([A-Z]*)$/.exec(name)?.[1] ?? '',
      data: readFileSync(join(folder, sub, name)),
    })),
  );
}

/**
 * A message as text to compare an IMAP copy with a Maildir copy: LF line ends (mbsync
 * stores LF, IMAP serves CRLF) and without the X-TUID header field mbsync adds to the
 * copies it writes (so it can find them again after an interrupted run).
 */
export function comparable(message: Buffer): string {
  const text = message.toString('latin1').replace(/\r\n/g, '\n');
  const end = text.indexOf('\n\n');
  const header = end < 0 ? text : text.slice(0, end + 1);
  return header.replace(/^X-TUID: [^\n]*\n/m, '') + (end < 0 ? '' : text.slice(end + 1));
}

/** The value of a message's `X-Seq:` header field (how the tests number their messages). */
export function seqOf(message: Buffer): string {
  const m = /^X-Seq: ([^\r\n]*)/im.exec(message.toString('latin1'));
  if (!m) throw new Error(`message without X-Seq: ${message.toString('latin1').slice(0, 300)}`);
  return m[1]!;
}
