// No retention: content must not reach a log line even when a call site passes a whole request by mistake.
import t from "tap";
import { Writable } from "node:stream";
import { createLogger } from "../src/index.js";

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { lines, logger: createLogger({ service: "t", instanceId: "i", level: "info", destination }) };
}

const SECRET = "the-customer-prompt-4242";

void t.test("content fields are removed at any depth the logger looks at", async (t) => {
  const { lines, logger } = capture();
  logger.info(
    {
      requestId: "r1",
      body: { messages: [{ role: "user", content: SECRET }] },
      messages: [{ content: SECRET }],
      prompt: SECRET,
      input: SECRET,
      request: {
        body: SECRET,
        prompt: SECRET,
        content: SECRET,
        headers: { authorization: `Bearer ${SECRET}` },
      },
      usage: { text: SECRET, choices: [{ message: SECRET }] },
      apiKey: SECRET,
    },
    "handled",
  );
  t.equal(lines.length, 1);
  t.notMatch(lines.join(""), SECRET);
  t.match(lines[0], /"requestId":"r1"/, "metadata stays");
});

void t.test("request serializers keep only the request line", async (t) => {
  const { lines, logger } = capture();
  logger.info(
    { req: { method: "POST", url: "/v1/chat/completions", id: "1", body: SECRET, headers: {} } },
    "in",
  );
  t.notMatch(lines.join(""), SECRET);
  t.match(lines[0], /"url":"\/v1\/chat\/completions"/);
});
