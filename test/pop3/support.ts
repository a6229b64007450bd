/**
 * Shared bits of the POP3 tests: a raw line client (plain, STLS or implicit TLS) that
 * reads exact bytes, `tern serve` with the POP3 ports open, delivering exact bytes over
 * SMTP (BDAT stores them as they are), and running Python's poplib. Not a test file itself.
 */
import { spawn } from 'node:child_process';
import { LineClient, openSocket } from '../helpers/line-client.js';
import { openSession } from '../helpers/raw-smtp.js';
import { cli, serveForSuite, type Site, type TernServer } from '../helpers/tern.js';

/** A POP3 client that sends what a test says and reads replies byte for byte (latin1 strings). */
export class Pop3Client extends LineClient {
  /** Connects and reads the greeting (returned in `greeting`). */
  static async connect(port: number, opts: { tls?: boolean } = {}): Promise<Pop3Client & { greeting: string }> {
    const client = new Pop3Client(await openSocket(port, opts));
    return Object.assign(client, { greeting: await client.line() });
  }

  /** One line without its CRLF. */
  async line(timeoutMs = 10_000): Promise<string> {
    await this.waitFor(() => this.buffer.includes('\r\n'), timeoutMs, 'a line');
    const at = this.buffer.indexOf('\r\n');
    const line = this.buffer.slice(0, at);
    this.buffer = this.buffer.slice(at + 2);
    return line;
  }

  /** The body of a multi-line response as sent (still byte-stuffed), up to and without the final ".CRLF". */
  async multiline(timeoutMs = 10_000): Promise<string> {
    const end = () => (this.buffer.startsWith('.\r\n') ? 0 : this.buffer.indexOf('\r\n.\r\n'));
    await this.waitFor(() => end() >= 0, timeoutMs, 'the end of a multi-line response');
    const at = end();
    const body = at === 0 ? '' : this.buffer.slice(0, at + 2);
    this.buffer = this.buffer.slice(at === 0 ? 3 : at + 5);
    return body;
  }

  /** Sends a command line; returns the status line. */
  async command(line: string): Promise<string> {
    this.send(`${line}\r\n`);
    return this.line();
  }
}

/** The password createSite gives its accounts. */
export const PASSWORD = 'password123';

export interface Pop3Server extends TernServer {
  pop3Port: number;
  pop3sPort: number;
}

/**
 * A fresh site (alice@ and bob@example.test, "password123", plus `users`, same password)
 * served with SMTP and POP3 for one describe block.
 */
export function servePop3ForSuite(opts: { users?: string[]; args?: string[] } = {}): { readonly site: Site; readonly tern: Pop3Server } {
  const suite = serveForSuite({
    ports: ['pop3', 'pop3s'],
    args: ['--roles', 'smtp,pop3', ...(opts.args ?? [])],
    setup: async (site) => {
      for (const user of opts.users ?? []) await cli(['user', 'add', user, '--password-stdin', ...site.args], `${PASSWORD}\n`);
    },
  });
  return {
    get site() {
      return suite.site;
    },
    get tern() {
      return Object.assign(suite.tern, { pop3Port: suite.port('pop3'), pop3sPort: suite.port('pop3s') });
    },
  };
}

/** Delivers `message` byte for byte (BDAT LAST) to `to` over SMTP. */
export async function deliver(smtpPort: number, to: string, message: Buffer | string): Promise<void> {
  const data = typeof message === 'string' ? Buffer.from(message, 'latin1') : message;
  const c = await openSession(smtpPort);
  try {
    for (const line of ['MAIL FROM:<sender@remote.test> BODY=8BITMIME', `RCPT TO:<${to}>`]) {
      const r = await c.command(line);
      if (r.code !== 250) throw new Error(`${line}: ${r.text}`);
    }
    c.send(Buffer.concat([Buffer.from(`BDAT ${data.length} LAST\r\n`), data]));
    const r = await c.read();
    if (r.code !== 250) throw new Error(`BDAT: ${r.text}`);
    await c.command('QUIT');
  } finally {
    c.close();
  }
}

/**
 * Drives Python's poplib (Debian's python3). Reads a plan as JSON on stdin: where to
 * connect (`mode` plain, stls or ssl), how to log in (USER/PASS or AUTH PLAIN) and the
 * steps; prints one JSON object: the greeting, the result of each step (multi-line data as
 * base64 of the lines joined with CRLF, as poplib returns them un-stuffed), or the error.
 */
const POPLIB_DRIVER = String.raw`
import base64, json, poplib, ssl, sys
plan = json.load(sys.stdin)
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
out = {"steps": []}
def data(lines):
    return base64.b64encode(b"".join(l + b"\r\n" for l in lines)).decode()
try:
    if plan["mode"] == "ssl":
        p = poplib.POP3_SSL("127.0.0.1", plan["port"], context=ctx, timeout=15)
    else:
        p = poplib.POP3("127.0.0.1", plan["port"], timeout=15)
    out["greeting"] = p.getwelcome().decode("latin1")
    if plan["mode"] == "stls":
        out["capaBefore"] = sorted(p.capa().keys())
        out["stls"] = p.stls(ctx).decode("latin1")
        out["capaAfter"] = sorted(p.capa().keys())
    if plan.get("auth") == "plain":
        ir = base64.b64encode(("\0" + plan["user"] + "\0" + plan["password"]).encode()).decode()
        out["login"] = p._shortcmd("AUTH PLAIN " + ir).decode("latin1")
    elif plan.get("auth") == "plain-continue":
        ir = base64.b64encode(("\0" + plan["user"] + "\0" + plan["password"]).encode()).decode()
        out["continue"] = p._shortcmd("AUTH PLAIN").decode("latin1")
        out["login"] = p._shortcmd(ir).decode("latin1")
    else:
        p.user(plan["user"])
        out["login"] = p.pass_(plan["password"]).decode("latin1")
    for step in plan["steps"]:
        op, args = step[0], step[1:]
        if op == "stat":
            out["steps"].append(list(p.stat()))
        elif op in ("list", "uidl") and args:
            out["steps"].append(getattr(p, op)(args[0]).decode("latin1"))
        elif op in ("list", "uidl"):
            resp, lines, _ = getattr(p, op)()
            out["steps"].append([l.decode("latin1") for l in lines])
        elif op in ("retr", "top"):
            resp, lines, octets = getattr(p, op)(*args)
            out["steps"].append({"resp": resp.decode("latin1"), "data": data(lines), "octets": octets})
        elif op in ("dele", "rset", "noop"):
            out["steps"].append(getattr(p, op)(*args).decode("latin1"))
        elif op == "raw":
            try:
                out["steps"].append(p._shortcmd(args[0]).decode("latin1"))
            except poplib.error_proto as e:
                out["steps"].append(str(e.args[0].decode("latin1") if isinstance(e.args[0], bytes) else e.args[0]))
        elif op == "quit":
            out["steps"].append(p.quit().decode("latin1"))
        elif op == "drop":
            p.sock.close()
            out["steps"].append("dropped")
except poplib.error_proto as e:
    out["error"] = e.args[0].decode("latin1") if isinstance(e.args[0], bytes) else str(e.args[0])
except Exception as e:
    out["error"] = type(e).__name__ + ": " + str(e)
print(json.dumps(out))
`;

export interface PoplibPlan {
  port: number;
  mode: 'plain' | 'stls' | 'ssl';
  auth?: 'user' | 'plain' | 'plain-continue';
  user: string;
  password: string;
  steps: Array<[string, ...Array<string | number>]>;
}

export interface PoplibResult {
  greeting?: string;
  capaBefore?: string[];
  capaAfter?: string[];
  stls?: string;
  continue?: string;
  login?: string;
  steps: unknown[];
  error?: string;
}

export interface PoplibMessage {
  resp: string;
  /** The lines poplib returned (un-stuffed), joined with CRLF, as base64. */
  data: string;
  octets: number;
}

/** Runs the poplib driver with `plan`; rejects if python3 fails outright. */
export function poplib(plan: PoplibPlan): Promise<PoplibResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', POPLIB_DRIVER], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(stdout) as PoplibResult);
      } catch {
        reject(new Error(`python3 exited ${code}: ${stderr}${stdout}`));
      }
    });
    child.stdin.end(JSON.stringify(plan));
  });
}
