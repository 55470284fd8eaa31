import { Readable } from "node:stream";
import type { FastifyInstance } from "fastify";
import { adminSubjects, MAX_BUS_PAGE, openaiAdmin, type AdminPrincipal } from "@llmaas/contracts";
import { adminOf } from "../auth/index.js";
import type { BusCall } from "./call.js";

interface Page<Item> {
  data: Item[];
  has_more: boolean;
  last_id: string | null;
}

/** Every item of a cursor-paged list, one bus message per page, so no list ever needs one large message. */
async function* everything<Item>(
  fetchPage: (after: string | null) => Promise<Page<Item>>,
): AsyncGenerator<Item> {
  let after: string | null = null;
  for (;;) {
    const page: Page<Item> = await fetchPage(after);
    yield* page.data;
    if (!page.has_more || page.last_id === null) return;
    after = page.last_id;
  }
}

async function collect<Item>(items: AsyncIterable<Item>): Promise<Item[]> {
  const all: Item[] = [];
  for await (const item of items) all.push(item);
  return all;
}

async function* jsonArray(items: AsyncIterable<unknown>): AsyncGenerator<string> {
  let first = true;
  yield "[";
  for await (const item of items) {
    yield (first ? "" : ",") + JSON.stringify(item);
    first = false;
  }
  yield "]";
}

/**
 * Everything the organization configured, as one JSON document: a customer who leaves takes it along. Streamed as it
 * is read, page by page from `auth`: the audit log alone can outgrow any message and any sensible buffer. Secrets
 * are not in it (only keys' redacted values); they were shown once and are not stored.
 */
async function* exportDocument(call: BusCall, principal: AdminPrincipal): AsyncGenerator<string> {
  const organization = await call(adminSubjects.organizationRetrieve, { principal });
  const pageOf = { principal, limit: MAX_BUS_PAGE };
  yield `{"object":"organization.export","exported_at":${Math.floor(Date.now() / 1000)}`;
  yield `,"organization":${JSON.stringify(organization)}`;
  yield `,"data_retention":${JSON.stringify(openaiAdmin.ORGANIZATION_DATA_RETENTION)}`;
  const spendLimit = await call(adminSubjects.organizationSpendLimitRetrieve, { principal });
  yield `,"spend_limit":${JSON.stringify(spendLimit)}`;
  yield ',"users":';
  yield* jsonArray(everything((after) => call(adminSubjects.usersList, { ...pageOf, after, emails: null })));
  yield ',"admin_api_keys":';
  yield* jsonArray(
    everything((after) => call(adminSubjects.adminKeysList, { ...pageOf, after, order: "asc" })),
  );
  yield ',"projects":';
  const projects = everything((after) =>
    call(adminSubjects.projectsList, { ...pageOf, after, includeArchived: true }),
  );
  yield* jsonArray(
    (async function* () {
      for await (const project of projects) {
        const projectId = project.id;
        yield {
          ...project,
          service_accounts: await collect(
            everything((after) => call(adminSubjects.serviceAccountsList, { ...pageOf, projectId, after })),
          ),
          api_keys: await collect(
            everything((after) => call(adminSubjects.apiKeysList, { ...pageOf, projectId, after })),
          ),
          rate_limits: await collect(
            everything((after) =>
              call(adminSubjects.rateLimitsList, { ...pageOf, projectId, after, before: null }),
            ),
          ),
          model_permissions: await call(adminSubjects.modelPermissionsRetrieve, { principal, projectId }),
          spend_limit: await call(adminSubjects.projectSpendLimitRetrieve, { principal, projectId }),
          guardrail: await call(adminSubjects.projectGuardrailRetrieve, { principal, projectId }),
        };
      }
    })(),
  );
  yield ',"audit_logs":';
  const noFilter = {
    effectiveAt: {},
    projectIds: [],
    eventTypes: [],
    actorIds: [],
    actorEmails: [],
    resourceIds: [],
  };
  yield* jsonArray(
    everything((after) =>
      call(adminSubjects.auditLogsList, { ...pageOf, filter: noFilter, after, before: null }),
    ),
  );
  yield "}";
}

/**
 * A streamed answer whose first chunk is read before anything is sent: a failure there (the owning service
 * unreachable) is still an ordinary error answer; a failure later cuts the connection, so the client sees an
 * incomplete body, never a complete-looking one. Chunks are pulled only as the client reads (backpressure).
 */
async function streamFromFirstChunk(chunks: AsyncGenerator<string>): Promise<Readable> {
  const first = await chunks.next();
  const rest = (async function* () {
    if (!first.done) yield first.value;
    yield* chunks;
  })();
  // Byte mode: the buffer ahead of the socket is bounded in bytes, not in (possibly large) chunks.
  return Readable.from(rest, { objectMode: false });
}

/** `GET /v1/organization/export` (extension). A failure part-way cuts the connection: the document is then invalid. */
export function registerExport(app: FastifyInstance, call: BusCall): void {
  app.get("/v1/organization/export", async (request, reply) => {
    const principal = adminOf(request);
    const body = await streamFromFirstChunk(exportDocument(call, principal));
    return reply
      .type("application/json")
      .header("content-disposition", `attachment; filename="${principal.organizationId}-export.json"`)
      .send(body);
  });
}
