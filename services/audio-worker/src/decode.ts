import { spawn } from "node:child_process";
import { PlatformError } from "@llmaas/contracts";

/**
 * Uploaded audio to whisper's PCM (16 kHz, mono, signed 16-bit little-endian) with ffmpeg, in memory only: the
 * bytes go to ffmpeg's stdin and the PCM comes back on its stdout; ffmpeg opens no file and no network address
 * (docs/audio-decoding.md).
 */

export const PCM_SAMPLE_RATE = 16_000;
const BYTES_PER_SAMPLE = 2;

/** What a client is told it may send (OpenAI's list, and Opus in Ogg or WebM). */
export const SUPPORTED_AUDIO_FORMATS = "flac, m4a, mp3, mp4, mpeg, mpga, oga, ogg, opus, wav, webm";

/**
 * The only demuxers ffmpeg may pick (its names: `mov` is MP4/M4A/MOV, `matroska` is also WebM). Anything else it
 * would probe its way into, a playlist or a concat list that names other files or URLs, say, is refused.
 */
const DEMUXERS = "wav,mp3,mov,ogg,matroska,flac";

/**
 * How much longer than its edit list an MP4's audio may decode and be cut back to it: ffmpeg 5.1 drops an AAC
 * track's priming samples but not the padding at its end, up to one frame (1024 samples, 64 ms at 16 kHz; 2048
 * for HE-AAC).
 */
const MP4_TRIM_SLACK_SECONDS = 0.25;

/** Kept of ffmpeg's stderr, for the error's `cause`: its complaint, not the audio, and only the first lines. */
const STDERR_LIMIT = 4096;

export interface DecodeOptions {
  /** Longer audio is refused, and ffmpeg stopped as soon as its output passes this length. */
  maxSeconds: number;
  /** Aborting stops ffmpeg and rejects with `request_timeout`. */
  signal?: AbortSignal;
  /** Default `ffmpeg` (from PATH). */
  ffmpegPath?: string;
}

export interface DecodedAudio {
  /** 16 kHz mono s16le. */
  pcm: Buffer;
  /** The decoded length, samples / 16000: what is billed. */
  seconds: number;
}

export function invalidAudio(detail: string): PlatformError {
  return new PlatformError(
    "invalid_request",
    `Invalid file format: ${detail} Supported formats: ${SUPPORTED_AUDIO_FORMATS}.`,
    "file",
  );
}

export function audioTooLong(maxSeconds: number): PlatformError {
  return new PlatformError(
    "invalid_request",
    `The audio is too long: this model accepts at most ${formatSeconds(maxSeconds)} of audio.`,
    "file",
  );
}

function formatSeconds(seconds: number): string {
  const text = `${seconds} ${seconds === 1 ? "second" : "seconds"}`;
  return seconds >= 120 && seconds % 60 === 0 ? `${text} (${seconds / 60} minutes)` : text;
}

function cancelled(): PlatformError {
  return new PlatformError(
    "request_timeout",
    "The transcription was cancelled before its audio was decoded.",
  );
}

function withCause(error: PlatformError, cause: unknown): PlatformError {
  error.cause = cause;
  return error;
}

/**
 * Decodes an audio file held in memory to 16 kHz mono PCM with ffmpeg over pipes. Rejects with a PlatformError:
 * `invalid_request` (param `file`) for an empty file, one that is not audio in a supported container, cannot be
 * decoded, has no audio track, decodes to nothing, or is longer than `maxSeconds`; `request_timeout` when
 * `signal` aborts; `internal_error` when ffmpeg cannot be started or dies of a signal. When the promise settles,
 * ffmpeg has exited.
 */
export async function decodeAudio(bytes: Uint8Array, options: DecodeOptions): Promise<DecodedAudio> {
  const { maxSeconds, signal } = options;
  if (!(maxSeconds > 0)) throw new RangeError(`maxSeconds must be positive, got ${maxSeconds}`);
  if (signal?.aborted) throw cancelled();
  if (bytes.length === 0) throw invalidAudio("the file is empty.");

  // MP4 with its index (moov) after the samples cannot be demuxed from a pipe: moved to the front, here.
  const mp4 = isMp4(bytes) ? prepareMp4(bytes) : null;
  const input = mp4?.bytes ?? bytes;
  const trimTo = mp4?.audioSeconds ?? null;

  const maxSamples = Math.floor(maxSeconds * PCM_SAMPLE_RATE);
  // What may still be cut back to the edit list's length is allowed through, then judged after the cut.
  const streamLimitBytes =
    (maxSamples + (trimTo === null ? 0 : Math.ceil(MP4_TRIM_SLACK_SECONDS * PCM_SAMPLE_RATE))) *
    BYTES_PER_SAMPLE;

  const { pcm: raw, samples: decodedSamples } = await runFfmpeg(input, {
    ffmpegPath: options.ffmpegPath ?? "ffmpeg",
    limitBytes: streamLimitBytes,
    maxSeconds,
    signal,
  });

  let samples = decodedSamples;
  if (trimTo !== null) {
    const target = Math.round(trimTo * PCM_SAMPLE_RATE);
    if (samples > target && samples - target <= MP4_TRIM_SLACK_SECONDS * PCM_SAMPLE_RATE) samples = target;
  }
  if (samples === 0) throw invalidAudio("the file has no audio in it (is it cut short?).");
  if (samples > maxSamples) throw audioTooLong(maxSeconds);
  return { pcm: raw.subarray(0, samples * BYTES_PER_SAMPLE), seconds: samples / PCM_SAMPLE_RATE };
}

/** ffmpeg's arguments: stdin to stdout, only the whitelisted demuxers, only the pipe protocol, the first audio. */
export function ffmpegArguments(): string[] {
  return [
    "-nostdin",
    "-hide_banner",
    "-loglevel",
    "error",
    "-protocol_whitelist",
    "pipe",
    "-format_whitelist",
    DEMUXERS,
    "-i",
    "pipe:0",
    "-map",
    "0:a:0",
    "-f",
    "s16le",
    "-ac",
    "1",
    "-ar",
    String(PCM_SAMPLE_RATE),
    "pipe:1",
  ];
}

interface RunOptions {
  ffmpegPath: string;
  limitBytes: number;
  maxSeconds: number;
  signal: AbortSignal | undefined;
}

function runFfmpeg(input: Uint8Array, options: RunOptions): Promise<{ pcm: Buffer; samples: number }> {
  const { signal } = options;
  // FFREPORT would have ffmpeg write a log file of its own into its working directory.
  const env = { ...process.env };
  delete env.FFREPORT;

  return new Promise((resolve, reject) => {
    const child = spawn(options.ffmpegPath, ffmpegArguments(), { stdio: ["pipe", "pipe", "pipe"], env });
    const chunks: Buffer[] = [];
    let received = 0;
    let stderr = "";
    /** Set once ffmpeg is being stopped (too long, aborted): the answer, given when it has exited. */
    let failure: PlatformError | null = null;
    let settled = false;

    const settle = (error: PlatformError | null): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      if (error) reject(error);
      else {
        const pcm = Buffer.concat(chunks, received);
        resolve({ pcm, samples: Math.floor(received / BYTES_PER_SAMPLE) });
      }
    };
    const stop = (error: PlatformError): void => {
      if (failure || settled) return;
      failure = error;
      chunks.length = 0;
      child.stdout.destroy();
      child.kill("SIGKILL");
    };
    const onAbort = (): void => stop(cancelled());
    signal?.addEventListener("abort", onAbort, { once: true });

    child.stdout.on("data", (chunk: Buffer) => {
      if (failure) return;
      received += chunk.length;
      if (received > options.limitBytes) stop(audioTooLong(options.maxSeconds));
      else chunks.push(chunk);
    });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (text: string) => {
      if (stderr.length < STDERR_LIMIT) stderr += text.slice(0, STDERR_LIMIT - stderr.length);
    });
    // EPIPE (or ECONNRESET) when ffmpeg exits before it has read everything: it failed, or was stopped. Its exit
    // status says which.
    child.stdin.on("error", () => undefined);
    child.stdout.on("error", () => undefined);

    child.on("error", (error: NodeJS.ErrnoException) => {
      // No process (ENOENT, EACCES): there will be no exit to wait for.
      if (child.pid === undefined) {
        settle(
          withCause(
            new PlatformError("internal_error", "The audio decoder is not available on this worker."),
            error,
          ),
        );
      }
    });
    child.on("close", (code, exitSignal) => {
      if (failure) return settle(failure);
      if (code === 0) return settle(null);
      const cause = new Error(`ffmpeg exited with ${exitSignal ?? `code ${code}`}: ${stderr.trim()}`);
      if (exitSignal !== null) {
        return settle(withCause(new PlatformError("internal_error", "The audio decoder failed."), cause));
      }
      if (/matches no streams/.test(stderr)) {
        return settle(withCause(invalidAudio("the file has no audio track."), cause));
      }
      settle(withCause(invalidAudio("the file is not audio, or is damaged or cut short."), cause));
    });

    if (child.pid !== undefined) child.stdin.end(input);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// MP4 (ISO BMFF / QuickTime): moov moved before mdat, in memory, as qt-faststart does on disk.

interface Box {
  type: string;
  start: number;
  /** Where its payload starts. */
  body: number;
  end: number;
}

/** Top-level box types a QuickTime or MP4 file may begin with. */
const MP4_FIRST_BOXES = new Set(["ftyp", "moov", "mdat", "free", "skip", "wide", "pnot"]);

function isMp4(bytes: Uint8Array): boolean {
  if (bytes.length < 8) return false;
  const first = readBoxes(bytes, 0, bytes.length)[0];
  return first !== undefined && MP4_FIRST_BOXES.has(first.type);
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The complete boxes between `start` and `end`, in order; parsing stops at the first that does not fit. */
function readBoxes(bytes: Uint8Array, start: number, end: number): Box[] {
  const data = view(bytes);
  const boxes: Box[] = [];
  let offset = start;
  while (offset + 8 <= end) {
    let size = data.getUint32(offset);
    let body = offset + 8;
    if (size === 1) {
      if (offset + 16 > end) break;
      size = Number(data.getBigUint64(offset + 8));
      body = offset + 16;
    } else if (size === 0) {
      size = end - offset;
    }
    if (size < body - offset || offset + size > end) break;
    const type = String.fromCharCode(
      bytes[offset + 4]!,
      bytes[offset + 5]!,
      bytes[offset + 6]!,
      bytes[offset + 7]!,
    );
    boxes.push({ type, start: offset, body, end: offset + size });
    offset += size;
  }
  return boxes;
}

function child(bytes: Uint8Array, parent: Box | undefined, type: string): Box | undefined {
  if (!parent) return undefined;
  return readBoxes(bytes, parent.body, parent.end).find((box) => box.type === type);
}

function children(bytes: Uint8Array, parent: Box, type: string): Box[] {
  return readBoxes(bytes, parent.body, parent.end).filter((box) => box.type === type);
}

export interface PreparedMp4 {
  /** The file to feed ffmpeg: the original, or a copy with moov moved before the first mdat. */
  bytes: Uint8Array;
  moved: boolean;
  /** The first audio track's length per its edit list, if it has one: what its decoded samples are cut to. */
  audioSeconds: number | null;
}

/** Exported for the tests and the bench; decodeAudio calls it on every MP4. */
export function prepareMp4(bytes: Uint8Array): PreparedMp4 {
  const top = readBoxes(bytes, 0, bytes.length);
  const moov = top.find((box) => box.type === "moov");
  const mdat = top.find((box) => box.type === "mdat");
  if (!moov) return { bytes, moved: false, audioSeconds: null };
  const audioSeconds = audioTrackSeconds(bytes, moov);
  if (!mdat || mdat.start > moov.start) return { bytes, moved: false, audioSeconds };
  const moved = moveMoov(bytes, moov, mdat.start);
  return { bytes: moved ?? bytes, moved: moved !== null, audioSeconds };
}

/**
 * The file with moov inserted before the box at `insertAt`. Every chunk offset (stco, co64) that pointed between
 * `insertAt` and moov's old place moves by moov's size; what followed moov stays where it was.
 */
function moveMoov(bytes: Uint8Array, moov: Box, insertAt: number): Uint8Array | null {
  const moovSize = moov.end - moov.start;
  // A copy (Buffer's slice would be a view): the caller's bytes are never changed.
  const moovCopy = Uint8Array.prototype.slice.call(bytes, moov.start, moov.end);
  const relative: Box = { type: "moov", start: 0, body: moov.body - moov.start, end: moovSize };
  for (const trak of children(moovCopy, relative, "trak")) {
    const stbl = child(moovCopy, child(moovCopy, child(moovCopy, trak, "mdia"), "minf"), "stbl");
    if (!stbl) continue;
    for (const table of readBoxes(moovCopy, stbl.body, stbl.end)) {
      if (table.type !== "stco" && table.type !== "co64") continue;
      const wide = table.type === "co64";
      const data = view(moovCopy);
      if (table.body + 8 > table.end) return null;
      const count = data.getUint32(table.body + 4);
      const entries = table.body + 8;
      if (entries + count * (wide ? 8 : 4) > table.end) return null;
      for (let index = 0; index < count; index++) {
        const at = entries + index * (wide ? 8 : 4);
        const offset = wide ? Number(data.getBigUint64(at)) : data.getUint32(at);
        if (offset < insertAt || offset >= moov.start) continue;
        const shifted = offset + moovSize;
        if (wide) data.setBigUint64(at, BigInt(shifted));
        else if (shifted > 0xffff_ffff) return null;
        else data.setUint32(at, shifted);
      }
    }
  }
  return Buffer.concat([
    bytes.subarray(0, insertAt),
    moovCopy,
    bytes.subarray(insertAt, moov.start),
    bytes.subarray(moov.end),
  ]);
}

/**
 * The presentation length of the first audio track (the one `-map 0:a:0` decodes): its edit list's non-empty
 * segments, in the movie's timescale. Null without an edit list, or with one of no length (fragmented files).
 */
function audioTrackSeconds(bytes: Uint8Array, moov: Box): number | null {
  const data = view(bytes);
  const mvhd = child(bytes, moov, "mvhd");
  if (!mvhd || mvhd.body + 24 > mvhd.end) return null;
  const movieTimescale = data.getUint32(mvhd.body + (bytes[mvhd.body] === 1 ? 20 : 12));
  if (movieTimescale === 0) return null;
  for (const trak of children(bytes, moov, "trak")) {
    const hdlr = child(bytes, child(bytes, trak, "mdia"), "hdlr");
    if (!hdlr || hdlr.body + 12 > hdlr.end) continue;
    const handler = String.fromCharCode(...bytes.subarray(hdlr.body + 8, hdlr.body + 12));
    if (handler !== "soun") continue;
    const elst = child(bytes, child(bytes, trak, "edts"), "elst");
    if (!elst || elst.body + 8 > elst.end) return null;
    const version = bytes[elst.body];
    const count = data.getUint32(elst.body + 4);
    const entrySize = version === 1 ? 20 : 12;
    if (elst.body + 8 + count * entrySize > elst.end) return null;
    let duration = 0;
    for (let index = 0; index < count; index++) {
      const at = elst.body + 8 + index * entrySize;
      const segment = version === 1 ? Number(data.getBigUint64(at)) : data.getUint32(at);
      const mediaTime = version === 1 ? Number(data.getBigInt64(at + 8)) : data.getInt32(at + 4);
      if (mediaTime !== -1) duration += segment; // -1: an empty edit, which ffmpeg does not decode as silence
    }
    return duration > 0 ? duration / movieTimescale : null;
  }
  return null;
}
