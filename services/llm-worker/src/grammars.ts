import type { Llama, LlamaGrammar } from "node-llama-cpp";
import type { JsonSchema, ToolDefinition } from "@llmaas/contracts";

/**
 * node-llama-cpp's JSON number rules allow 16-digit exponents: `1E9999999999999999` parses to Infinity and an
 * "integer" can be `1E-5`. Integers lose their exponent and other numbers keep at most two exponent digits, so
 * whatever the grammar admits parses to a finite value of the right kind.
 */
const EXPONENT = ' ([eE] [-+]? ("0" | [1-9] [0-9]{0,15}))?';
const SHORT_EXPONENT = " ([eE] [-+]? [0-9]{1,2})?";

function finiteNumbers(gbnf: string): string {
  return gbnf
    .split("\n")
    .map((line) =>
      line.startsWith("integer-number-rule ")
        ? line.replace(EXPONENT, "")
        : line.startsWith("fractional-number-rule ")
          ? line.replace(EXPONENT, SHORT_EXPONENT)
          : line,
    )
    .join("\n");
}

/** The exact JSON text a forced tool call must take, so a streaming parser can follow it. */
export function forcedToolCallSchema(tools: ToolDefinition[]): JsonSchema {
  const call = (tool: ToolDefinition): JsonSchema => ({
    type: "object",
    properties: { name: { const: tool.name }, arguments: tool.parameters },
    required: ["name", "arguments"],
    additionalProperties: false,
  });
  return tools.length === 1 && tools[0] ? call(tools[0]) : { oneOf: tools.map(call) };
}

/**
 * Grammars are compiled once per schema: structured-output clients send the same schema with every request, and
 * building a grammar costs far more than a look-up.
 */
export class GrammarCache {
  private readonly cache = new Map<string, Promise<LlamaGrammar>>();

  constructor(
    private readonly llama: Llama,
    private readonly capacity = 256,
  ) {}

  anyJson(): Promise<LlamaGrammar> {
    return this.remember("json", () => this.llama.getGrammarFor("json"));
  }

  forSchema(schema: JsonSchema): Promise<LlamaGrammar> {
    return this.remember(`schema:${JSON.stringify(schema)}`, async () => {
      // The gateway has already checked the schema against what these grammars support.
      const generated = await this.llama.createGrammarForJsonSchema(
        schema as unknown as Parameters<Llama["createGrammarForJsonSchema"]>[0],
      );
      return this.llama.createGrammar({
        grammar: finiteNumbers(generated.grammar),
        stopGenerationTriggers: ["\n\n\n\n"],
        trimWhitespaceSuffix: true,
      });
    });
  }

  private remember(key: string, create: () => Promise<LlamaGrammar>): Promise<LlamaGrammar> {
    const hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit;
    }
    const created = create();
    created.catch(() => this.cache.delete(key));
    this.cache.set(key, created);
    if (this.cache.size > this.capacity) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    return created;
  }
}
