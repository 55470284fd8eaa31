// decodeAudio against Debian's ffmpeg: every container the API takes, made in memory from a synthesized tone
// (ffmpeg's encoders over pipes; M4A muxed in test/support/audio.ts from ffmpeg's ADTS, since ffmpeg's mp4 muxer
// needs a seekable file), each decoded to the tone's exact length and level; bad input refused with the typed errors; the limit
// enforced while ffmpeg streams; abort; and, under strace, no file written by ffmpeg.
import t, { type Test } from "tap";
import { spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PlatformError } from "@llmaas/contracts";
import { ffmpegPipe, muxM4a, toneWav } from "../../../test/support/audio.js";
import { decodeAudio, ffmpegArguments, PCM_SAMPLE_RATE, prepareMp4 } from "../src/decode.js";

const SECONDS = 2.37;
const FREQUENCY = 440;
const AMPLITUDE = 0.5;
const SOURCE_RATE = 44_100;

// ---------------------------------------------------------------------------------------------------------------
// Fixtures, in memory (the tone, ffmpeg over pipes and the M4A muxer: test/support/audio.ts)

/** The tone of every fixture: what the measurements below expect. */
const TONE = { frequency: FREQUENCY, amplitude: AMPLITUDE, sampleRate: SOURCE_RATE };

/** The top-level boxes of an MP4, by type, in file order. */
function topLevelBoxes(file: Buffer): string[] {
  const types: string[] = [];
  for (let at = 0; at + 8 <= file.length; at += file.readUInt32BE(at))
    types.push(file.toString("latin1", at + 4, at + 8));
  return types;
}

// ---------------------------------------------------------------------------------------------------------------
// Measurements

function samplesOf(pcm: Buffer): Int16Array {
  return new Int16Array(pcm.buffer.slice(pcm.byteOffset, pcm.byteOffset + pcm.length));
}

/** RMS and zero crossings per second, away from the first and last 100 ms (codec ramps). */
function measure(pcm: Buffer): { rms: number; crossingsPerSecond: number } {
  const samples = samplesOf(pcm);
  const from = PCM_SAMPLE_RATE / 10;
  const to = samples.length - PCM_SAMPLE_RATE / 10;
  let sumSquares = 0;
  let crossings = 0;
  for (let index = from; index < to; index++) {
    const sample = samples[index]!;
    sumSquares += sample * sample;
    if (index > from && samples[index - 1]! < 0 !== sample < 0) crossings++;
  }
  return {
    rms: Math.sqrt(sumSquares / (to - from)),
    crossingsPerSecond: (crossings * PCM_SAMPLE_RATE) / (to - from),
  };
}

const EXPECTED_RMS = (AMPLITUDE * 32767) / Math.SQRT2;

async function rejectsWith(
  t: Test,
  promise: Promise<unknown>,
  code: string,
  param: string | null,
  message: RegExp,
): Promise<PlatformError> {
  const error = await promise.then(
    () => null,
    (reason: unknown) => reason,
  );
  t.type(error, PlatformError, "a PlatformError");
  const platformError = error as PlatformError;
  t.equal(platformError.code, code);
  t.equal(platformError.param, param);
  t.match(platformError.message, message);
  return platformError;
}

const wav = toneWav(SECONDS, TONE);
const options = { maxSeconds: 3600 };

/** A directory for the fake ffmpegs and strace's log (never audio), removed at the end. */
const scratch = mkdtempSync(join(tmpdir(), "decode-test-"));
t.teardown(() => rmSync(scratch, { recursive: true, force: true }));

function script(name: string, body: string): string {
  const path = join(scratch, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

/** The live children of this process, by pid. */
function childPids(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === process.pid) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

// ---------------------------------------------------------------------------------------------------------------

void t.test("this ffmpeg has the encoders the fixtures need", async (t) => {
  const encoders = spawnSync("ffmpeg", ["-hide_banner", "-encoders"]).stdout.toString();
  for (const encoder of ["libmp3lame", "aac", "libopus", "flac", "libvorbis"]) {
    t.match(encoders, new RegExp(`\\s${encoder}\\s`), encoder);
  }
});

const containers: Array<{ name: string; make: () => Promise<Buffer>; toleranceMs: number }> = [
  { name: "WAV", make: async () => wav, toleranceMs: 1 },
  {
    name: "WAV, 48 kHz stereo",
    make: async () => toneWav(SECONDS, { ...TONE, sampleRate: 48_000, channels: 2 }),
    toleranceMs: 1,
  },
  // Written to a pipe, the mp3 muxer cannot go back to fill in the LAME header (encoder delay and padding), so
  // the decoder keeps about 1100 priming samples and the last frame's padding: up to about 50 ms at 44.1 kHz.
  {
    name: "MP3",
    make: () => ffmpegPipe(wav, ["-c:a", "libmp3lame", "-b:a", "128k", "-f", "mp3"]),
    toleranceMs: 50,
  },
  { name: "FLAC", make: () => ffmpegPipe(wav, ["-c:a", "flac", "-f", "flac"]), toleranceMs: 1 },
  {
    name: "Ogg Opus",
    make: () => ffmpegPipe(wav, ["-c:a", "libopus", "-b:a", "48k", "-f", "ogg"]),
    toleranceMs: 1,
  },
  {
    name: "WebM Opus",
    make: () => ffmpegPipe(wav, ["-c:a", "libopus", "-b:a", "48k", "-f", "webm"]),
    toleranceMs: 1,
  },
  { name: "Ogg Vorbis", make: () => ffmpegPipe(wav, ["-c:a", "libvorbis", "-f", "ogg"]), toleranceMs: 1 },
];

for (const { name, make, toleranceMs } of containers) {
  void t.test(`${name}: the tone's length and level`, async (t) => {
    const file = await make();
    const { pcm, seconds } = await decodeAudio(file, options);
    t.equal(pcm.length, seconds * PCM_SAMPLE_RATE * 2, "seconds are the samples' length");
    t.ok(
      Math.abs(seconds - SECONDS) * 1000 <= toleranceMs,
      `${seconds} s within ${toleranceMs} ms of ${SECONDS}`,
    );
    const { rms, crossingsPerSecond } = measure(pcm);
    t.ok(Math.abs(rms / EXPECTED_RMS - 1) < 0.1, `RMS ${rms.toFixed(0)} ≈ ${EXPECTED_RMS.toFixed(0)}`);
    t.ok(
      Math.abs(crossingsPerSecond / (2 * FREQUENCY) - 1) < 0.02,
      `${crossingsPerSecond.toFixed(1)} zero crossings/s`,
    );
  });
}

/** Long enough (about 220 KB) that ffmpeg, reading a pipe, cannot seek back from moov to the samples. */
const M4A_SECONDS = 12.37;

void t.test("M4A (AAC): faststart and moov at the end decode alike, to the edit list's length", async (t) => {
  const adts = await ffmpegPipe(toneWav(M4A_SECONDS, TONE), ["-c:a", "aac", "-b:a", "160k", "-f", "adts"]);
  const faststart = muxM4a(adts, { layout: "faststart", seconds: M4A_SECONDS });
  const moovAtEnd = muxM4a(adts, { layout: "moov-at-end", seconds: M4A_SECONDS });
  t.same(topLevelBoxes(faststart), ["ftyp", "moov", "mdat"]);
  t.same(topLevelBoxes(moovAtEnd), ["ftyp", "free", "mdat", "moov"]);
  const original = Buffer.from(moovAtEnd);

  // The control: as uploaded, ffmpeg reading a pipe cannot get from moov back to the samples.
  const plain = await new Promise<{ code: number | null; bytes: number }>((resolve) => {
    const child = spawn("ffmpeg", ffmpegArguments());
    let bytes = 0;
    child.stdout.on("data", (chunk: Buffer) => (bytes += chunk.length));
    child.stdin.on("error", () => undefined);
    child.on("close", (code) => resolve({ code, bytes }));
    child.stdin.end(moovAtEnd);
  });
  t.equal(plain.bytes, 0, `moov at the end, ${moovAtEnd.length} bytes, over a plain pipe: nothing decoded`);

  const unmoved = prepareMp4(faststart);
  t.same(
    { moved: unmoved.moved, audioSeconds: unmoved.audioSeconds },
    { moved: false, audioSeconds: M4A_SECONDS },
  );
  t.equal(unmoved.bytes, faststart, "a faststart file is passed on as it is");
  const prepared = prepareMp4(moovAtEnd);
  t.equal(prepared.moved, true, "moov at the end is moved");
  t.equal(prepared.bytes.length, moovAtEnd.length);
  t.same(topLevelBoxes(Buffer.from(prepared.bytes)), ["ftyp", "free", "moov", "mdat"], "before mdat");

  const a = await decodeAudio(faststart, options);
  const b = await decodeAudio(moovAtEnd, options);
  t.ok(moovAtEnd.equals(original), "the caller's bytes are not changed");
  t.equal(a.seconds, M4A_SECONDS, "cut to the edit list: the exact length");
  t.equal(b.seconds, M4A_SECONDS);
  t.ok(a.pcm.equals(b.pcm), "the same samples either way");
  const { rms, crossingsPerSecond } = measure(b.pcm);
  t.ok(Math.abs(rms / EXPECTED_RMS - 1) < 0.1, `RMS ${rms.toFixed(0)}`);
  t.ok(
    Math.abs(crossingsPerSecond / (2 * FREQUENCY) - 1) < 0.02,
    `${crossingsPerSecond.toFixed(1)} crossings/s`,
  );
});

void t.test("bad input: invalid_request on `file`, naming the supported formats", async (t) => {
  const formats = /Supported formats: flac, m4a, mp3, mp4.*wav, webm\.$/;
  let seed = 42;
  const garbage = Buffer.alloc(64 * 1024, 0).map(() => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24);
  await rejectsWith(t, decodeAudio(garbage, options), "invalid_request", "file", /not audio/);
  await rejectsWith(
    t,
    decodeAudio(Buffer.from("hello, I am a text file\n"), options),
    "invalid_request",
    "file",
    formats,
  );
  await rejectsWith(
    t,
    decodeAudio(new Uint8Array(0), options),
    "invalid_request",
    "file",
    /empty.*Supported formats/,
  );
  await rejectsWith(t, decodeAudio(wav.subarray(0, 44), options), "invalid_request", "file", formats);
  await rejectsWith(t, decodeAudio(wav.subarray(0, 20), options), "invalid_request", "file", formats);
  // Header and 28 samples: ffmpeg succeeds with nothing out of the resampler.
  await rejectsWith(
    t,
    decodeAudio(wav.subarray(0, 100), options),
    "invalid_request",
    "file",
    /no audio in it/,
  );
  // An MP4 cut before its moov.
  const adts = await ffmpegPipe(wav, ["-c:a", "aac", "-f", "adts"]);
  const moovAtEnd = muxM4a(adts, { layout: "moov-at-end", seconds: SECONDS });
  await rejectsWith(
    t,
    decodeAudio(moovAtEnd.subarray(0, moovAtEnd.length - 200), options),
    "invalid_request",
    "file",
    formats,
  );
});

void t.test("a video without audio: invalid_request, no audio track", async (t) => {
  const video = await new Promise<Buffer>((resolve, reject) => {
    const child = spawn("ffmpeg", [
      ...["-nostdin", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=d=0.2:s=32x32"],
      ...["-c:v", "ffv1", "-f", "matroska", "pipe:1"],
    ]);
    const out: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => out.push(chunk));
    child.on("error", reject);
    child.on("close", () => resolve(Buffer.concat(out)));
  });
  await rejectsWith(t, decodeAudio(video, options), "invalid_request", "file", /no audio track/);
});

void t.test("longer than maxSeconds: invalid_request naming the limit", async (t) => {
  await rejectsWith(t, decodeAudio(wav, { maxSeconds: 2 }), "invalid_request", "file", /at most 2 seconds/);
  t.equal(
    (await decodeAudio(wav, { maxSeconds: SECONDS })).seconds,
    SECONDS,
    "exactly the limit is accepted",
  );
  const error = await rejectsWith(
    t,
    decodeAudio(toneWav(121, { ...TONE, sampleRate: 16_000 }), { maxSeconds: 120 }),
    "invalid_request",
    "file",
    /at most 120 seconds \(2 minutes\)/,
  );
  t.notOk(error.cause, "no ffmpeg complaint behind it");
});

void t.test("the limit holds while streaming: endless output is cut off, not buffered", async (t) => {
  // A stand-in for ffmpeg that ignores its input and writes zeros forever.
  const endless = script("endless", "exec cat /dev/zero");
  const started = Date.now();
  await rejectsWith(
    t,
    decodeAudio(wav, { maxSeconds: 5, ffmpegPath: endless }),
    "invalid_request",
    "file",
    /at most 5 seconds/,
  );
  t.ok(Date.now() - started < 2000, `stopped after ${Date.now() - started} ms`);
  t.same(childPids(), [], "and it was killed");
});

void t.test("abort: ffmpeg is killed, request_timeout", async (t) => {
  const stuck = script("stuck", "exec sleep 30");
  const controller = new AbortController();
  const decoding = decodeAudio(wav, { maxSeconds: 60, ffmpegPath: stuck, signal: controller.signal });
  await new Promise((resolve) => setTimeout(resolve, 100));
  const [pid] = childPids();
  t.ok(pid, "the decoder is running");
  controller.abort();
  await rejectsWith(t, decoding, "request_timeout", null, /cancelled/);
  t.notOk(existsSync(`/proc/${pid}`), "and gone when decodeAudio has settled");

  // With the real ffmpeg, on 25 MB of 48 kHz stereo: aborted mid-decode.
  const big = toneWav(130, { ...TONE, sampleRate: 48_000, channels: 2 });
  const real = new AbortController();
  const started = Date.now();
  const realDecoding = decodeAudio(big, { maxSeconds: 3600, signal: real.signal });
  setTimeout(() => real.abort(), 20);
  await rejectsWith(t, realDecoding, "request_timeout", null, /cancelled/);
  t.ok(Date.now() - started < 1000, `settled ${Date.now() - started} ms after the start`);
  t.same(childPids(), [], "no ffmpeg left");

  const aborted = AbortSignal.abort();
  await rejectsWith(
    t,
    decodeAudio(wav, { ...options, signal: aborted }),
    "request_timeout",
    null,
    /cancelled/,
  );
});

void t.test("ffmpeg exiting before reading its input: EPIPE is handled", async (t) => {
  // ffmpeg gives up on 20 MB of zeros after its probe, long before it has been sent them all.
  await rejectsWith(
    t,
    decodeAudio(Buffer.alloc(20 * 1024 * 1024), options),
    "invalid_request",
    "file",
    /not audio/,
  );
  // A "decoder" that reads nothing at all.
  await rejectsWith(
    t,
    decodeAudio(Buffer.alloc(20 * 1024 * 1024), { ...options, ffmpegPath: "false" }),
    "invalid_request",
    "file",
    /not audio/,
  );
});

void t.test("no ffmpeg: internal_error", async (t) => {
  const error = await rejectsWith(
    t,
    decodeAudio(wav, { ...options, ffmpegPath: join(scratch, "no-such-ffmpeg") }),
    "internal_error",
    null,
    /decoder is not available/,
  );
  t.match((error.cause as NodeJS.ErrnoException).code, "ENOENT");
});

const strace = spawnSync("sh", ["-c", "command -v strace"]).stdout.toString().trim();

/** The file system calls of ffmpeg (and anything it starts) that create or write a file. */
function writesIn(log: string): string[] {
  return log
    .split("\n")
    .filter(
      (line) =>
        /\b(creat|rename\w*|link\w*|symlink\w*|mknod\w*|memfd_create|truncate|ftruncate)\(/.test(line) ||
        (/\bopen(at2?)?\(/.test(line) &&
          /O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND/.test(line) &&
          !/"\/dev\/null"/.test(line)),
    );
}

void t.test(
  "no audio byte reaches the disk: ffmpeg opens no file for writing (strace)",
  { skip: strace ? false : "strace is not installed" },
  async (t) => {
    const log = join(scratch, "strace.log");
    // strace's log holds system calls and paths, never data: read(2) and write(2) are not traced.
    const traced = script(
      "traced-ffmpeg",
      `exec ${strace} -f -qq -o ${log} -e trace=%file,ftruncate,memfd_create,socket,connect ffmpeg "$@"`,
    );
    const adts = await ffmpegPipe(wav, ["-c:a", "aac", "-b:a", "256k", "-f", "adts"]);
    for (const [name, file] of [
      ["WAV", wav],
      ["moov-at-end M4A", muxM4a(adts, { layout: "moov-at-end", seconds: SECONDS })],
    ] as const) {
      const decoded = await decodeAudio(file, { ...options, ffmpegPath: traced });
      t.equal(decoded.seconds, SECONDS, `${name} decoded under strace`);
      const calls = readFileSync(log, "utf8");
      t.match(calls, /execve\(.*ffmpeg/, "the log is ffmpeg's");
      t.notMatch(calls, /\b(read|write|pread64|pwrite64)\(/, "and has no data in it");
      t.same(writesIn(calls), [], `${name}: no file created or opened for writing`);
      t.notMatch(calls, /\b(socket|connect)\(/, `${name}: no socket`);
    }

    // The control: the same watch does see ffmpeg write a file (its -report log, in its working directory).
    const control = spawnSync(
      traced,
      ["-nostdin", "-report", "-f", "lavfi", "-i", "anullsrc", "-t", "0.01", "-f", "null", "-"],
      {
        cwd: scratch,
        env: { ...process.env, FFREPORT: undefined },
      },
    );
    t.equal(control.status, 0);
    t.match(
      writesIn(readFileSync(log, "utf8")).join("\n"),
      /ffmpeg-\d+-\d+\.log.*(O_WRONLY|O_CREAT)/,
      "a file written is seen",
    );
  },
);

void t.test("decode.ts itself touches no file system", async (t) => {
  const source = readFileSync(new URL("../src/decode.ts", import.meta.url), "utf8");
  const imports = [...source.matchAll(/^import .* from "([^"]+)";$/gm)].map((match) => match[1]);
  t.same(imports, ["node:child_process", "@llmaas/contracts"]);
});
