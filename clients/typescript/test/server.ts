// The real execstore server for the tests: the binary the Rust suite built
// (EXECSTORE_BIN) on the database it made for this run (DATABASE_URL).
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

export class Server {
  private child: ChildProcess | null = null;
  readonly port: number;
  private readonly env: Record<string, string>;

  private constructor(port: number, env: Record<string, string>) {
    this.port = port;
    this.env = env;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/graphql`;
  }

  static async start(env: Record<string, string> = {}): Promise<Server> {
    const server = new Server(await freePort(), env);
    await server.spawn();
    return server;
  }

  private async spawn(): Promise<void> {
    const binary = process.env.EXECSTORE_BIN;
    const database = process.env.DATABASE_URL;
    if (!binary || !database) throw new Error('EXECSTORE_BIN and DATABASE_URL are set by the Rust suite');
    const child = spawn(binary, [], {
      env: {
        PATH: process.env.PATH ?? '',
        DATABASE_URL: database,
        EXECSTORE_BIND: `127.0.0.1:${this.port}`,
        EXECSTORE_SQLITE_SYNCHRONOUS: 'normal',
        ...this.env,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.child = child;
    const lines = createInterface({ input: child.stderr! });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the server did not listen within 60 s')), 60_000);
      child.once('exit', (code) => reject(new Error(`the server exited (${code}) before listening`)));
      lines.on('line', (line) => {
        if (process.env.SHOW_SERVER_LOG) console.error(`server: ${line}`);
        if (line.includes('listening on')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  }

  /** SIGTERM, and wait for the exit. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
    this.child = null;
  }

  /** Stopped and started again on the same port and database. */
  async restart(): Promise<void> {
    await this.stop();
    await this.spawn();
  }
}

/** A raw GraphQL request, for comparing the client with what the server says. */
export async function raw(url: string, query: string, variables: Record<string, unknown> = {}): Promise<any> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const answer = (await response.json()) as { data?: any; errors?: unknown[] };
  if (answer.errors) throw new Error(`raw request failed: ${JSON.stringify(answer.errors)}`);
  return answer.data;
}

/** A unique name per test, so that tests sharing one database never meet. */
export function unique(prefix: string): string {
  return `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
}
