import { run } from "./run.js";

// `llmaas audit --all | head` closes the pipe early: the reader has what it wanted, which is not an error.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code !== "EPIPE") throw error;
});

// exitCode rather than process.exit(), so that output still being written to a pipe is not cut off.
process.exitCode = await run(process.argv.slice(2), process.env, {
  stdout: process.stdout,
  stderr: process.stderr,
});
