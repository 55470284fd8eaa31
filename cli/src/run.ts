import { Arguments, globalOptions } from "./args.js";
import { ApiClient } from "./client.js";
import type { Command } from "./command.js";
import { auditCommands } from "./commands/audit.js";
import { keyCommands } from "./commands/keys.js";
import { organizationCommands } from "./commands/orgs.js";
import { projectCommands } from "./commands/projects.js";
import { credentialSources, resolveConnection, type Environment } from "./config.js";
import { ApiError, ExitCode, PlatformUnavailableError, UsageError, exitCodeForStatus } from "./errors.js";
import { formatJson, type TextSink } from "./output.js";
import { usage } from "./usage.js";

export interface ConsoleIo {
  stdout: TextSink;
  stderr: TextSink;
}

const commands: readonly Command[] = [
  ...organizationCommands,
  ...projectCommands,
  ...keyCommands,
  ...auditCommands,
];

function commandsOfGroup(group: string): Command[] {
  const found = commands.filter((command) => command.path[0] === group);
  if (found.length === 0) throw new UsageError(`unknown command '${group}'`);
  return found;
}

/** Every credential this invocation could send, so that no message can reveal one. */
function credentialsIn(env: Environment, args: Arguments | undefined): string[] {
  return Object.values(credentialSources)
    .flatMap(({ option, variable }) => [env[variable], ...(args?.strings(option) ?? [])])
    .map((value) => value?.trim())
    .filter((value): value is string => Boolean(value));
}

function redact(text: string, secrets: readonly string[]): string {
  return secrets.reduce((redacted, secret) => redacted.split(secret).join("[redacted]"), text);
}

async function dispatch(args: Arguments, env: Environment, io: ConsoleIo): Promise<void> {
  const [group, ...rest] = args.positionals;
  if (group === undefined || group === "help") {
    if (group === undefined && !args.flag("help")) throw new UsageError("missing command");
    const topic = rest[0];
    io.stdout.write(usage(topic === undefined ? commands : commandsOfGroup(topic)));
    return;
  }

  const groupCommands = commandsOfGroup(group);
  if (args.flag("help")) {
    io.stdout.write(usage(groupCommands));
    return;
  }
  const command = groupCommands.find((candidate) =>
    candidate.path.every((word, index) => args.positionals[index] === word),
  );
  if (command === undefined) {
    throw new UsageError(
      rest[0] === undefined ? `missing ${group} command` : `unknown command '${group} ${rest[0]}'`,
      group,
    );
  }
  const foreignOption = args
    .given()
    .find((option) => !globalOptions.includes(option) && !command.options.includes(option));
  if (foreignOption !== undefined) {
    throw new UsageError(`'${command.path.join(" ")}' does not take --${foreignOption}`, group);
  }

  await command.execute({
    operands: args.positionals.slice(command.path.length),
    options: args,
    json: args.flag("json"),
    stdout: io.stdout,
    stderr: io.stderr,
    connect: () => new ApiClient(resolveConnection(command.credential, args, env)),
  });
}

/**
 * Runs one command line and returns the exit code. Takes the environment and the output streams as
 * arguments, so tests run it in-process.
 */
export async function run(argv: string[], env: Environment, io: ConsoleIo): Promise<number> {
  let args: Arguments | undefined;
  const report = (text: string): void => {
    io.stderr.write(redact(text, credentialsIn(env, args)));
  };
  try {
    args = new Arguments(argv);
    await dispatch(args, env, io);
    return ExitCode.success;
  } catch (error) {
    if (error instanceof UsageError) {
      const helpCommand = error.group === undefined ? "llmaas --help" : `llmaas ${error.group} --help`;
      report(`llmaas: ${error.message}\nRun '${helpCommand}' for usage.\n`);
      return ExitCode.usage;
    }
    if (error instanceof ApiError) {
      report(`llmaas: ${error.status} ${error.message}\n`);
      // The platform may echo what it was sent, so even its error body is redacted.
      if (args?.flag("json")) io.stdout.write(redact(formatJson(error.body), credentialsIn(env, args)));
      return exitCodeForStatus(error.status);
    }
    if (error instanceof PlatformUnavailableError) {
      report(`llmaas: ${error.message}\n`);
      return ExitCode.unavailable;
    }
    // A bug. Reported here rather than rethrown because Node's report of an uncaught error is not redacted;
    // the exit code is the one Node would use.
    report(
      `llmaas: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    return 1;
  }
}
