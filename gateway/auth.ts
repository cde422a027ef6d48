/**
 * Bearer JWTs (HS256). Claims: `sub` (user or agent id), `role` (platform-admin, admin, operator,
 * viewer, agent), `tenant`, and for an agent token `agent` (its agent id). Permissions are decided
 * here and nowhere else: resolvers and REST handlers ask `require(principal, action)`, and what a
 * principal may change of something owned by a tenant asks `mayChange(principal, owner)`.
 *
 * Tenancy: a tenant's admin governs its own tenant (its policies, its agents). The platform admin
 * (role `platform-admin`) governs what is platform-wide (policies for every tenant, the configured
 * agents). Its tokens always carry the reserved tenant `platform` (processors/domain/kernel/tenancy.ts), so
 * the envelope of every command it writes says "platform" and makes what it defines platform-wide;
 * no other role's token may carry a reserved tenant, so no tenant's admin can write as the platform.
 *
 * The signing secret comes from POLITY_JWT_SECRET; without it (development) one is generated once
 * and kept in .polity/jwt-secret (git-ignored, mode 600), so `npm run token` and the gateway agree.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { jwtVerify, SignJWT } from "jose";
import { loadConfig } from "../lib/config.js";
import { isPlatformTenant, PLATFORM_TENANT } from "../processors/domain/kernel/tenancy.js";
import { GatewayError } from "./errors.js";

export const ROLES = ["platform-admin", "admin", "operator", "viewer", "agent"] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  subject: string;
  role: Role;
  tenantId: string;
  /** Set on agent tokens: the agent the token speaks for. */
  agentId: string | null;
}

/**
 * What a role may do. Viewers read; operators also submit and steer goals; admins also govern
 * (policies, scaling, agents) of their tenant; the platform admin governs the platform-wide ones
 * too; agents read their subtree and report on their own tasks.
 */
export type Action = "read" | "submit" | "steer" | "govern" | "report";
const GRANTS: Record<Role, ReadonlySet<Action>> = {
  "platform-admin": new Set(["read", "submit", "steer", "govern", "report"]),
  admin: new Set(["read", "submit", "steer", "govern", "report"]),
  operator: new Set(["read", "submit", "steer"]),
  viewer: new Set(["read"]),
  agent: new Set(["read", "report"]),
};

export function allowed(principal: Principal, action: Action): boolean {
  return GRANTS[principal.role].has(action);
}

export function require(principal: Principal | null, action: Action): Principal {
  if (!principal) {
    throw new GatewayError(
      "UNAUTHENTICATED",
      "no valid bearer token: send Authorization: Bearer <jwt> (mint one with `npm run token -- --role operator`)",
    );
  }
  if (!allowed(principal, action)) {
    throw new GatewayError(
      "FORBIDDEN",
      `role ${principal.role} may not ${action}; ask for a token with a role that may`,
    );
  }
  return principal;
}

/** Whether the principal is the platform admin (role platform-admin, tenant `platform`). */
export function isPlatformAdmin(principal: Principal): boolean {
  return principal.role === "platform-admin" && principal.tenantId === PLATFORM_TENANT;
}

/**
 * The owner of what the principal defines or registers: its tenant, or null (platform-wide) for
 * the platform admin. The envelope says the same (tenancy.ts `ownerOf`).
 */
export function ownerFor(principal: Principal): string | null {
  return isPlatformAdmin(principal) ? null : principal.tenantId;
}

/** Whether the principal sees something owned by `owner` (null: platform-wide, seen by everyone). */
export function maySee(principal: Principal, owner: string | null | undefined): boolean {
  return owner === null || owner === undefined || owner === principal.tenantId || isPlatformAdmin(principal);
}

/**
 * Whether the principal may change (amend, scale, register under, command) something owned by
 * `owner`: a tenant's admin only its tenant's, the platform admin only the platform-wide ones (a
 * tenant's policy is that tenant's business, even for the platform).
 */
export function mayChange(principal: Principal, owner: string | null | undefined): boolean {
  return (owner ?? null) === ownerFor(principal);
}

/** The tenant claim a role's token must carry, or why it may not carry `tenantId`. */
export function tenantProblem(role: Role, tenantId: string): string | null {
  if (role === "platform-admin")
    return tenantId === PLATFORM_TENANT ? null : `a platform-admin token carries tenant "${PLATFORM_TENANT}"`;
  return isPlatformTenant(tenantId) ? `tenant "${tenantId}" is reserved for the platform` : null;
}

export class Auth {
  private readonly key: Uint8Array;

  constructor(secret: string) {
    if (secret.length < 32) throw new Error("POLITY_JWT_SECRET must be at least 32 characters");
    this.key = new TextEncoder().encode(secret);
  }

  /**
   * The configured secret (loadConfig().jwtSecret, from POLITY_JWT_SECRET) when there is one, else
   * the development secret under `home`, created once.
   */
  static fromEnv(home: string, secret: string | null = loadConfig().jwtSecret): Auth {
    if (secret) return new Auth(secret);
    const file = path.join(home, "jwt-secret");
    if (!fs.existsSync(file)) {
      fs.mkdirSync(home, { recursive: true });
      fs.writeFileSync(file, randomBytes(32).toString("hex"), { mode: 0o600, flag: "wx" });
    }
    return new Auth(fs.readFileSync(file, "utf8").trim());
  }

  async mint(
    claims: { subject: string; role: Role; tenantId: string; agentId?: string | null },
    ttlSeconds = 3600,
  ): Promise<string> {
    const problem = tenantProblem(claims.role, claims.tenantId);
    if (problem) throw new Error(problem);
    return new SignJWT({
      role: claims.role,
      tenant: claims.tenantId,
      ...(claims.agentId ? { agent: claims.agentId } : {}),
    })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject(claims.subject)
      .setIssuedAt()
      .setExpirationTime(`${ttlSeconds}s`)
      .sign(this.key);
  }

  /** The principal of an Authorization header; null when there is none; an error when it is bad. */
  async principal(header: string | undefined | null): Promise<Principal | null> {
    if (!header) return null;
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) throw new GatewayError("UNAUTHENTICATED", "Authorization must be `Bearer <jwt>`");
    try {
      const { payload } = await jwtVerify(m[1]!, this.key, { algorithms: ["HS256"] });
      const role = payload.role as Role;
      if (!ROLES.includes(role)) throw new Error(`unknown role ${String(payload.role)}`);
      if (typeof payload.tenant !== "string" || !payload.tenant) throw new Error("no tenant claim");
      if (!payload.sub) throw new Error("no subject");
      const problem = tenantProblem(role, payload.tenant);
      if (problem) throw new Error(problem);
      if (role === "agent" && typeof payload.agent !== "string") throw new Error("an agent token needs an agent claim");
      return {
        subject: payload.sub,
        role,
        tenantId: payload.tenant,
        agentId: typeof payload.agent === "string" ? payload.agent : null,
      };
    } catch (e) {
      throw new GatewayError("UNAUTHENTICATED", `bearer token rejected: ${(e as Error).message}`);
    }
  }
}
