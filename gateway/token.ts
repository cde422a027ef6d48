/**
 * `npm run token -- --role operator [--tenant acme] [--sub alice] [--agent <agentId>] [--ttl 3600]`
 * (`--role platform-admin` mints the platform admin's token: its tenant is always `platform`)
 * prints a development bearer token signed with the gateway's secret (POLITY_JWT_SECRET, or the
 * generated one in .polity/jwt-secret). The token alone goes to stdout (for scripts:
 * `TOKEN=$(npm run --silent token)`); a link that signs in to the dashboard goes to stderr.
 */
import { loadConfig } from "../lib/config.js";
import { PLATFORM_TENANT } from "../processors/domain/tenancy.js";
import { Auth, ROLES, tenantProblem, type Role } from "./auth.js";

export async function runToken(args: string[]): Promise<number> {
  const arg = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const role = (arg("role") ?? "operator") as Role;
  if (!ROLES.includes(role)) {
    console.error(`--role must be one of ${ROLES.join(", ")}`);
    return 2;
  }
  const agentId = arg("agent") ?? null;
  if (role === "agent" && !agentId) {
    console.error("an agent token needs --agent <agentId>");
    return 2;
  }
  const ttl = Number(arg("ttl") ?? 3600);
  if (!Number.isInteger(ttl) || ttl < 1) {
    console.error("--ttl must be a whole number of seconds");
    return 2;
  }
  const tenantId = arg("tenant") ?? (role === "platform-admin" ? PLATFORM_TENANT : "default");
  const problem = tenantProblem(role, tenantId);
  if (problem) {
    console.error(`--tenant ${tenantId}: ${problem}`);
    return 2;
  }
  const config = loadConfig();
  const auth = Auth.fromEnv(config.native.home);
  const token = await auth.mint({ subject: arg("sub") ?? agentId ?? "dev-user", role, tenantId, agentId }, ttl);
  console.log(token);
  if (config.gatewayUi) console.error(`dashboard: http://127.0.0.1:${config.gatewayPort}/ui#token=${token}`);
  return 0;
}
