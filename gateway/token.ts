/**
 * `npm run token -- --role operator [--tenant acme] [--sub alice] [--agent <agentId>] [--ttl 3600]`
 * (`polity token --help` lists the options)
 * (`--role platform-admin` mints the platform admin's token: its tenant is always `platform`)
 * prints a development bearer token signed with the gateway's secret (POLITY_JWT_SECRET, or the
 * generated one in .polity/jwt-secret). The token alone goes to stdout (for scripts:
 * `TOKEN=$(npm run --silent token)`); a link that signs in to the dashboard goes to stderr.
 */
import { CliExit, defineCommand, parseCommandArgs, wholeNumber } from "../lib/cli-args.js";
import { loadConfig } from "../lib/config.js";
import { PLATFORM_TENANT } from "../processors/domain/kernel/tenancy.js";
import { Auth, ROLES, tenantProblem, type Role } from "./auth.js";

export const TOKEN_COMMAND = defineCommand({
  name: "token",
  summary:
    "print a development bearer token for the gateway on stdout (and a dashboard link that signs in with it on stderr)",
  options: {
    role: { type: "string", short: "r", value: "role", default: "operator", help: `one of ${ROLES.join(", ")}` },
    tenant: {
      type: "string",
      short: "t",
      value: "tenant",
      help: "the tenant the token acts for (default: default; platform for platform-admin, its only tenant)",
    },
    sub: { type: "string", value: "subject", help: "the token's subject (default: the agent id, else dev-user)" },
    agent: { type: "string", value: "agentId", help: "the agent an agent token speaks for (needed with --role agent)" },
    ttl: { type: "string", value: "seconds", default: "3600", help: "lifetime in seconds" },
  },
  notes:
    "The secret is POLITY_JWT_SECRET, or the development one generated into .polity/jwt-secret.\nexample: TOKEN=$(npm run --silent token -- --role admin --tenant acme)",
});

export async function runToken(args: string[]): Promise<number> {
  const { values } = parseCommandArgs(TOKEN_COMMAND, args);
  if (!ROLES.includes(values.role as Role))
    throw new CliExit(2, `--role ${values.role} is not a role; give one of ${ROLES.join(", ")}`);
  const role = values.role as Role;
  const agentId = values.agent ?? null;
  if (role === "agent" && !agentId) throw new CliExit(2, "an agent token needs --agent <agentId>");
  const ttl = wholeNumber("ttl", values.ttl);
  const tenantId = values.tenant ?? (role === "platform-admin" ? PLATFORM_TENANT : "default");
  const problem = tenantProblem(role, tenantId);
  if (problem) throw new CliExit(2, `--tenant ${tenantId}: ${problem}`);
  const config = loadConfig();
  const auth = Auth.fromEnv(config.native.home, config.jwtSecret);
  const token = await auth.mint({ subject: values.sub ?? agentId ?? "dev-user", role, tenantId, agentId }, ttl);
  console.log(token);
  if (config.gatewayUi) console.error(`dashboard: http://127.0.0.1:${config.gatewayPort}/ui#token=${token}`);
  return 0;
}
