import type { Arguments, OptionName } from "./args.js";
import type { ApiClient } from "./client.js";
import type { CredentialKind } from "./config.js";
import { UsageError } from "./errors.js";
import type { TextSink } from "./output.js";

export interface Invocation<Operands extends readonly string[] = readonly string[]> {
  /** The positional arguments after the command words, one per name in `Command.operands`. */
  operands: Operands;
  options: Arguments;
  /** Print the API's JSON instead of human output. */
  json: boolean;
  stdout: TextSink;
  stderr: TextSink;
  /**
   * Resolves the URL and the command's credential. Commands call it after reading their options, so that
   * every mistake on the command line is reported before a missing credential is.
   */
  connect: () => ApiClient;
}

export interface Command {
  /** The command words, e.g. `["keys", "rotate"]`; the first one is the group. */
  path: readonly string[];
  /** The rest of the usage line after the command words, e.g. `--project P <key_id> [--grace SECONDS]`. */
  synopsis: string;
  summary: string;
  credential: CredentialKind;
  /** Names of the required positional arguments, in order. */
  operands: readonly string[];
  /** Options accepted besides the global ones. */
  options: readonly OptionName[];
  execute(invocation: Invocation): Promise<void>;
}

type OperandValues<Names extends readonly string[]> = { readonly [Index in keyof Names]: string };

interface CommandDefinition<Names extends readonly string[]> extends Omit<Command, "operands" | "execute"> {
  operands: Names;
  execute(invocation: Invocation<OperandValues<Names>>): Promise<void>;
}

/** Checks the number of positional arguments, so a command can destructure them as strings. */
export function defineCommand<const Names extends readonly string[]>(
  definition: CommandDefinition<Names>,
): Command {
  return {
    ...definition,
    async execute(invocation: Invocation): Promise<void> {
      const { operands } = invocation;
      const group = definition.path[0];
      const missing = definition.operands[operands.length];
      if (missing !== undefined) throw new UsageError(`missing <${missing}>`, group);
      const unexpected = operands[definition.operands.length];
      if (unexpected !== undefined) throw new UsageError(`unexpected argument '${unexpected}'`, group);
      await definition.execute(invocation as Invocation<OperandValues<Names>>);
    },
  };
}
