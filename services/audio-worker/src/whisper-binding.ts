import { createRequire } from "node:module";

// @fugood/whisper.node names `lib/index.d.ts` as its types but ships only the TypeScript sources, which do not
// compile under this project's settings; what the worker uses of it is declared here, from those sources (1.1.3).

export interface WhisperSegment {
  text: string;
  /** Milliseconds from the start of the audio. */
  t0: number;
  t1: number;
}

export interface WhisperResult {
  /** The language whisper detected (or was told), as its code. */
  language?: string;
  segments: WhisperSegment[];
}

export interface WhisperTranscribeOptions {
  /** A code, or `auto` to detect it; whisper.cpp's default is `en`. */
  language?: string;
  translate?: boolean;
  maxThreads?: number;
  /** With `tokenTimestamps`, 1 makes every token a segment of its own. */
  maxLen?: number;
  tokenTimestamps?: boolean;
  temperature?: number;
  prompt?: string;
}

export interface WhisperContext {
  /**
   * 16 kHz mono signed 16-bit PCM. The handle's `stop()` is left out on purpose: in 1.1.3 it does not stop whisper,
   * and the promise of a stopped transcription never settles (measured; docs/audio.md).
   */
  transcribeData(audio: ArrayBuffer, options?: WhisperTranscribeOptions): { promise: Promise<WhisperResult> };
  release(): Promise<void>;
}

interface WhisperModule {
  initWhisper: (options: { filePath: string; useGpu?: boolean }) => Promise<WhisperContext>;
}

const require = createRequire(import.meta.url);

export const { initWhisper } = require("@fugood/whisper.node") as WhisperModule;
