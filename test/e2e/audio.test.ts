// Audio transcription and translation through the platform, as in production: gateway, audio-worker (whisper.cpp on
// a tiny random-weight model, ffmpeg over pipes), metering. The `openai` SDK gets every response format (the JSON
// ones checked against OpenAI's schemas), the duration is the audio's exact length, srt and vtt are well-formed,
// every transcription is metered in whole seconds, bad input is a 4xx in OpenAI's shape, a 25 MB upload crosses the
// bus, a client that leaves cancels the work, and no service writes anything to storage while transcribing.
import t, { type Test } from "tap";
import { readFileSync } from "node:fs";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { toFile } from "openai";
import { MAX_AUDIO_UPLOAD_BYTES } from "@llmaas/contracts";
import { toneWav } from "../support/audio.js";
import { openaiClient } from "../support/client.js";
import { checkResponse, openapiErrors } from "../support/openapi.js";
import { apiCall } from "../support/tenant.js";
import { startStack } from "../support/stack.js";

const CATALOGUE = `
models:
  - id: tiny-chat
    owned_by: llmaas
    created: 2026-11-21
    source: "{{chatModel}}"
    capabilities: [chat]
    context_length: 512
    pricing: { input_per_million: 0.5, output_per_million: 1.5 }
  - id: tiny-whisper
    owned_by: llmaas
    created: 2026-11-22
    source: "{{whisperModel}}"
    capabilities: [audio]
    context_length: 72
    audio: { max_seconds: 600 }
    pricing: { audio_per_minute: 0.006 }
    runtime: { threads: 1, sequences: 1 }
  - id: tiny-whisper-short
    owned_by: llmaas
    created: 2026-11-22
    source: "{{whisperModel}}"
    capabilities: [audio]
    context_length: 72
    audio: { max_seconds: 2 }
    pricing: { audio_per_minute: 0.006 }
    runtime: { threads: 1, sequences: 1 }
`;

const stack = await startStack({ workers: 0, audioWorkers: 1, catalogue: CATALOGUE });
t.teardown(() => stack.stop());
const client = openaiClient(stack);

/** Not a round number of anything: a duration off by a frame or a window shows. */
const SECONDS = 3.37;
const wav = toneWav(SECONDS);

interface Form {
  file?: { bytes: Buffer; name: string };
  fields?: Record<string, string | string[]>;
}

/** A multipart request as curl would send it, for what the SDK checks before sending (or cannot send). */
async function postForm(
  path: string,
  form: Form,
  init: { signal?: AbortSignal; apiKey?: string } = {},
): Promise<{ status: number; headers: Headers; text: string; json: unknown }> {
  const data = new FormData();
  for (const [name, value] of Object.entries(form.fields ?? {})) {
    for (const item of Array.isArray(value) ? value : [value]) data.append(name, item);
  }
  if (form.file) data.append("file", new Blob([form.file.bytes]), form.file.name);
  const url = `${stack.baseURL}${path}`;
  const response = await fetch(url, {
    method: "POST",
    headers: { authorization: `Bearer ${init.apiKey ?? stack.apiKey}` },
    body: data,
    ...(init.signal ? { signal: init.signal } : {}),
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (json !== undefined) checkResponse("POST", url, response.status, json);
  return { status: response.status, headers: response.headers, text, json };
}

/** `HH:MM:SS,mmm` or `HH:MM:SS.mmm` in seconds. */
function secondsOf(stamp: string): number {
  const match = /^(\d{2}):(\d{2}):(\d{2})[,.](\d{3})$/.exec(stamp);
  if (!match) throw new Error(`not a timestamp: ${stamp}`);
  const [, h, m, s, ms] = match.map(Number) as [number, number, number, number, number];
  return h * 3600 + m * 60 + s + ms / 1000;
}

/** SubRip: numbered cues, `start --> end`, text, a blank line; times within the audio and in order. */
function srtCues(text: string): { start: number; end: number; text: string }[] {
  t.ok(text.endsWith("\n\n") || text === "", "every cue ends with a blank line");
  return text
    .split("\n\n")
    .filter((block) => block !== "")
    .map((block, index) => {
      const [number, times, ...lines] = block.split("\n");
      t.equal(number, String(index + 1), "cues are numbered from 1");
      const match = /^(\S+) --> (\S+)$/.exec(times ?? "");
      if (!match) throw new Error(`not an SRT time line: ${times}`);
      return { start: secondsOf(match[1] ?? ""), end: secondsOf(match[2] ?? ""), text: lines.join("\n") };
    });
}

function vttCues(text: string): { start: number; end: number; text: string }[] {
  t.ok(text.startsWith("WEBVTT\n\n"), "starts with the WEBVTT line");
  return text
    .slice("WEBVTT\n\n".length)
    .split("\n\n")
    .filter((block) => block !== "")
    .map((block) => {
      const [times, ...lines] = block.split("\n");
      const match = /^(\S+) --> (\S+)$/.exec(times ?? "");
      if (!match) throw new Error(`not a WebVTT time line: ${times}`);
      return { start: secondsOf(match[1] ?? ""), end: secondsOf(match[2] ?? ""), text: lines.join("\n") };
    });
}

function checkCues(t: Test, cues: { start: number; end: number }[], duration: number): void {
  t.ok(cues.length > 0, `${cues.length} cues`);
  let previous = 0;
  for (const cue of cues) {
    t.ok(cue.start >= previous - 1e-9 && cue.start <= cue.end, `${cue.start} → ${cue.end} in order`);
    t.ok(cue.end <= duration + 0.011, `${cue.end} within the audio's ${duration} s`);
    previous = cue.start;
  }
}

void t.test("/v1/models lists the audio models with their capability", async (t) => {
  const models = await client.models.list();
  const whisper = models.data.find((model) => model.id === "tiny-whisper") as
    { capabilities?: string[] } | undefined;
  t.same(whisper?.capabilities, ["audio"]);
});

void t.test("every response format of a transcription, through the openai SDK", async (t) => {
  const file = () => toFile(wav, "tone.wav", { type: "audio/wav" });

  const json = await client.audio.transcriptions.create({ file: await file(), model: "tiny-whisper" });
  t.same(openapiErrors("CreateTranscriptionResponseJson", json), [], "json matches its schema");
  t.type(json.text, "string");
  t.same((json as { usage?: unknown }).usage, { type: "duration", seconds: Math.ceil(SECONDS) });

  const verbose = await client.audio.transcriptions.create({
    file: await file(),
    model: "tiny-whisper",
    response_format: "verbose_json",
    language: "en",
  });
  t.same(openapiErrors("CreateTranscriptionResponseVerboseJson", verbose), []);
  t.ok(
    Math.abs(verbose.duration - SECONDS) <= 0.05,
    `duration ${verbose.duration} within 50 ms of ${SECONDS}`,
  );
  t.equal(verbose.language, "english");
  t.ok((verbose.segments ?? []).length > 0, "segments by default");
  t.equal(verbose.words, undefined, "no words unless asked");
  checkCues(t, verbose.segments ?? [], verbose.duration);
  t.equal(
    verbose.text,
    (verbose.segments ?? [])
      .map((segment) => segment.text)
      .join("")
      .trim(),
    "the text is its segments'",
  );

  const words = await client.audio.transcriptions.create({
    file: await file(),
    model: "tiny-whisper",
    response_format: "verbose_json",
    timestamp_granularities: ["word", "segment"],
  });
  t.same(openapiErrors("CreateTranscriptionResponseVerboseJson", words), []);
  t.ok((words.words ?? []).length > 0, `${words.words?.length} words`);
  t.ok((words.segments ?? []).length > 0, "and segments, both asked");
  checkCues(
    t,
    (words.words ?? []).map((word) => ({ start: word.start, end: word.end })),
    words.duration,
  );
  t.ok(
    (words.words ?? []).every((word) => word.word !== "" && word.word.trim() === word.word),
    "words are trimmed and not empty",
  );

  const onlyWords = await client.audio.transcriptions.create({
    file: await file(),
    model: "tiny-whisper",
    response_format: "verbose_json",
    timestamp_granularities: ["word"],
  });
  t.equal(onlyWords.segments, undefined, "segments only when asked, once granularities are given");
  t.ok((onlyWords.words ?? []).length > 0);

  const text = await client.audio.transcriptions.create({
    file: await file(),
    model: "tiny-whisper",
    response_format: "text",
  });
  t.type(text, "string");
  t.ok(text.endsWith("\n"), "text ends with a line break");

  const srt = await client.audio.transcriptions.create({
    file: await file(),
    model: "tiny-whisper",
    response_format: "srt",
  });
  checkCues(t, srtCues(srt), SECONDS);

  const vtt = await client.audio.transcriptions.create({
    file: await file(),
    model: "tiny-whisper",
    response_format: "vtt",
  });
  checkCues(t, vttCues(vtt), SECONDS);
});

void t.test("every response format of a translation", async (t) => {
  const file = () => toFile(wav, "tone.wav", { type: "audio/wav" });
  const json = await client.audio.translations.create({ file: await file(), model: "tiny-whisper" });
  t.same(openapiErrors("CreateTranslationResponseJson", json), []);
  // The SDK types every translation as `{ text }`; what the format asked for is what comes back.
  const verbose = (await client.audio.translations.create({
    file: await file(),
    model: "tiny-whisper",
    response_format: "verbose_json",
  })) as unknown as { language: string; duration: number };
  t.same(openapiErrors("CreateTranslationResponseVerboseJson", verbose), []);
  t.equal(verbose.language, "english", "a translation is in English");
  t.ok(Math.abs(verbose.duration - SECONDS) <= 0.05, `duration ${verbose.duration}`);
  const text = (await client.audio.translations.create({
    file: await file(),
    model: "tiny-whisper",
    response_format: "text",
  })) as unknown as string;
  t.ok(text.endsWith("\n"));
  const srt = (await client.audio.translations.create({
    file: await file(),
    model: "tiny-whisper",
    response_format: "srt",
  })) as unknown as string;
  checkCues(t, srtCues(srt), SECONDS);
  const vtt = (await client.audio.translations.create({
    file: await file(),
    model: "tiny-whisper",
    response_format: "vtt",
  })) as unknown as string;
  checkCues(t, vttCues(vtt), SECONDS);
});

void t.test("each transcription is metered in whole seconds of its audio, rounded up", async (t) => {
  for (const seconds of [SECONDS, 2, 0.4]) {
    const { data, response } = await client.audio.transcriptions
      .create({ file: await toFile(toneWav(seconds), "a.wav"), model: "tiny-whisper" })
      .withResponse();
    const requestId = response.headers.get("x-request-id") ?? "";
    t.match(requestId, /^transcr-/);
    const row = await stack.waitForUsage(requestId);
    t.equal(row.audio_seconds, Math.ceil(seconds), `${seconds} s is metered as ${Math.ceil(seconds)} s`);
    t.equal((data as { usage?: { seconds?: number } }).usage?.seconds, row.audio_seconds, "as answered");
    t.match(row, {
      operation: "audio.transcriptions",
      model: "tiny-whisper",
      prompt_tokens: 0,
      completion_tokens: 0,
      status: "completed",
    });
    // 0.006 a minute: 0.0001 a second, 10^8 pico-units.
    t.equal(String(row.audio_cost_pico), String(BigInt(Math.ceil(seconds)) * 100_000_000n));
  }
});

const execFileAsync = promisify(execFile);

/**
 * An MP3 as recorders and encoders write it, with the LAME header that says how many priming and padding samples to
 * drop: ffmpeg writes that header only into a file it can seek back in, so this fixture is made on disk (the test's
 * own tone, not a customer's audio) and read back.
 */
async function mp3File(wav: Buffer): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), "audio-e2e-"));
  try {
    await writeFile(join(dir, "tone.wav"), wav);
    await execFileAsync("ffmpeg", [
      ...["-nostdin", "-loglevel", "error", "-i", join(dir, "tone.wav")],
      ...["-c:a", "libmp3lame", "-b:a", "64k", join(dir, "tone.mp3")],
    ]);
    return await readFile(join(dir, "tone.mp3"));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

void t.test("an MP3 upload is decoded by the worker, whatever its name says", async (t) => {
  const mp3 = await mp3File(toneWav(SECONDS, { sampleRate: 44_100 }));
  const { data: verbose, response } = await client.audio.transcriptions
    .create({
      file: await toFile(mp3, "recording.bin"),
      model: "tiny-whisper",
      response_format: "verbose_json",
    })
    .withResponse();
  t.ok(Math.abs(verbose.duration - SECONDS) <= 0.05, `MP3: duration ${verbose.duration}`);
  await stack.waitForUsage(response.headers.get("x-request-id") ?? "");
});

const meteredTranscriptions = async () =>
  Number(
    (
      await stack.db
        .selectFrom("usage_events")
        .select((eb) => eb.fn.countAll().as("count"))
        .where("operation", "=", "audio.transcriptions")
        .executeTakeFirstOrThrow()
    ).count,
  );

void t.test("bad input is a 4xx in OpenAI's shape, and costs nothing", async (t) => {
  const path = "/audio/transcriptions";
  const meteredBefore = await meteredTranscriptions();
  // Those refused by the worker (undecodable, too long) got an id before they were sent to it.
  const refusedIds: string[] = [];
  const expectError = async (
    what: string,
    form: Form,
    status: number,
    param: string | null,
    code: string | null = null,
  ) => {
    const response = await postForm(path, form);
    const requestId = response.headers.get("x-request-id");
    if (requestId) refusedIds.push(requestId);
    t.equal(response.status, status, `${what}: ${status}`);
    const error = (response.json as { error?: { param?: string | null; code?: string | null } }).error;
    t.equal(error?.param ?? null, param, `${what}: param ${param}`);
    if (code) t.equal(error?.code, code, `${what}: code ${code}`);
  };
  const model = { model: "tiny-whisper" };
  await expectError(
    "garbage bytes",
    {
      file: { bytes: Buffer.from("this is not audio, only text ".repeat(100)), name: "a.mp3" },
      fields: model,
    },
    400,
    "file",
  );
  await expectError(
    "a truncated WAV",
    { file: { bytes: wav.subarray(0, 30), name: "a.wav" }, fields: model },
    400,
    "file",
  );
  await expectError(
    "an empty file",
    { file: { bytes: Buffer.alloc(0), name: "a.wav" }, fields: model },
    400,
    "file",
  );
  await expectError("no file", { fields: model }, 400, "file");
  await expectError("no model", { file: { bytes: wav, name: "a.wav" } }, 400, "model");
  await expectError(
    "an unknown model",
    { file: { bytes: wav, name: "a.wav" }, fields: { model: "whisper-9" } },
    404,
    "model",
    "model_not_found",
  );
  await expectError(
    "a model without the audio capability",
    { file: { bytes: wav, name: "a.wav" }, fields: { model: "tiny-chat" } },
    400,
    "model",
  );
  await expectError(
    "audio longer than the model's maximum",
    { file: { bytes: wav, name: "a.wav" }, fields: { model: "tiny-whisper-short" } },
    400,
    "file",
  );
  await expectError(
    "an unknown response format",
    { file: { bytes: wav, name: "a.wav" }, fields: { ...model, response_format: "docx" } },
    400,
    "response_format",
  );
  await expectError(
    "word timestamps without verbose_json",
    { file: { bytes: wav, name: "a.wav" }, fields: { ...model, "timestamp_granularities[]": "word" } },
    400,
    "timestamp_granularities[]",
  );
  await expectError(
    "an unknown language",
    { file: { bytes: wav, name: "a.wav" }, fields: { ...model, language: "xx" } },
    400,
    "language",
  );
  await expectError(
    "a temperature out of range",
    { file: { bytes: wav, name: "a.wav" }, fields: { ...model, temperature: "1.5" } },
    400,
    "temperature",
  );
  const translation = await postForm("/audio/translations", {
    file: { bytes: wav, name: "a.wav" },
    fields: { ...model, language: "de" },
  });
  t.equal(translation.status, 400, "a translation takes no language");
  t.match(translation.json, { error: { param: "language" } });

  const tooLarge = Buffer.alloc(26 * 1024 * 1024, 1);
  const large = await postForm(path, { file: { bytes: tooLarge, name: "a.wav" }, fields: model });
  t.equal(large.status, 413, "26 MB: 413");
  t.match(large.json, { error: { type: "invalid_request_error" } });

  const json = await fetch(`${stack.baseURL}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${stack.apiKey}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "tiny-whisper", file: "a.wav" }),
  });
  t.equal(json.status, 400, "a JSON body: 400, the audio must be a multipart file");

  // Metering is asynchronous: a usage event of one of these would have been recorded by the good one's.
  const good = await client.audio.transcriptions
    .create({ file: await toFile(wav, "a.wav"), model: "tiny-whisper" })
    .withResponse();
  await stack.waitForUsage(good.response.headers.get("x-request-id") ?? "");
  t.equal(await meteredTranscriptions(), meteredBefore + 1, "none of them was metered, only the good one");
  t.ok(refusedIds.length >= 3, `${refusedIds.length} refused by the worker`);
  const refusedRows = await stack.db
    .selectFrom("usage_events")
    .select("request_id")
    .where("request_id", "in", refusedIds)
    .execute();
  t.same(refusedRows, [], "no usage under their ids");
});

void t.test("audio the worker refuses gives its reservation back at once", async (t) => {
  const admin = (method: string, path: string, body?: unknown) =>
    apiCall(stack.baseURL, stack.adminKey, method, path, body);
  const project = await admin("POST", "/organization/projects", { name: "audio spend" });
  const projectId = String(project.id);
  const account = await admin("POST", `/organization/projects/${projectId}/service_accounts`, {
    name: "app",
  });
  stack.secrets.collect(account);
  const apiKey = (account.api_key as { value: string }).value;
  // A transcription reserves the model's longest audio, 600 s at 0.006 a minute: 6 cents. 10 cents hold one.
  await admin("POST", `/organization/projects/${projectId}/spend_limit`, {
    threshold_amount: 10,
    currency: "EUR",
    interval: "month",
  });
  const fields = { model: "tiny-whisper" };
  const garbage = await postForm(
    "/audio/transcriptions",
    { file: { bytes: Buffer.from("not audio at all ".repeat(64)), name: "a.wav" }, fields },
    { apiKey },
  );
  t.equal(garbage.status, 400, "undecodable: refused by the worker");
  for (const attempt of [1, 2]) {
    const good = await postForm(
      "/audio/transcriptions",
      { file: { bytes: wav, name: "a.wav" }, fields },
      { apiKey },
    );
    t.equal(good.status, 200, `transcription ${attempt} admitted: no reservation is left behind`);
  }
});

void t.test("a 25 MB upload crosses the bus to the worker and is transcribed", async (t) => {
  // 48 kHz stereo: 25 MB is about 136 s of audio.
  const seconds = (MAX_AUDIO_UPLOAD_BYTES - 44) / (48_000 * 2 * 2);
  const big = toneWav(Math.floor(seconds * 100) / 100, { sampleRate: 48_000, channels: 2 });
  t.ok(
    big.length <= MAX_AUDIO_UPLOAD_BYTES && big.length > MAX_AUDIO_UPLOAD_BYTES - 1000,
    `${big.length} bytes`,
  );
  const verbose = await client.audio.transcriptions.create(
    { file: await toFile(big, "long.wav"), model: "tiny-whisper", response_format: "verbose_json" },
    { timeout: 600_000 },
  );
  const expected = Math.floor(seconds * 100) / 100;
  t.ok(Math.abs(verbose.duration - expected) <= 0.05, `duration ${verbose.duration} of ${expected} s`);
});

/** Bytes this process has caused to be written to storage (not pipes or sockets), from /proc/<pid>/io. */
function storageWrites(pid: number): number {
  const match = /^write_bytes: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, "utf8"));
  return Number(match?.[1] ?? Number.NaN);
}

void t.test("no service writes anything to storage while it transcribes", async (t) => {
  const pids = {
    gateway: stack.services.gateway?.child.pid ?? 0,
    "audio-worker": stack.services["audio-worker-1"]?.child.pid ?? 0,
  };
  const before = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, storageWrites(pid)]));
  const audio = toneWav(20, { frequency: 660 });
  const transcript = await client.audio.transcriptions.create(
    { file: await toFile(audio, "private.wav"), model: "tiny-whisper", prompt: "A private meeting" },
    { timeout: 300_000 },
  );
  t.type(transcript.text, "string");
  for (const [name, pid] of Object.entries(pids)) {
    const written = storageWrites(pid) - (before[name] ?? 0);
    t.equal(
      written,
      0,
      `${name} wrote ${written} bytes to storage during a ${audio.length}-byte transcription`,
    );
  }
  const heard = transcript.text.slice(0, 24);
  t.ok(heard.length > 10, `a transcript: "${heard}…"`);
  for (const service of Object.values(stack.services)) {
    t.notOk(
      service.lines.some((line) => line.includes("A private meeting") || line.includes(heard)),
      `${service.name}'s log (stdout and stderr, whisper.cpp's own included) holds neither prompt nor transcript`,
    );
  }
});

void t.test("a client that leaves cancels its transcription, billed for what was done", async (t) => {
  const audio = toneWav(120);
  const controller = new AbortController();
  const started = postForm(
    "/audio/transcriptions",
    { file: { bytes: audio, name: "long.wav" }, fields: { model: "tiny-whisper" } },
    { signal: controller.signal },
  ).catch((error: unknown) => error);
  // Long enough for the worker to have started: the cancel then reaches a running transcription.
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  controller.abort();
  t.type(await started, Error, "the client gave up");
  const row = await stack.db
    .selectFrom("usage_events")
    .selectAll()
    .where("operation", "=", "audio.transcriptions")
    .where("status", "=", "cancelled")
    .executeTakeFirst()
    .then(async (found) => {
      for (let waited = 0; !found && waited < 60_000; waited += 200) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        found = await stack.db
          .selectFrom("usage_events")
          .selectAll()
          .where("operation", "=", "audio.transcriptions")
          .where("status", "=", "cancelled")
          .executeTakeFirst();
      }
      return found;
    });
  t.ok(row, "metered as cancelled");
  t.ok((row?.audio_seconds ?? 120) < 120, `billed ${row?.audio_seconds} of 120 s`);
});
