/**
 * The one argument parser of every `polity` command and script, on node:util parseArgs (strict).
 * A command declares its options in one table (name, type, short, default, help text); the table
 * is both what is parsed and what `--help` prints, so the two cannot drift apart.
 *
 *   const TOKEN = defineCommand({ name: "token", summary: "...", options: { role: { type: "string", ... } } });
 *   const { values } = parseCommandArgs(TOKEN, args); // values.role: string
 *
 * `--help`/`-h` and every usage error end the command through a CliExit (code 0 for help, 2 for a
 * usage error), which infra/cli.ts prints; a script of its own uses parseArgvOrExit.
 */
import { parseArgs } from "node:util";

export interface StringOption {
  type: "string";
  /** One letter: `-n 100` for `--lines 100`. */
  short?: string;
  default?: string;
  /** May be given more than once; the values arrive as a list. */
  multiple?: boolean;
  /** The value's name in the usage, e.g. `ISO-8601` in `--from <ISO-8601>`. */
  value?: string;
  help: string;
}

export interface BooleanOption {
  type: "boolean";
  short?: string;
  help: string;
}

export type OptionSpec = StringOption | BooleanOption;
export type OptionTable = Record<string, OptionSpec>;

export interface CommandSpec<O extends OptionTable = OptionTable> {
  /** The words after `polity`: "token", "stack up", "audit goal". */
  name: string;
  /** One line for `polity --help` and the head of the command's usage. */
  summary: string;
  /** The positional arguments as the usage shows them, e.g. "<goalId>" or "[server...]". */
  args?: string;
  /** How many positional arguments are allowed; none unless told. */
  positionals?: { min?: number; max?: number };
  options: O;
  /** More text under the options (examples, environment variables). */
  notes?: string;
}

type ValueOf<S extends OptionSpec> = S extends BooleanOption
  ? boolean
  : S extends { multiple: true }
    ? string[]
    : S extends { default: string }
      ? string
      : string | undefined;

export type OptionValues<O extends OptionTable> = { [K in keyof O]: ValueOf<O[K]> };

export interface ParsedCommand<O extends OptionTable> {
  values: OptionValues<O>;
  positionals: string[];
}

/** Ends a command: 0 with its usage on stdout (`--help`), 2 with a usage error on stderr. */
export class CliExit extends Error {
  override name = "CliExit";
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** Keeps the table's literal types (a `default` makes the value a string, not string | undefined). */
export function defineCommand<const O extends OptionTable>(spec: CommandSpec<O>): CommandSpec<O> {
  for (const [name, option] of Object.entries(spec.options)) {
    if (name === "help" || option.short === "h")
      throw new Error(`command ${spec.name}: --help/-h is every command's own; rename option --${name}`);
    if (option.short !== undefined && option.short.length !== 1)
      throw new Error(`command ${spec.name}: option --${name} has short "${option.short}"; give one letter`);
  }
  return spec;
}

const HELP: BooleanOption = { type: "boolean", short: "h", help: "print this help and exit" };

function flag(name: string, option: OptionSpec): string {
  const long = option.type === "string" ? `--${name} <${option.value ?? "value"}>` : `--${name}`;
  return option.short ? `-${option.short}, ${long}` : `    ${long}`;
}

/** `polity <name> [options] <args>`, the summary, and the option table with defaults. */
export function commandUsage(spec: CommandSpec): string {
  const options: OptionTable = { ...spec.options, help: HELP };
  const rows = Object.entries(options).map(([name, option]) => {
    const extra =
      option.type === "string"
        ? [option.default !== undefined ? `default ${option.default}` : "", option.multiple ? "repeatable" : ""]
            .filter(Boolean)
            .join("; ")
        : "";
    return [flag(name, option), extra ? `${option.help} (${extra})` : option.help] as const;
  });
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  const lines = [
    `usage: polity ${spec.name} [options]${spec.args ? ` ${spec.args}` : ""}`,
    "",
    `  ${spec.summary}`,
    "",
    "options:",
    ...rows.map(([left, help]) => `  ${left.padEnd(width)}${help}`),
  ];
  if (spec.notes) lines.push("", spec.notes);
  return lines.join("\n");
}

function knownFlags(spec: CommandSpec): string {
  const options: OptionTable = { ...spec.options, help: HELP };
  return Object.entries(options)
    .map(([name, option]) => (option.short ? `--${name} (-${option.short})` : `--${name}`))
    .join(", ");
}

/**
 * Parses a command's arguments against its table. `--help`/`-h` anywhere throws CliExit(0) with the
 * usage; an unknown option, a missing value or a wrong number of arguments throws CliExit(2) with
 * an error that names the problem and lists the known options.
 */
export function parseCommandArgs<O extends OptionTable>(
  spec: CommandSpec<O>,
  argv: readonly string[],
): ParsedCommand<O> {
  const table: OptionTable = { ...spec.options, help: HELP };
  // Defaults are applied below (a repeatable option's default is one string, which parseArgs refuses).
  const options = Object.fromEntries(
    Object.entries(table).map(([name, o]) => [
      name,
      {
        type: o.type,
        ...(o.short ? { short: o.short } : {}),
        ...(o.type === "string" && o.multiple ? { multiple: true } : {}),
      },
    ]),
  );
  const refuse = (problem: string) =>
    new CliExit(
      2,
      `polity ${spec.name}: ${problem}\n  known options: ${knownFlags(spec)}\n  (polity ${spec.name} --help shows what each does)`,
    );
  // First pass, lenient: find --help and unknown names, which strict mode reports less helpfully.
  const { tokens } = parseArgs({
    args: [...argv],
    options,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  for (const token of tokens) {
    if (token.kind !== "option") continue;
    if (token.name === "help") throw new CliExit(0, commandUsage(spec));
    if (!(token.name in options)) throw refuse(`unknown option ${token.rawName}`);
  }
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals: true }) as typeof parsed;
  } catch (e) {
    // Node's messages ("Option '--role <value>' argument missing") say what is wrong; add the table.
    throw refuse((e as Error).message.split(". To specify")[0]!);
  }
  const min = spec.positionals?.min ?? 0;
  const max = spec.positionals?.max ?? 0;
  const given = parsed.positionals;
  if (given.length > max)
    throw refuse(
      max === 0
        ? `takes no arguments, got ${given.map((p) => JSON.stringify(p)).join(" ")}`
        : `takes at most ${max} argument(s) (${spec.args ?? ""}), got ${given.length}`,
    );
  if (given.length < min) throw refuse(`needs ${spec.args ?? `${min} argument(s)`}`);
  const values: Record<string, unknown> = {};
  for (const [name, option] of Object.entries(spec.options)) {
    const value = parsed.values[name];
    if (option.type === "boolean") values[name] = value === true;
    else if (option.multiple)
      values[name] = (value as string[] | undefined) ?? (option.default ? [option.default] : []);
    else values[name] = value ?? option.default;
  }
  return { values: values as OptionValues<O>, positionals: given };
}

/** Writes a CliExit's text where it belongs (help: stdout; errors: stderr) and returns its code. */
export function reportCliExit(e: CliExit): number {
  if (e.code === 0) process.stdout.write(`${e.message}\n`);
  else process.stderr.write(`${e.message}\n`);
  return e.code;
}

/** For a script started on its own (`node --import tsx processors/main.ts --tiers worker`): parse or exit. */
export function parseArgvOrExit<O extends OptionTable>(
  spec: CommandSpec<O>,
  argv: readonly string[] = process.argv.slice(2),
): ParsedCommand<O> {
  try {
    return parseCommandArgs(spec, argv);
  } catch (e) {
    if (e instanceof CliExit) process.exit(reportCliExit(e));
    throw e;
  }
}

/** A whole number from an option's text, or CliExit(2) naming the option and the bound. */
export function wholeNumber(name: string, text: string, least = 1): number {
  const n = Number(text);
  if (text.trim() === "" || !Number.isInteger(n) || n < least)
    throw new CliExit(2, `--${name} ${text}: give a whole number >= ${least}`);
  return n;
}
