import { createHash } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname } from "node:path";

/** A small seeded PRNG: the same seed gives the same weights, so a model file is byte-identical run after run. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0)
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}

export interface WriteTinyModelResult {
  readonly path: string;
  readonly bytes: number;
  readonly sha256: string;
  /** False when an identical file was already there and was left untouched. */
  readonly written: boolean;
}

/** Writes a model file to `path`, creating parent folders, unless an identical file is already there. */
export async function writeModelFile(path: string, bytes: Buffer): Promise<WriteTinyModelResult> {
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  const existing = await readFile(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return undefined;
    throw error;
  });
  // Leaving an identical file alone keeps its mtime, so watchers and build caches stay quiet.
  const written = !existing?.equals(bytes);
  if (written) {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, bytes);
  }
  return { path, bytes: bytes.length, sha256, written };
}
