import { execFile, execFileSync } from "node:child_process";
import { chown, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { existsSync, rmSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/**
 * A Postgres cluster of the test's own, on a port of its own: a test may stop and restart it, which it must never do
 * to the machine's shared server (other test files use that one at the same time).
 */
export interface PrivatePostgres {
  port: number;
  /** `postgres://postgres@127.0.0.1:<port>/<database>`; the cluster has the `postgres` database and trust auth. */
  url(database?: string): string;
  /**
   * Stops the server and starts it again on the same port and data: `fast` ends every session first (clients get
   * admin_shutdown), `immediate` kills it outright, as a crash would (crash recovery at the next start).
   */
  restart(mode?: "fast" | "immediate"): Promise<void>;
  /** Stops the server (immediately: nothing in it is kept) and removes its data. */
  stop(): Promise<void>;
  /** The server's own log so far, to explain a failure. */
  log(): Promise<string>;
}

/** The newest PostgreSQL server binaries of the machine (Debian's layout, as infra/lib/deps.sh finds them). */
async function postgresBinDir(): Promise<string> {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root) ? await readdir(root) : [];
  const dir = versions
    .filter((version) => /^\d+$/.test(version))
    .sort((a, b) => Number(a) - Number(b))
    .map((version) => join(root, version, "bin"))
    .filter((candidate) => existsSync(join(candidate, "initdb")))
    .pop();
  if (dir) return dir;
  try {
    const { stdout } = await run("pg_config", ["--bindir"]);
    const bindir = stdout.trim();
    if (existsSync(join(bindir, "initdb"))) return bindir;
  } catch {
    // no pg_config either
  }
  throw new Error(
    "a private Postgres needs the PostgreSQL server binaries (initdb, pg_ctl): install the Debian package " +
      "'postgresql' (bash test/run does, when it starts a Postgres of its own)",
  );
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * initdb into a new temporary directory and start the server on a free port. Postgres refuses to run as root, so
 * as root the cluster belongs to the `postgres` user and every command runs through `runuser`.
 */
export async function startPrivatePostgres(
  options: { settings?: Record<string, string> } = {},
): Promise<PrivatePostgres> {
  const bin = await postgresBinDir();
  const dir = await mkdtemp(join(tmpdir(), "llmaas-pg-"));
  const asRoot = userInfo().uid === 0;
  if (asRoot) {
    const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
    await chown(dir, uid, gid);
  }
  const command = (tool: string, args: string[]): [string, string[]] =>
    asRoot ? ["runuser", ["-u", "postgres", "--", join(bin, tool), ...args]] : [join(bin, tool), args];
  const data = join(dir, "data");
  const logFile = join(dir, "postgres.log");
  const port = await freePort();
  // Written to the kernel, not to the disk: a killed server loses nothing, and the test does not wait on fsync.
  const settings = { fsync: "off", full_page_writes: "off", ...options.settings };
  const serverOptions = [
    `-h 127.0.0.1 -p ${port} -k ${dir}`,
    ...Object.entries(settings).map(([name, value]) => `-c ${name}=${value}`),
  ].join(" ");

  const pgCtl = async (args: string[]): Promise<void> => {
    const [file, fileArgs] = command("pg_ctl", ["-D", data, ...args]);
    await run(file, fileArgs, { timeout: 60_000 });
  };
  const start = () => pgCtl(["start", "-w", "-t", "60", "-l", logFile, "-o", serverOptions]);
  const stopNow = (): void => {
    const [file, fileArgs] = command("pg_ctl", ["-D", data, "stop", "-m", "immediate", "-w"]);
    try {
      execFileSync(file, fileArgs, { stdio: "ignore", timeout: 30_000 });
    } catch {
      // not running
    }
  };
  // A test process that ends without its teardown (a failure, a crash) must not leave the server running.
  const onExit = (): void => {
    stopNow();
    rmSync(dir, { recursive: true, force: true });
  };
  process.on("exit", onExit);
  try {
    const [initdb, initdbArgs] = command("initdb", [
      "-D",
      data,
      "-A",
      "trust",
      "-U",
      "postgres",
      "--no-sync",
    ]);
    await run(initdb, initdbArgs);
    await start();
  } catch (error) {
    const log = await readFile(logFile, "utf8").catch(() => "");
    onExit();
    process.off("exit", onExit);
    throw new Error(`the private Postgres did not start${log ? `:\n${log}` : ""}`, { cause: error });
  }

  let stopped = false;
  return {
    port,
    url: (database = "postgres") => `postgres://postgres@127.0.0.1:${port}/${database}`,
    async restart(mode = "fast") {
      await pgCtl(["stop", "-m", mode, "-w", "-t", "60"]);
      await start();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      stopNow();
      process.off("exit", onExit);
      await rm(dir, { recursive: true, force: true });
    },
    log: () => readFile(logFile, "utf8").catch(() => ""),
  };
}
