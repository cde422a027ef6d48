/**
 * Who owns what: every message's envelope names a tenant, and what a tenant's admin defines (a
 * policy) or registers and scales (agents) belongs to that tenant. Two tenant ids are reserved for
 * the platform itself, and what is written under them is platform-wide:
 *
 * - `platform`: the platform admin's commands (gateway role `platform-admin`, whose tokens always
 *   carry this tenant, so no tenant's admin can write as the platform);
 * - `system`: platform components writing on their own (configured agents, the autoscaler, timers).
 *
 * Ownership is derived from the envelope (the only tenant a message carries), so the policy engine,
 * the projections and the gateway agree on it without a field of their own: `ownerOf` is the rule.
 */

export const PLATFORM_TENANT = "platform";
export const SYSTEM_TENANT = "system";

const PLATFORM_TENANTS: ReadonlySet<string> = new Set([PLATFORM_TENANT, SYSTEM_TENANT]);

/** Whether a tenant id is reserved for the platform (no tenant's token may carry it). */
export function isPlatformTenant(tenantId: string): boolean {
  return PLATFORM_TENANTS.has(tenantId);
}

/** The owner of what a message with this envelope tenant defines: the tenant, or null (platform-wide). */
export function ownerOf(envelopeTenantId: string): string | null {
  return isPlatformTenant(envelopeTenantId) ? null : envelopeTenantId;
}

/** Whether something owned by `owner` (null: platform-wide) concerns `tenantId`'s goals and reads. */
export function concerns(owner: string | null | undefined, tenantId: string): boolean {
  return owner === null || owner === undefined || owner === tenantId;
}
