import type { CatalogueModel } from "@llmaas/catalogue";
import { Pool } from "@llmaas/lifecycle";
import {
  PlatformError,
  type AudioTask,
  type TranscriptSegment,
  type TranscriptWord,
} from "@llmaas/contracts";
import { initWhisper, type WhisperContext } from "./whisper-binding.js";

/** PCM as whisper takes it: 16 kHz, mono, signed 16-bit little-endian. */
export const SAMPLE_RATE = 16_000;
const BYTES_PER_SAMPLE = 2;

/** Audio is transcribed in pieces of this length, whisper's own window: a cancellation waits for one at most. */
export const PIECE_SECONDS = 30;

/** What of the text so far conditions the next piece: whisper keeps at most half its text context of it. */
const PROMPT_TAIL_CHARS = 800;

function promptTail(segments: readonly TranscriptSegment[]): string | null {
  let text = "";
  for (let index = segments.length - 1; index >= 0 && text.length < PROMPT_TAIL_CHARS; index--) {
    text = (segments[index]?.text ?? "") + text;
  }
  const tail = text.slice(-PROMPT_TAIL_CHARS).trim();
  return tail === "" ? null : tail;
}

export interface TranscriptionOptions {
  task: AudioTask;
  /** null detects the language. */
  language: string | null;
  prompt: string | null;
  temperature: number | null;
  timestamps: { segments: boolean; words: boolean };
  signal: AbortSignal;
}

export interface Transcript {
  /** The spoken language whisper detected (or was told). */
  language: string;
  text: string;
  segments: TranscriptSegment[];
  words: TranscriptWord[] | null;
  temperature: number;
  /** How much of the audio was transcribed: all of it, unless cancelled. */
  processedSeconds: number;
}

/** The segments of one decoding pass, in seconds, and how far it got. */
interface Pass {
  language: string;
  segments: TranscriptSegment[];
  processedSeconds: number;
  aborted: boolean;
}

/** Only the gateway hears it, and only when its deadline passed: a client that left hears nothing. */
function cancelled(): PlatformError {
  return new PlatformError("request_timeout", "The transcription was cancelled before it finished.");
}

/**
 * Words from a pass of one-token segments (`maxLen: 1` with token timestamps): a token that starts with a space
 * starts a word, any other (a word's continuation, punctuation) extends the word before it.
 */
export function wordsOf(tokens: readonly TranscriptSegment[]): TranscriptWord[] {
  const words: TranscriptWord[] = [];
  for (const token of tokens) {
    const last = words.at(-1);
    if (last && !/^\s/.test(token.text)) {
      last.word += token.text;
      last.end = token.end;
    } else if (token.text.trim() !== "") {
      words.push({ word: token.text, start: token.start, end: token.end });
    }
  }
  return words.map((word) => ({ ...word, word: word.word.trim() })).filter((word) => word.word !== "");
}

/**
 * One catalogue model on whisper.cpp: `runtime.sequences` contexts (each holds its own copy of the weights), each
 * transcribing one request at a time on `runtime.threads` threads.
 */
export class WhisperEngine {
  static readonly cancelled = cancelled;

  private constructor(
    readonly entry: CatalogueModel,
    private readonly pool: Pool<WhisperContext>,
    private readonly threads: number,
  ) {}

  static async load(entry: CatalogueModel, options: { threads: number }): Promise<WhisperEngine> {
    const count = entry.runtime.sequences;
    const contexts: WhisperContext[] = [];
    for (let index = 0; index < count; index++) {
      contexts.push(await initWhisper({ filePath: entry.resolvedSource, useGpu: false }));
    }
    return new WhisperEngine(entry, new Pool(contexts), entry.runtime.threads ?? options.threads);
  }

  async transcribe(pcm: Buffer, options: TranscriptionOptions): Promise<Transcript> {
    const context = await this.pool.acquire(options.signal, cancelled);
    try {
      const temperature = options.temperature ?? 0;
      const wantSegments = options.timestamps.segments || !options.timestamps.words;
      const segmentPass = wantSegments ? await this.pass(context, pcm, options, false) : null;
      const wordPass =
        options.timestamps.words && !segmentPass?.aborted
          ? await this.pass(context, pcm, options, true)
          : null;
      const main = (segmentPass ?? wordPass) as Pass;
      const words = wordPass ? wordsOf(wordPass.segments) : null;
      const text = segmentPass
        ? segmentPass.segments.map((segment) => segment.text).join("")
        : (words ?? []).map((word) => word.word).join(" ");
      return {
        language: main.language,
        text: text.trim(),
        segments: options.timestamps.segments ? (segmentPass?.segments ?? []) : [],
        words,
        temperature,
        processedSeconds: Math.max(segmentPass?.processedSeconds ?? 0, wordPass?.processedSeconds ?? 0),
      };
    } finally {
      this.pool.release(context);
    }
  }

  /**
   * One decoding pass over the audio, in pieces of `PIECE_SECONDS`: the binding cannot stop a running transcription
   * (its `stop()` lets whisper run to the end, and its promise then never settles), so a cancellation is honoured
   * between pieces, at most one piece late. Each piece after the first is conditioned on the text before it, as
   * whisper conditions each window on the previous one, and in the language the first piece found.
   */
  private async pass(
    context: WhisperContext,
    pcm: Buffer,
    options: TranscriptionOptions,
    tokens: boolean,
  ): Promise<Pass> {
    const pieceBytes = PIECE_SECONDS * SAMPLE_RATE * BYTES_PER_SAMPLE;
    const segments: TranscriptSegment[] = [];
    let language = options.language;
    let prompt = options.prompt;
    let processedSeconds = 0;
    for (let offset = 0; offset < pcm.length; offset += pieceBytes) {
      if (options.signal.aborted) break;
      const piece = pcm.subarray(offset, Math.min(offset + pieceBytes, pcm.length));
      const start = offset / BYTES_PER_SAMPLE / SAMPLE_RATE;
      const seconds = piece.length / BYTES_PER_SAMPLE / SAMPLE_RATE;
      const result = await context.transcribeData(exactArrayBuffer(piece), {
        language: language ?? "auto",
        translate: options.task === "translate",
        maxThreads: this.threads,
        ...(prompt ? { prompt } : {}),
        ...(options.temperature !== null ? { temperature: options.temperature } : {}),
        ...(tokens ? { tokenTimestamps: true, maxLen: 1 } : {}),
      }).promise;
      language ??= result.language || null;
      for (const segment of result.segments) {
        // whisper.cpp's times are in 10 ms steps and may pass the end of the audio by a step.
        segments.push({
          start: start + Math.min(segment.t0 / 1000, seconds),
          end: start + Math.min(segment.t1 / 1000, seconds),
          text: segment.text,
        });
      }
      prompt = promptTail(segments);
      processedSeconds = start + seconds;
    }
    return {
      language: language ?? "en",
      segments,
      processedSeconds,
      aborted: options.signal.aborted && processedSeconds * SAMPLE_RATE * BYTES_PER_SAMPLE < pcm.length,
    };
  }

  async dispose(): Promise<void> {
    for (const context of this.pool.resources) await context.release();
  }
}

/** The PCM's own bytes as an ArrayBuffer: a Buffer may be a view into a larger (pooled) one. */
function exactArrayBuffer(pcm: Buffer): ArrayBuffer {
  if (pcm.byteOffset === 0 && pcm.byteLength === pcm.buffer.byteLength && pcm.buffer instanceof ArrayBuffer) {
    return pcm.buffer;
  }
  const copy = new ArrayBuffer(pcm.byteLength);
  new Uint8Array(copy).set(pcm);
  return copy;
}
