/**
 * Whether a failed write may succeed if simply tried again: the database was unreachable, restarting, out of
 * resources, or chose this transaction as a deadlock or serialization victim. Anything else (a value out of range, a
 * violated constraint) will fail the same way every time and is the message's fault, not the moment's.
 */
export function isTransient(error: unknown): boolean {
  const code = sqlState(error);
  if (code === undefined) return true; // no SQLSTATE: the connection failed, not the statement
  return (
    ["08", "40", "53", "57", "58"].some((transientClass) => code.startsWith(transientClass)) ||
    code === "55P03"
  );
}

function sqlState(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null || !("code" in error)) return undefined;
  const { code } = error;
  // Node's socket errors have codes too (ECONNRESET, EPIPE): a SQLSTATE is five digits or capitals, never E+letters.
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) && !/^E[A-Z]+$/.test(code) ? code : undefined;
}
