import t from "tap";
import { decodeFloat32Base64, encodeFloat32Base64, float32Base64Length } from "@llmaas/contracts";
import { batchesOf } from "../src/routes/embeddings.js";

const MIB = 1024 * 1024;

void t.test("inputs are split in order, at most 16 per worker request", async (t) => {
  const inputs = Array.from({ length: 100 }, (_, i) => `input ${i}`);
  const batches = batchesOf(inputs, float32Base64Length(64) + 3, MIB);
  t.same(
    batches.map((batch) => batch.inputs.length),
    [16, 16, 16, 16, 16, 16, 4],
  );
  t.same(
    batches.map((batch) => batch.firstIndex),
    [0, 16, 32, 48, 64, 80, 96],
  );
  t.same(
    batches.flatMap((batch) => batch.inputs),
    inputs,
    "reassembled, nothing lost",
  );
  t.same(batchesOf([[1, 2, 3]], 100, MIB), [{ firstIndex: 0, inputs: [[1, 2, 3]] }]);
});

void t.test("every request and every reply fits in one NATS message", async (t) => {
  const budget = MIB - 8 * 1024;
  const vectorBytes = float32Base64Length(16_384) + 3;
  const wide = batchesOf(
    Array.from({ length: 40 }, () => "x"),
    vectorBytes,
    budget,
  );
  t.ok(
    wide.every((batch) => batch.inputs.length * vectorBytes <= budget),
    "replies of large vectors stay under the budget",
  );
  t.equal(wide[0]?.inputs.length, Math.floor(budget / vectorBytes));

  const long = "y".repeat(400 * 1024);
  const heavy = batchesOf([long, long, long, "short"], 100, budget);
  t.same(
    heavy.map((batch) => batch.firstIndex),
    [0, 2],
    "two long inputs per request",
  );
  t.throws(
    () => batchesOf(["ok", "z".repeat(MIB)], 100, budget),
    { code: "invalid_request", param: "input" },
    "an input larger than a message is refused",
  );
});

void t.test("vectors cross the bus as base64 of little-endian float32, as OpenAI sends them", async (t) => {
  const values = [1.5, -2.25, 0.1, 0];
  const text = encodeFloat32Base64(values);
  t.equal(text.length, float32Base64Length(values.length));
  t.equal(text, Buffer.from(new Float32Array(values).buffer).toString("base64"));
  t.same(decodeFloat32Base64(text), values.map(Math.fround));
});
