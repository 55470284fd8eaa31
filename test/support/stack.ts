import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import type { Kysely } from "kysely";
import type { Database, UsageEventRow } from "@llmaas/db";
import {
  tinyModelPresets,
  tinyWhisperPresets,
  writeTinyModel,
  writeTinyWhisperModel,
} from "@llmaas/tiny-models";
import { createTestDatabase } from "./database.js";
import { testEnv } from "./env.js";
import { SecretRegistry } from "./secrets.js";
import { createTenant, type Tenant } from "./tenant.js";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const TSX_LOADER = join(REPO_ROOT, "node_modules/tsx/dist/esm/index.mjs");

export type ServiceName = "auth" | "metering" | "llm-worker" | "audio-worker" | "guardrail" | "gateway";

interface LogLine {
  msg?: string;
  address?: string;
  level?: number;
}

/** One service started from its real entry point, as a separate process. */
export class ServiceProcess {
  readonly lines: string[] = [];
  private readonly exited: Promise<number | null>;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    this.exited = new Promise((resolveExit) => child.on("exit", (code) => resolveExit(code)));
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream }).on("line", (line) => {
        this.lines.push(line);
        if (testEnv.TEST_SERVICE_LOGS === "1") console.error(`[${name}] ${line}`);
      });
    }
  }

  /** Resolves with the first JSON log line whose message is `msg`; fails if the process exits first. */
  waitFor(msg: string, timeoutMs = 60_000): Promise<LogLine> {
    return new Promise((resolveLine, reject) => {
      const check = (line: string): boolean => {
        try {
          const parsed = JSON.parse(line) as LogLine;
          if (parsed.msg === msg) {
            resolveLine(parsed);
            return true;
          }
        } catch {
          // not a JSON log line (e.g. a native library's own output)
        }
        return false;
      };
      if (this.lines.some(check)) return;
      const timer = setTimeout(
        () => reject(new Error(`${this.name}: no "${msg}" within ${timeoutMs} ms\n${this.tail()}`)),
        timeoutMs,
      );
      const onLine = (line: string): void => {
        if (check(line)) {
          clearTimeout(timer);
          cleanup();
        }
      };
      const onExit = (code: number | null): void => {
        clearTimeout(timer);
        cleanup();
        reject(new Error(`${this.name} exited with ${code} before "${msg}"\n${this.tail()}`));
      };
      const cleanup = (): void => {
        this.child.stdout?.off("data", onData);
        this.child.off("exit", onExit);
      };
      const onData = (data: Buffer): void => {
        for (const line of data.toString().split("\n")) onLine(line);
      };
      this.child.stdout?.on("data", onData);
      this.child.on("exit", onExit);
    });
  }

  tail(count = 30): string {
    return this.lines.slice(-count).join("\n");
  }

  /** SIGTERM, then the exit code of the graceful stop. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGTERM");
    return this.exited;
  }

  kill(): void {
    this.child.kill("SIGKILL");
  }
}

export function startService(
  name: ServiceName,
  env: Record<string, string>,
  label: string = name,
): ServiceProcess {
  const child = spawn(
    process.execPath,
    ["--import", TSX_LOADER, join(REPO_ROOT, "services", name, "src/main.ts")],
    {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  return new ServiceProcess(label, child);
}

export interface StackOptions {
  workers?: number;
  /** Gateway processes; each answers on its own port, all share the bus. */
  gateways?: number;
  /**
   * Catalogue YAML; `{{chatModel}}` is replaced by the path of a freshly generated tiny chat model, and
   * `{{embedModel}}`, when the catalogue uses it, by that of a tiny embedding model, and `{{wideEmbedModel}}` by
   * that of one with 1024 dimensions.
   */
  catalogue?: string;
  /** Audio worker processes (default none); the catalogue's `{{whisperModel}}` is a tiny whisper.cpp model. */
  audioWorkers?: number;
  audioWorkerEnv?: Record<string, string>;
  /** Guardrail processes (default one): 0 leaves screening requests unanswered, to test `on_timeout`. */
  guardrails?: number;
  /** Variables of every service (e.g. OTEL_EXPORTER_OTLP_ENDPOINT), under each one's own. */
  allEnv?: Record<string, string>;
  gatewayEnv?: Record<string, string>;
  /** Variables for one gateway only, by position: to run differently configured gateways side by side. */
  perGatewayEnv?: Record<string, string>[];
  authEnv?: Record<string, string>;
}

export const DEFAULT_CATALOGUE = `
models:
  - id: tiny-chat
    owned_by: llmaas
    created: 2026-11-21
    source: "{{chatModel}}"
    capabilities: [chat, completion, tools]
    context_length: 512
    pricing: { input_per_million: 0.5, output_per_million: 1.5 }
    runtime:
      threads: 1
      sequences: 4
  - id: tiny-embed
    owned_by: llmaas
    created: 2026-11-21
    source: "{{embedModel}}"
    capabilities: [embeddings]
    context_length: 256
    embeddings:
      dimensions: 64
    pricing: { input_per_million: 0.1 }
    runtime:
      threads: 1
      sequences: 2
aliases:
  chat-default: tiny-chat
`;

export interface Stack extends Tenant {
  /** The first gateway's `/v1` URL. */
  baseURL: string;
  /** Every gateway's, in start order. */
  baseURLs: string[];
  operatorToken: string;
  /** Every secret the run issued: the stack's own, and any a test hands it or reads through `openaiClient`. */
  secrets: SecretRegistry;
  db: Kysely<Database>;
  namespace: string;
  services: Record<string, ServiceProcess>;
  workers: ServiceProcess[];
  /** Polls Postgres until the usage of `requestId` is recorded. */
  waitForUsage(requestId: string, timeoutMs?: number): Promise<UsageEventRow>;
  /** The usage recorded so far under request ids that start with `prefix` (one row per worker request). */
  usageByPrefix(prefix: string): Promise<{ rows: number; promptTokens: number; completionTokens: number }>;
  /**
   * Stops every service with SIGTERM and removes what the stack created; resolves with each exit code. Fails if any
   * secret of the run appears in a service's log or in the audit log.
   */
  stop(): Promise<Record<string, number | null>>;
}

/**
 * The whole platform for one test file: a database and a bus namespace of its own (so runs on a shared machine
 * cannot see each other), the tiny model, and every service as its own process.
 */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const namespace = `test_${randomBytes(6).toString("hex")}`;
  const database = await createTestDatabase();
  const db = database.db;

  const dir = await mkdtemp(join(tmpdir(), "llmaas-test-"));
  const chatModel = await writeTinyModel(join(dir, "tiny-chat.gguf"), tinyModelPresets["tiny-chat"]);
  const cataloguePath = join(dir, "catalogue.yaml");
  let catalogue = (options.catalogue ?? DEFAULT_CATALOGUE).replaceAll("{{chatModel}}", chatModel.path);
  if (catalogue.includes("{{embedModel}}")) {
    const embedModel = await writeTinyModel(join(dir, "tiny-embed.gguf"), tinyModelPresets["tiny-embed"]);
    catalogue = catalogue.replaceAll("{{embedModel}}", embedModel.path);
  }
  if (catalogue.includes("{{wideEmbedModel}}")) {
    const wide = await writeTinyModel(join(dir, "tiny-embed-wide.gguf"), tinyModelPresets["tiny-embed-wide"]);
    catalogue = catalogue.replaceAll("{{wideEmbedModel}}", wide.path);
  }
  if (catalogue.includes("{{whisperModel}}")) {
    const whisper = await writeTinyWhisperModel(
      join(dir, "tiny-whisper.bin"),
      tinyWhisperPresets["tiny-whisper"],
    );
    catalogue = catalogue.replaceAll("{{whisperModel}}", whisper.path);
  }
  await writeFile(cataloguePath, catalogue);

  const secrets = new SecretRegistry();
  const keySecret = randomBytes(32).toString("hex");
  const operatorToken = `op-${randomBytes(32).toString("base64url")}`;
  secrets.add("server HMAC key", keySecret);
  secrets.add("operator token", operatorToken);

  const common = {
    NATS_URL: testEnv.NATS_URL,
    BUS_NAMESPACE: namespace,
    LOG_LEVEL: "info",
    DATABASE_URL: database.url,
    CATALOGUE_PATH: cataloguePath,
    ...options.allEnv,
  };
  const auth = startService("auth", {
    ...common,
    AUTH_KEY_SECRET: keySecret,
    OPERATOR_TOKEN: operatorToken,
    ...options.authEnv,
  });
  const metering = startService("metering", { ...common, METERING_BATCH_SIZE: "50" });
  const workers = Array.from({ length: options.workers ?? 1 }, (_, index) =>
    startService(
      "llm-worker",
      { ...common, INSTANCE_ID: `llm-worker-${index + 1}` },
      `llm-worker-${index + 1}`,
    ),
  );
  const audioWorkers = Array.from({ length: options.audioWorkers ?? 0 }, (_, index) =>
    startService(
      "audio-worker",
      { ...common, INSTANCE_ID: `audio-worker-${index + 1}`, ...options.audioWorkerEnv },
      `audio-worker-${index + 1}`,
    ),
  );
  const guardrails = Array.from({ length: options.guardrails ?? 1 }, (_, index) =>
    startService("guardrail", { ...common, INSTANCE_ID: `guardrail-${index + 1}` }, `guardrail-${index + 1}`),
  );
  const gateways = Array.from({ length: options.gateways ?? 1 }, (_, index) =>
    startService(
      "gateway",
      {
        ...common,
        PORT: "0",
        INSTANCE_ID: `gateway-${index + 1}`,
        ...options.gatewayEnv,
        ...options.perGatewayEnv?.[index],
      },
      index === 0 ? "gateway" : `gateway-${index + 1}`,
    ),
  );
  const services: Record<string, ServiceProcess> = { auth, metering };
  for (const gateway of gateways) services[gateway.name] = gateway;
  for (const worker of [...workers, ...audioWorkers, ...guardrails]) services[worker.name] = worker;

  let stopping: Promise<Record<string, number | null>> | undefined;
  const stop = (): Promise<Record<string, number | null>> => (stopping ??= stopAll());
  const stopAll = async (): Promise<Record<string, number | null>> => {
    const codes: Record<string, number | null> = {};
    // Entry first, so no new work reaches the workers while they drain.
    for (const gateway of gateways) codes[gateway.name] = await gateway.stop();
    for (const worker of [...workers, ...audioWorkers, ...guardrails])
      codes[worker.name] = await worker.stop();
    codes.auth = await auth.stop();
    codes.metering = await metering.stop();
    const auditRows = await db.selectFrom("audit_logs").selectAll().execute();
    await database.drop();
    await deleteNamespaceStreams(namespace);
    await rm(dir, { recursive: true, force: true });
    const leaks = secrets.leaksIn({
      ...Object.fromEntries(
        Object.values(services).map((service) => [`${service.name}'s log`, service.lines]),
      ),
      "the audit log": auditRows.map((row) => JSON.stringify(row)),
    });
    if (leaks.length > 0) throw new Error(`secrets leaked:\n${leaks.join("\n")}`);
    return codes;
  };

  try {
    const [addresses] = await Promise.all([
      Promise.all(gateways.map((gateway) => gateway.waitFor("gateway ready"))),
      auth.waitFor("auth ready"),
      metering.waitFor("metering ready"),
      ...workers.map((worker) => worker.waitFor("llm-worker ready")),
      ...audioWorkers.map((worker) => worker.waitFor("audio-worker ready")),
      ...guardrails.map((guardrail) => guardrail.waitFor("guardrail ready")),
    ]);
    const baseURLs = addresses.map((ready) => {
      if (!ready.address) throw new Error("a gateway did not report its address");
      return `${ready.address}/v1`;
    });
    const baseURL = baseURLs[0] as string;
    const tenant = await createTenant(baseURL, operatorToken, secrets);
    return {
      ...tenant,
      baseURL,
      baseURLs,
      operatorToken,
      secrets,
      db,
      namespace,
      services,
      workers,
      stop,
      waitForUsage: async (requestId, timeoutMs = 15_000) => {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const row = await db
            .selectFrom("usage_events")
            .selectAll()
            .where("request_id", "=", requestId)
            .executeTakeFirst();
          if (row) return row;
          if (Date.now() > deadline)
            throw new Error(`no usage recorded for ${requestId} within ${timeoutMs} ms`);
          await new Promise((r) => setTimeout(r, 100));
        }
      },
      usageByPrefix: async (prefix) => {
        const rows = await db
          .selectFrom("usage_events")
          .select(["prompt_tokens", "completion_tokens"])
          .where("request_id", "like", `${prefix}%`)
          .execute();
        return {
          rows: rows.length,
          promptTokens: rows.reduce((sum, row) => sum + row.prompt_tokens, 0),
          completionTokens: rows.reduce((sum, row) => sum + row.completion_tokens, 0),
        };
      },
    };
  } catch (error) {
    for (const service of Object.values(services)) service.kill();
    await stop().catch(() => undefined);
    throw error;
  }
}

export async function deleteNamespaceStreams(namespace: string): Promise<void> {
  const { connect } = await import("@nats-io/transport-node");
  const { jetstreamManager } = await import("@nats-io/jetstream");
  const nc = await connect({ servers: testEnv.NATS_URL });
  try {
    const jsm = await jetstreamManager(nc);
    for await (const name of jsm.streams.names()) {
      if (name.endsWith(`_${namespace}`)) await jsm.streams.delete(name);
    }
  } finally {
    await nc.close();
  }
}
