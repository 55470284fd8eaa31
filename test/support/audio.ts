import { spawn } from "node:child_process";

/**
 * A WAV file of a sine tone, made in memory: the tests' audio, since no recording can be downloaded. 16-bit PCM,
 * `channels` interleaved copies of the same tone.
 */
export function toneWav(
  seconds: number,
  options: { frequency?: number; sampleRate?: number; channels?: number; amplitude?: number } = {},
): Buffer {
  const { frequency = 440, sampleRate = 16_000, channels = 1, amplitude = 0.5 } = options;
  const frames = Math.round(seconds * sampleRate);
  const dataBytes = frames * channels * 2;
  const wav = Buffer.alloc(44 + dataBytes);
  wav.write("RIFF", 0, "ascii");
  wav.writeUInt32LE(36 + dataBytes, 4);
  wav.write("WAVE", 8, "ascii");
  wav.write("fmt ", 12, "ascii");
  wav.writeUInt32LE(16, 16);
  wav.writeUInt16LE(1, 20); // PCM
  wav.writeUInt16LE(channels, 22);
  wav.writeUInt32LE(sampleRate, 24);
  wav.writeUInt32LE(sampleRate * channels * 2, 28);
  wav.writeUInt16LE(channels * 2, 32);
  wav.writeUInt16LE(16, 34);
  wav.write("data", 36, "ascii");
  wav.writeUInt32LE(dataBytes, 40);
  for (let frame = 0; frame < frames; frame++) {
    const sample = Math.round(Math.sin((2 * Math.PI * frequency * frame) / sampleRate) * amplitude * 32767);
    for (let channel = 0; channel < channels; channel++) {
      wav.writeInt16LE(sample, 44 + (frame * channels + channel) * 2);
    }
  }
  return wav;
}

/**
 * ffmpeg from stdin to stdout, nothing else: the tests and benches make their compressed audio (MP3, Opus, FLAC, ADTS,
 * …) from a synthesized WAV this way, so that nothing is written to disk or downloaded. `args` go between the input
 * and `pipe:1`: the codec and the format (`-f`), which cannot be guessed from a pipe's name. ffmpeg exiting before
 * it has read all its input (EPIPE on its stdin) is no error of its own: its exit status tells.
 */
export function ffmpegPipe(input: Buffer, args: string[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn("ffmpeg", [
      ...["-nostdin", "-hide_banner", "-loglevel", "error", "-i", "pipe:0"],
      ...args,
      "pipe:1",
    ]);
    const out: Buffer[] = [];
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdin.on("error", () => undefined);
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`ffmpeg ${args.join(" ")}: ${stderr}`)),
    );
    child.stdin.end(input);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// M4A, muxed here: ffmpeg's mp4 muxer needs a seekable output (it goes back to write moov), so it cannot write to a
// pipe, and the fixtures are never written to disk.

function box(type: string, ...payload: Buffer[]): Buffer {
  const body = Buffer.concat(payload);
  const header = Buffer.alloc(8);
  header.writeUInt32BE(8 + body.length, 0);
  header.write(type, 4, "latin1");
  return Buffer.concat([header, body]);
}

function fullBox(type: string, version: number, flags: number, ...payload: Buffer[]): Buffer {
  return box(type, u32(((version << 24) | flags) >>> 0), ...payload);
}

function u32(...values: number[]): Buffer {
  const buffer = Buffer.alloc(values.length * 4);
  values.forEach((value, index) => buffer.writeUInt32BE(value >>> 0, index * 4));
  return buffer;
}

function u16(...values: number[]): Buffer {
  const buffer = Buffer.alloc(values.length * 2);
  values.forEach((value, index) => buffer.writeUInt16BE(value, index * 2));
  return buffer;
}

function descriptor(tag: number, ...payload: Buffer[]): Buffer {
  const body = Buffer.concat(payload);
  return Buffer.concat([Buffer.from([tag, body.length]), body]);
}

const MATRIX = u32(0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000);
const ADTS_RATES = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];
/** AAC's samples a frame, and the priming samples ffmpeg's encoder puts first. */
const AAC_FRAME = 1024;

export interface M4aOptions {
  /** Where moov goes: before mdat (`-movflags +faststart`), or after it, as ffmpeg's mp4 muxer writes it. */
  layout: "faststart" | "moov-at-end";
  /** The ADTS's frames this many times over, for a large file from a short encode; 1 unless told. */
  repeat?: number;
  /**
   * The edit list's length, and so the decoded length: the source's exact length where it is known. Unless told,
   * what the frames hold after the priming samples, to the millisecond below (repeated copies each carry their own
   * priming and padding, so no exact length exists for them).
   */
  seconds?: number;
  /** Samples (AAC frames) a chunk; 8 unless told. */
  framesPerChunk?: number;
}

/**
 * An M4A of the AAC that ffmpeg wrote as ADTS (which it can write to a pipe), laid out as ffmpeg's mp4 muxer does
 * (moov after mdat) or with faststart: ffmpeg's mp4 muxer cannot write to a pipe, so the tests and the bench mux
 * M4A themselves. The ADTS frames' raw AAC are the samples, in chunks of `framesPerChunk`, with an edit list that
 * skips the encoder's 1024 priming samples and lasts `seconds`.
 */
export function muxM4a(adts: Buffer, options: M4aOptions): Buffer {
  const { layout, repeat = 1, framesPerChunk: perChunk = 8 } = options;
  const once: Buffer[] = [];
  let objectType = 2;
  let rateIndex = 4;
  let channels = 1;
  for (let at = 0; at + 7 <= adts.length;) {
    if (adts[at] !== 0xff || (adts[at + 1]! & 0xf0) !== 0xf0) throw new Error(`no ADTS sync at ${at}`);
    const headerLength = adts[at + 1]! & 1 ? 7 : 9;
    objectType = (adts[at + 2]! >> 6) + 1;
    rateIndex = (adts[at + 2]! >> 2) & 0xf;
    channels = ((adts[at + 2]! & 1) << 2) | (adts[at + 3]! >> 6);
    const length = ((adts[at + 3]! & 3) << 11) | (adts[at + 4]! << 3) | (adts[at + 5]! >> 5);
    once.push(adts.subarray(at + headerLength, at + length));
    at += length;
  }
  if (once.length === 0) throw new Error("no ADTS frames");
  const frames = Array.from({ length: repeat }, () => once).flat();
  const rate = ADTS_RATES[rateIndex]!;
  const chunkSizes: number[] = [];
  for (let index = 0; index < frames.length; index += perChunk) {
    chunkSizes.push(frames.slice(index, index + perChunk).reduce((sum, frame) => sum + frame.length, 0));
  }
  const movieMs =
    options.seconds === undefined
      ? Math.floor(((frames.length - 1) * AAC_FRAME * 1000) / rate)
      : Math.round(options.seconds * 1000);
  const config = u16((objectType << 11) | (rateIndex << 7) | (channels << 3));
  const moovWith = (dataStart: number): Buffer => {
    const offsets: number[] = [];
    chunkSizes.reduce((at, size) => (offsets.push(at), at + size), dataStart);
    const remainder = frames.length % perChunk;
    const stsc =
      remainder === 0 || chunkSizes.length === 1
        ? u32(1, 1, Math.min(perChunk, frames.length), 1)
        : u32(2, 1, perChunk, 1, chunkSizes.length, remainder, 1);
    const esds = fullBox(
      "esds",
      0,
      0,
      descriptor(
        3,
        u16(1),
        Buffer.from([0]),
        descriptor(4, Buffer.from([0x40, 0x15, 0, 0, 0]), u32(0, 0), descriptor(5, config)),
        descriptor(6, Buffer.from([2])),
      ),
    );
    const mp4a = box(
      "mp4a",
      Buffer.alloc(6),
      u16(1),
      Buffer.alloc(8),
      u16(channels, 16, 0, 0),
      u32(rate << 16),
      esds,
    );
    const stbl = box(
      "stbl",
      fullBox("stsd", 0, 0, u32(1), mp4a),
      fullBox("stts", 0, 0, u32(1, frames.length, AAC_FRAME)),
      fullBox("stsc", 0, 0, stsc),
      fullBox("stsz", 0, 0, u32(0, frames.length, ...frames.map((frame) => frame.length))),
      fullBox("stco", 0, 0, u32(offsets.length, ...offsets)),
    );
    const minf = box(
      "minf",
      fullBox("smhd", 0, 0, u32(0)),
      box("dinf", fullBox("dref", 0, 0, u32(1), fullBox("url ", 0, 1))),
      stbl,
    );
    const mdia = box(
      "mdia",
      fullBox("mdhd", 0, 0, u32(0, 0, rate, frames.length * AAC_FRAME), u16(0x55c4, 0)),
      fullBox("hdlr", 0, 0, u32(0), Buffer.from("soun"), Buffer.alloc(12), Buffer.from("SoundHandler\0")),
      minf,
    );
    const trak = box(
      "trak",
      fullBox("tkhd", 0, 3, u32(0, 0, 1, 0, movieMs, 0, 0), u16(0, 1, 0x100, 0), MATRIX, u32(0, 0)),
      box("edts", fullBox("elst", 0, 0, u32(1, movieMs, AAC_FRAME, 0x10000))),
      mdia,
    );
    const mvhd = fullBox(
      "mvhd",
      0,
      0,
      u32(0, 0, 1000, movieMs, 0x10000),
      u16(0x100),
      Buffer.alloc(10),
      MATRIX,
      Buffer.alloc(24),
      u32(2),
    );
    return box("moov", mvhd, trak);
  };
  const ftyp = box("ftyp", Buffer.from("M4A "), u32(0x200), Buffer.from("M4A isomiso2mp41"));
  const mdat = box("mdat", ...frames);
  if (layout === "faststart") {
    // moov's size does not depend on where mdat starts, only its offsets do.
    return Buffer.concat([ftyp, moovWith(ftyp.length + moovWith(0).length + 8), mdat]);
  }
  const free = box("free");
  return Buffer.concat([ftyp, free, mdat, moovWith(ftyp.length + free.length + 8)]);
}
