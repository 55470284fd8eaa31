/** Where text goes: `process.stdout` in use, a collecting stream in tests. */
export interface TextSink {
  write(text: string): unknown;
}

export function formatJson(value: unknown): string {
  return JSON.stringify(value, null, 2) + "\n";
}

/** Unix seconds as ISO-8601 UTC without milliseconds, e.g. `2026-11-22T10:00:00Z`; absent as `-`. */
export function formatTime(seconds: number | null | undefined): string {
  if (typeof seconds !== "number" || !Number.isFinite(seconds)) return "-";
  return new Date(seconds * 1000).toISOString().replace(".000Z", "Z");
}

/**
 * One table cell or field value. Values come from the platform, so control characters are replaced: a
 * newline would break the one-row-per-line shape scripts grep, and escape sequences would reach the terminal.
 */
export function cell(value: string | number | boolean | null | undefined): string {
  if (value === null || value === undefined || value === "") return "-";
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return String(value).replace(/[\u0000-\u001f\u007f-\u009f]/g, " ");
}

function alignColumns(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((text, column) => {
      widths[column] = Math.max(widths[column] ?? 0, text.length);
    });
  }
  return rows
    .map((row) =>
      row
        .map((text, column) => (column === row.length - 1 ? text : text.padEnd(widths[column] ?? 0)))
        .join("  "),
    )
    .map((line) => line + "\n")
    .join("");
}

/** A header row and aligned columns separated by two spaces; no colours or borders, so it greps. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  return alignColumns([header, ...rows]);
}

/** `label  value` lines with the values aligned. */
export function formatFields(fields: readonly (readonly [label: string, value: string])[]): string {
  return alignColumns(fields);
}
