// Which models a key may call: its project's model permissions (allow list or deny list) and its own
// allowed_models, both written with ids or aliases, an alias standing for the model it resolves to.
import t from "tap";
import { parseCatalogue } from "@llmaas/catalogue";
import { PlatformError, type ModelPermissions } from "@llmaas/contracts";
import { resolveModel, type ModelAccess } from "../src/model-resolution.js";

const catalogue = parseCatalogue(
  `
models:
  - { id: chat-a, owned_by: t, created: 2026-01-01, source: a.gguf, capabilities: [chat], context_length: 64, pricing: {} }
  - { id: chat-b, owned_by: t, created: 2026-01-01, source: b.gguf, capabilities: [chat], context_length: 64, pricing: {} }
  - { id: embed-c, owned_by: t, created: 2026-01-01, source: c.gguf, capabilities: [embeddings], context_length: 64, embeddings: { dimensions: 8 }, pricing: {} }
aliases:
  default: chat-a
  vectors: embed-c
`,
  "/",
  "test catalogue",
);

function access(permissions: ModelPermissions | null, allowedModels: string[] | null = null): ModelAccess {
  return { allowedModels, limits: { projectModelPermissions: permissions } };
}

/** The refusal's message, or "allowed". */
function outcome(model: string, given: ModelAccess): string {
  const capability = catalogue.find(model)?.capabilities[0] ?? "chat";
  try {
    resolveModel(catalogue, model, capability, given);
    return "allowed";
  } catch (error) {
    if (error instanceof PlatformError && error.code === "permission_denied" && error.param === "model") {
      return error.message;
    }
    throw error;
  }
}

void t.test("no permissions and no allowed_models: every model", async (t) => {
  for (const model of ["chat-a", "chat-b", "embed-c", "default", "vectors"]) {
    t.equal(outcome(model, access(null)), "allowed", model);
  }
});

void t.test(
  "an allow list allows what it names, by id or alias, whichever way the request names it",
  async (t) => {
    const byAlias = access({ mode: "allow_list", modelIds: ["default", "embed-c"] });
    t.equal(outcome("chat-a", byAlias), "allowed", "an alias on the list allows its model by id");
    t.equal(outcome("default", byAlias), "allowed", "and by the alias");
    t.equal(outcome("vectors", byAlias), "allowed", "an id on the list allows its model by any alias");
    t.equal(
      outcome("chat-b", byAlias),
      "The model `chat-b` is not allowed in this project: it is not on the project's allow list " +
        "(model_permissions: `default`, `embed-c`).",
      "anything else is refused, naming the model and the policy",
    );
    t.match(
      outcome("chat-a", access({ mode: "allow_list", modelIds: [] })),
      /`chat-a`.*allow list \(model_permissions\) is empty/,
      "an empty allow list allows no model",
    );
    t.match(
      outcome("chat-a", access({ mode: "allow_list", modelIds: ["retired-since"] })),
      /not on the project's allow list/,
      "an entry the catalogue no longer knows allows nothing",
    );
  },
);

void t.test("a deny list refuses what it names, by id or alias, and nothing else", async (t) => {
  const denyAlias = access({ mode: "deny_list", modelIds: ["default"] });
  t.equal(
    outcome("chat-a", denyAlias),
    "The model `chat-a` is not allowed in this project: it is on the project's deny list " +
      "(model_permissions: `default`).",
    "an alias on the list denies its model by id",
  );
  t.match(outcome("default", denyAlias), /deny list/, "and by the alias");
  t.equal(outcome("chat-b", denyAlias), "allowed");
  t.match(
    outcome("vectors", access({ mode: "deny_list", modelIds: ["embed-c"] })),
    /`embed-c`.*deny list/,
    "an id on the list denies its model by any alias",
  );
  t.equal(outcome("chat-a", access({ mode: "deny_list", modelIds: [] })), "allowed", "an empty one, nothing");
});

void t.test("the key's allowed_models narrow what the project allows", async (t) => {
  const project = access({ mode: "deny_list", modelIds: ["chat-b"] }, ["default", "chat-b"]);
  t.equal(outcome("chat-a", project), "allowed", "allowed by both");
  t.match(
    outcome("chat-b", project),
    /in this project.*deny list/,
    "the key allowing it does not lift the project's refusal, which is named first",
  );
  t.equal(
    outcome("embed-c", project),
    "The model `embed-c` is not allowed for this API key: it is not in the key's allowed_models " +
      "(`default`, `chat-b`).",
    "the project allowing it does not lift the key's",
  );
  const allowList = access({ mode: "allow_list", modelIds: ["chat-a", "chat-b"] }, ["chat-b"]);
  t.match(outcome("chat-a", allowList), /allowed_models/);
  t.equal(outcome("chat-b", allowList), "allowed");
});

void t.test("an unknown model is not found, whatever the permissions", async (t) => {
  t.throws(() => resolveModel(catalogue, "nope", "chat", access({ mode: "allow_list", modelIds: [] })), {
    code: "model_not_found",
  });
});
