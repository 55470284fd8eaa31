import { deflateSync } from "node:zlib";
import { WHISPER_LANGUAGES, type AudioTask, type TranscriptionResult } from "@llmaas/contracts";

export const RESPONSE_FORMATS = ["json", "text", "srt", "verbose_json", "vtt"] as const;
export type ResponseFormat = (typeof RESPONSE_FORMATS)[number];

export interface RenderedTranscript {
  contentType: string;
  body: string | Record<string, unknown>;
}

/** `00:01:02,345` (SubRip) or `00:01:02.345` (WebVTT); hours are never dropped, as OpenAI writes them. */
function timestamp(seconds: number, separator: "," | "."): string {
  const totalMs = Math.round(seconds * 1000);
  const hours = Math.floor(totalMs / 3_600_000);
  const minutes = Math.floor((totalMs % 3_600_000) / 60_000);
  const secs = Math.floor((totalMs % 60_000) / 1000);
  const ms = totalMs % 1000;
  const pad = (value: number, width = 2) => String(value).padStart(width, "0");
  return `${pad(hours)}:${pad(minutes)}:${pad(secs)}${separator}${pad(ms, 3)}`;
}

/** A cue's text on its lines: an empty line would end the cue early, and `-->` would start a new one in WebVTT. */
function cueText(text: string): string {
  return text
    .trim()
    .replace(/\n\s*\n/g, "\n")
    .replaceAll("-->", "->");
}

function srt(result: TranscriptionResult): string {
  return result.segments
    .map(
      (segment, index) =>
        `${index + 1}\n${timestamp(segment.start, ",")} --> ${timestamp(segment.end, ",")}\n${cueText(segment.text)}\n\n`,
    )
    .join("");
}

function vtt(result: TranscriptionResult): string {
  return (
    "WEBVTT\n\n" +
    result.segments
      .map(
        (segment) =>
          `${timestamp(segment.start, ".")} --> ${timestamp(segment.end, ".")}\n${cueText(segment.text)}\n\n`,
      )
      .join("")
  );
}

/** Whisper's own measure of a repetitive (hallucinated) segment: its UTF-8 length over its zlib-compressed length. */
function compressionRatio(text: string): number {
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length === 0) return 0;
  return bytes.length / deflateSync(bytes).length;
}

/**
 * OpenAI's verbose_json. whisper.cpp's Node binding reports each segment's text and times, not its token ids, log
 * probabilities or no-speech probability: `tokens` is empty and `avg_logprob` and `no_speech_prob` are 0, as
 * docs/audio.md says; `compression_ratio` is computed as whisper computes it.
 */
function verbose(
  result: TranscriptionResult,
  task: AudioTask,
  granularities: { segment: boolean; word: boolean },
) {
  return {
    task,
    language: task === "translate" ? "english" : (WHISPER_LANGUAGES[result.language] ?? result.language),
    duration: result.durationSeconds,
    text: result.text,
    ...(granularities.segment
      ? {
          segments: result.segments.map((segment, id) => ({
            id,
            // Where the segment starts, in whisper's 10 ms frames.
            seek: Math.round(segment.start * 100),
            start: segment.start,
            end: segment.end,
            text: segment.text,
            tokens: [],
            temperature: result.temperature,
            avg_logprob: 0,
            compression_ratio: compressionRatio(segment.text),
            no_speech_prob: 0,
          })),
        }
      : {}),
    ...(granularities.word && result.words ? { words: result.words } : {}),
    usage: { type: "duration", seconds: result.billedSeconds },
  };
}

/** As OpenAI answers: JSON for the JSON formats, `text/plain` for the text, SubRip and WebVTT ones. */
export function renderTranscript(
  result: TranscriptionResult,
  format: ResponseFormat,
  task: AudioTask,
  granularities: { segment: boolean; word: boolean },
): RenderedTranscript {
  switch (format) {
    case "json":
      return {
        contentType: "application/json; charset=utf-8",
        body: { text: result.text, usage: { type: "duration", seconds: result.billedSeconds } },
      };
    case "verbose_json":
      return { contentType: "application/json; charset=utf-8", body: verbose(result, task, granularities) };
    case "text":
      return { contentType: "text/plain; charset=utf-8", body: `${result.text}\n` };
    case "srt":
      return { contentType: "text/plain; charset=utf-8", body: srt(result) };
    case "vtt":
      return { contentType: "text/plain; charset=utf-8", body: vtt(result) };
  }
}
