// A transcript as each response format renders it, without the bus: SubRip and WebVTT cues (times, numbering, text
// that would break a cue), verbose_json's segments and words as asked, and the billed seconds in `usage`.
import t from "tap";
import type { TranscriptionResult } from "@llmaas/contracts";
import { renderTranscript } from "../src/audio/formats.js";
import { transcriptionCost } from "../src/quotas/admission.js";
import { parseCatalogue } from "@llmaas/catalogue";

const result: TranscriptionResult = {
  workerId: "audio-worker-1",
  language: "de",
  durationSeconds: 3725.125,
  billedSeconds: 3726,
  temperature: 0,
  text: "Guten Tag. Wie geht's?",
  segments: [
    { start: 0, end: 1.5, text: " Guten Tag." },
    { start: 3723.004, end: 3725.125, text: " Wie\n\ngeht's? --> gut" },
  ],
  words: [
    { word: "Guten", start: 0, end: 0.6 },
    { word: "Tag.", start: 0.6, end: 1.5 },
  ],
};

const both = { segment: true, word: true };

void t.test("srt: numbered cues, comma milliseconds, hours kept, no blank line inside a cue", async (t) => {
  const { contentType, body } = renderTranscript(result, "srt", "transcribe", both);
  t.equal(contentType, "text/plain; charset=utf-8");
  t.equal(
    body,
    "1\n00:00:00,000 --> 00:00:01,500\nGuten Tag.\n\n" +
      "2\n01:02:03,004 --> 01:02:05,125\nWie\ngeht's? -> gut\n\n",
  );
});

void t.test("vtt: the WEBVTT line, dot milliseconds, no arrow inside a cue's text", async (t) => {
  const { body } = renderTranscript(result, "vtt", "transcribe", both);
  t.equal(
    body,
    "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nGuten Tag.\n\n" +
      "01:02:03.004 --> 01:02:05.125\nWie\ngeht's? -> gut\n\n",
  );
});

void t.test("json and text", async (t) => {
  t.same(renderTranscript(result, "json", "transcribe", both).body, {
    text: "Guten Tag. Wie geht's?",
    usage: { type: "duration", seconds: 3726 },
  });
  t.equal(renderTranscript(result, "text", "transcribe", both).body, "Guten Tag. Wie geht's?\n");
});

void t.test(
  "verbose_json: the language's name, the exact duration, segments and words as asked",
  async (t) => {
    const verbose = renderTranscript(result, "verbose_json", "transcribe", both).body as Record<
      string,
      unknown
    >;
    t.match(verbose, {
      task: "transcribe",
      language: "german",
      duration: 3725.125,
      usage: { seconds: 3726 },
    });
    t.match(verbose.segments, [
      { id: 0, seek: 0, start: 0, end: 1.5, tokens: [], temperature: 0 },
      { id: 1, seek: 372300, start: 3723.004 },
    ]);
    t.same(verbose.words, result.words);
    const segmentsOnly = renderTranscript(result, "verbose_json", "transcribe", {
      segment: true,
      word: false,
    }).body as Record<string, unknown>;
    t.notOk("words" in segmentsOnly, "no words unless asked");
    const wordsOnly = renderTranscript(result, "verbose_json", "transcribe", {
      segment: false,
      word: true,
    }).body as Record<string, unknown>;
    t.notOk("segments" in wordsOnly, "no segments unless asked");
    const translated = renderTranscript(result, "verbose_json", "translate", both).body;
    t.match(translated, { task: "translate", language: "english" }, "a translation is in English");
  },
);

void t.test("a transcription reserves its model's longest audio at the audio price", async (t) => {
  const catalogue = parseCatalogue(
    `models:
  - id: whisper
    owned_by: test
    created: 2026-11-22
    source: /dev/null
    capabilities: [audio]
    context_length: 448
    audio: { max_seconds: 600 }
    pricing: { audio_per_minute: 0.006 }
`,
    "/",
  );
  const model = catalogue.find("whisper");
  if (!model) throw new Error("no model");
  t.same(transcriptionCost(model, 1_000_000, 600), {
    requests: 1n,
    tokens: 0n,
    // 600 s at 0.006 a minute: 0.06, 6 × 10^10 pico-units.
    pico: 60_000_000_000n,
    audioBytes: 1_000_000n,
  });
});
