import type { OptionName } from "../args.js";
import type { Invocation } from "../command.js";
import { formatJson, formatTable } from "../output.js";

/** The paging options every list command accepts. */
export const listOptions = ["limit", "after", "all"] as const satisfies readonly OptionName[];
export const listSynopsis = "[--limit N] [--after ID] [--all]";

export interface Columns<Item> {
  header: readonly string[];
  row: (item: Item) => string[];
}

/**
 * Lists a collection as a table, or as JSON with --json. The query carries `limit` and `after` from the
 * options, then the command's own filters.
 */
export async function showList<Item extends { id: string }>(
  invocation: Invocation,
  path: string,
  filters: URLSearchParams,
  columns: Columns<Item>,
): Promise<void> {
  const { options, stdout, stderr } = invocation;
  const query = new URLSearchParams();
  const limit = options.integer("limit", 1);
  if (limit !== undefined) query.set("limit", String(limit));
  const after = options.string("after");
  if (after !== undefined) query.set("after", after);
  for (const [name, value] of filters) query.append(name, value);

  const list = await invocation.connect().list<Item>(path, query, options.flag("all"));
  if (invocation.json) {
    stdout.write(formatJson(list));
    return;
  }
  stdout.write(formatTable(columns.header, list.data.map(columns.row)));
  if (list.has_more) {
    // On stderr, so that the table on stdout stays nothing but rows.
    const cursor = list.last_id ?? list.data.at(-1)?.id;
    stderr.write(`llmaas: more results: rerun with --all${cursor ? `, or with --after ${cursor}` : ""}\n`);
  }
}
