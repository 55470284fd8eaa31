import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "./errors.js";

/**
 * Every option of every command, parsed in one pass so that options may come before or after the command
 * words. Which options a command accepts is checked afterwards (`Command.options`). String options are all
 * `multiple` so a repeated option is visible: repeatable ones are read with `strings()`, the others with
 * `string()`, which refuses repetition instead of silently keeping one value.
 */
const optionDefinitions = {
  url: { type: "string", multiple: true },
  "admin-key": { type: "string", multiple: true },
  "operator-token": { type: "string", multiple: true },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  limit: { type: "string", multiple: true },
  after: { type: "string", multiple: true },
  all: { type: "boolean" },
  "include-archived": { type: "boolean" },
  type: { type: "string", multiple: true },
  project: { type: "string", multiple: true },
  "service-account": { type: "string", multiple: true },
  name: { type: "string", multiple: true },
  grace: { type: "string", multiple: true },
} as const satisfies ParseArgsConfig["options"];

type OptionDefinitions = typeof optionDefinitions;
export type OptionName = keyof OptionDefinitions;
export type StringOptionName = {
  [Name in OptionName]: OptionDefinitions[Name]["type"] extends "string" ? Name : never;
}[OptionName];
export type BooleanOptionName = Exclude<OptionName, StringOptionName>;

/** Accepted by every command. */
export const globalOptions: readonly OptionName[] = ["url", "admin-key", "operator-token", "json", "help"];

function parse(argv: string[]) {
  return parseArgs({ args: argv, options: optionDefinitions, allowPositionals: true, strict: true });
}

export class Arguments {
  readonly positionals: readonly string[];
  private readonly values: ReturnType<typeof parse>["values"];

  constructor(argv: string[]) {
    try {
      const parsed = parse(argv);
      this.positionals = parsed.positionals;
      this.values = parsed.values;
    } catch (error) {
      // parseArgs reports unknown options and missing values as TypeErrors with a readable message.
      throw new UsageError(error instanceof Error ? error.message : String(error));
    }
  }

  /** The options present on the command line. */
  given(): OptionName[] {
    return (Object.keys(optionDefinitions) as OptionName[]).filter((name) => this.values[name] !== undefined);
  }

  flag(name: BooleanOptionName): boolean {
    return this.values[name] === true;
  }

  strings(name: StringOptionName): string[] {
    return this.values[name] ?? [];
  }

  string(name: StringOptionName): string | undefined {
    const values = this.strings(name);
    if (values.length > 1) throw new UsageError(`--${name} is given more than once`);
    return values[0];
  }

  requiredString(name: StringOptionName, placeholder: string): string {
    const value = this.string(name);
    if (value === undefined) throw new UsageError(`missing --${name} ${placeholder}`);
    return value;
  }

  integer(name: StringOptionName, minimum: number): number | undefined {
    const value = this.string(name);
    if (value === undefined) return undefined;
    if (!/^\d+$/.test(value) || Number(value) < minimum || !Number.isSafeInteger(Number(value))) {
      throw new UsageError(`--${name} must be an integer of at least ${minimum}, not '${value}'`);
    }
    return Number(value);
  }
}
