// Several instances of a service run at once: two llm-worker processes serving the same model share the load
// through their NATS queue group, and every service stops cleanly on SIGTERM.
import t from "tap";
import { startStack } from "../support/stack.js";
import { openaiClient } from "../support/client.js";

const stack = await startStack({ workers: 2 });
t.teardown(() => stack.stop());
const client = openaiClient(stack);

void t.test("two workers serving the same model both serve requests", async (t) => {
  const servedBy = new Set<string>();
  const requestIds: string[] = [];
  // NATS picks a queue member at random per request; batches of 8 make "only one worker ever chosen" vanishingly
  // unlikely (2^-7 per batch) without making the test long.
  for (let batch = 0; batch < 6 && servedBy.size < 2; batch++) {
    const completions = await Promise.all(
      Array.from({ length: 8 }, (_, index) =>
        client.chat.completions.create({
          model: "tiny-chat",
          messages: [{ role: "user", content: `request ${batch}-${index}` }],
          max_tokens: 8,
        }),
      ),
    );
    for (const completion of completions) {
      requestIds.push(completion.id);
      const row = await stack.waitForUsage(completion.id);
      t.equal(row.completion_tokens, completion.usage?.completion_tokens);
      servedBy.add(row.served_by);
    }
  }
  t.same([...servedBy].sort(), ["llm-worker-1", "llm-worker-2"], "both workers served requests");
  t.equal(new Set(requestIds).size, requestIds.length, "every request recorded once");
});

void t.test("every service exits 0 on SIGTERM", async (t) => {
  const codes = await stack.stop();
  t.same(codes, { gateway: 0, "llm-worker-1": 0, "llm-worker-2": 0, "guardrail-1": 0, auth: 0, metering: 0 });
});
