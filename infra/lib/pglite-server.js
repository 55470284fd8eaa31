// An embedded Postgres for `infra/up`: PGlite (Postgres compiled to WASM, one backend session) behind a TCP
// server that speaks the Postgres wire protocol to any number of clients.
//
// Why not `pglite-server` from @electric-sql/pglite-socket: it serialises single protocol *messages* across
// connections, so the Parse/Bind/Execute/Sync of two pooled connections interleave in PGlite's one session
// ("unnamed prepared statement does not exist", or another connection's rows; electric-sql/pglite#1046). Here a
// connection owns the session from its first message until PGlite answers ReadyForQuery with status idle, i.e.
// for a whole extended-protocol batch, and for a whole transaction. Sessions are still shared, so session state
// (SET, named prepared statements, temporary tables) leaks between connections; the platform uses none of it.
//
// usage: node infra/lib/pglite-server.js --db DIR [--host 127.0.0.1] [--port 5433]
/* global console */
import { createServer } from "node:net";
import process from "node:process";
import { Buffer } from "node:buffer";
import { parseArgs } from "node:util";
import { PGlite } from "@electric-sql/pglite";

const { values: args } = parseArgs({
  options: {
    db: { type: "string" },
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "5433" },
  },
});
if (!args.db) {
  console.error("usage: pglite-server.js --db DIR [--host HOST] [--port PORT]");
  process.exit(2);
}

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
const READY_FOR_QUERY = 0x5a; // 'Z'
const TERMINATE = 0x58; // 'X'
const SYNC = Buffer.from([0x53, 0, 0, 0, 4]);
const ROLLBACK = Buffer.from("Q\0\0\0\x0dROLLBACK\0", "latin1");

const db = new PGlite(args.db);
await db.waitReady;

/** FIFO ownership of the one PGlite session. */
class SessionLock {
  owner = null;
  waiting = [];
  acquire(conn) {
    if (this.owner === conn) return Promise.resolve();
    if (this.owner === null) {
      this.owner = conn;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push({ conn, resolve }));
  }
  release(conn) {
    if (this.owner !== conn) return;
    const next = this.waiting.shift();
    this.owner = next ? next.conn : null;
    next?.resolve();
  }
  forget(conn) {
    this.waiting = this.waiting.filter((w) => w.conn !== conn);
  }
}
const lock = new SessionLock();

/**
 * Runs one frontend message and streams PGlite's answer to `write`. Returns the transaction status of the answer's
 * final ReadyForQuery ("I", "T" or "E"), or null when the answer does not end with one (e.g. after Parse).
 */
async function execute(message, write) {
  // Walks the backend messages as they stream by, to see what the last one is.
  let header = [];
  let remaining = 0;
  let lastType = 0;
  let status = null;
  await db.runExclusive(() =>
    db.execProtocolRawStream(message, {
      onRawData: (chunk) => {
        write(chunk);
        for (let i = 0; i < chunk.length;) {
          if (remaining > 0) {
            const n = Math.min(remaining, chunk.length - i);
            if (lastType === READY_FOR_QUERY) status = String.fromCharCode(chunk[i + n - 1]);
            i += n;
            remaining -= n;
            continue;
          }
          header.push(chunk[i++]);
          if (header.length === 5) {
            lastType = header[0];
            remaining = ((header[1] << 24) | (header[2] << 16) | (header[3] << 8) | header[4]) - 4;
            header = [];
            if (lastType !== READY_FOR_QUERY) status = null;
          }
        }
      },
    }),
  );
  return lastType === READY_FOR_QUERY && remaining === 0 && header.length === 0 ? status : null;
}

const sockets = new Set();

function serve(socket) {
  sockets.add(socket);
  socket.setNoDelay(true);
  let buffered = Buffer.alloc(0);
  let startedUp = false; // as far as the framing of incoming bytes goes
  let owning = false; // holds the session lock, mid-batch or mid-transaction
  let closed = false;
  let work = Promise.resolve();

  const write = (chunk) => {
    if (!socket.destroyed) socket.write(Buffer.from(chunk));
  };

  // A connection that goes away mid-batch or mid-transaction must not leave its state behind for the next one.
  const hangUp = async () => {
    if (closed) return;
    closed = true;
    sockets.delete(socket);
    lock.forget(socket);
    socket.destroy();
    if (!owning) return;
    try {
      let status = await execute(SYNC, () => {});
      if (status !== "I") status = await execute(ROLLBACK, () => {});
    } catch (err) {
      console.error("pglite: cleaning up after a closed connection failed:", err);
    }
    owning = false;
    lock.release(socket);
  };

  const handle = async (message, untyped) => {
    if (untyped) {
      const code = message.readInt32BE(4);
      if (code === SSL_REQUEST || code === GSSENC_REQUEST) return write(Buffer.from("N"));
      if (code === CANCEL_REQUEST) return hangUp(); // not supported: the query simply runs to its end
    } else if (message[0] === TERMINATE) {
      return hangUp();
    }
    await lock.acquire(socket);
    if (closed) return lock.release(socket);
    owning = true;
    const status = await execute(message, write);
    if (status === "I") {
      owning = false;
      lock.release(socket);
    }
  };

  socket.on("data", (data) => {
    buffered = Buffer.concat([buffered, data]);
    for (;;) {
      // The startup packet has no type byte; every later message is a type byte then a length that counts itself.
      const offset = startedUp ? 1 : 0;
      if (buffered.length < offset + 4) break;
      const length = buffered.readInt32BE(offset);
      if (length < 4) return socket.destroy(); // not the Postgres protocol; "close" cleans up
      const size = offset + length;
      if (buffered.length < size) break;
      const message = buffered.subarray(0, size);
      buffered = buffered.subarray(size);
      const untyped = !startedUp;
      work = work
        .then(() => (closed ? undefined : handle(message, untyped)))
        .catch((err) => {
          console.error("pglite: connection failed:", err);
          return hangUp();
        });
      // SSL and GSS requests come before the startup packet; after the startup packet every message is typed.
      if (untyped) {
        const code = message.readInt32BE(4);
        if (code !== SSL_REQUEST && code !== GSSENC_REQUEST) startedUp = true;
      }
    }
  });
  socket.on("error", () => {});
  socket.on("close", () => {
    work = work.then(hangUp);
  });
}

const server = createServer(serve);
server.listen(Number(args.port), args.host, () => {
  console.log(`pglite: ${args.db} listening on ${args.host}:${args.port}`);
});
server.on("error", (err) => {
  console.error("pglite:", err.message);
  process.exit(1);
});

let stopping = false;
async function stop(signal) {
  if (stopping) return;
  stopping = true;
  console.log(`pglite: ${signal}, closing`);
  server.close();
  for (const socket of sockets) socket.destroy();
  await db.close();
  process.exit(0);
}
process.on("SIGTERM", () => void stop("SIGTERM"));
process.on("SIGINT", () => void stop("SIGINT"));
