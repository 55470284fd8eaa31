import t from "tap";
import { openai, PlatformError } from "@llmaas/contracts";
import { paramName, parseBody } from "../src/validation.js";

function refusal(body: unknown): { code: string; param: string | null; message: string } {
  try {
    parseBody(openai.ChatCompletionRequest, body);
  } catch (error) {
    if (error instanceof PlatformError)
      return { code: error.code, param: error.param, message: error.message };
    throw error;
  }
  throw new Error("accepted");
}

void t.test("parameter names read the way OpenAI writes them", async (t) => {
  t.equal(paramName(["messages", 0, "content"]), "messages[0].content");
  t.equal(paramName(["stop", 2]), "stop[2]");
  t.equal(paramName([]), null);
});

void t.test("the first problem names its parameter", async (t) => {
  const base = { model: "m", messages: [{ role: "user", content: "hi" }] };
  t.same(refusal({ ...base, temperature: 3 }).param, "temperature");
  t.same(
    refusal({ ...base, messages: [{ role: "user", content: "x", extra: 1 }] }).param,
    "messages[0].extra",
  );
  t.match(refusal({ ...base, logit_bias: {} }).message, /Unrecognized request argument supplied: logit_bias/);
  t.equal(refusal(null).code, "invalid_request");
  t.equal(refusal([]).param, null);
});
