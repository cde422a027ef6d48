/**
 * The common shape of every policy's rules: a JSON object whose keys each category checks. One
 * parser and one checker, so every category words its problems the same way.
 */

/** The rules as an object, or null with the problem (not JSON, or not an object). */
export function parseRulesObject(rules: string): { raw: Record<string, unknown> | null; problems: string[] } {
  let raw: unknown;
  try {
    raw = JSON.parse(rules);
  } catch (e) {
    return { raw: null, problems: [`rules are not JSON: ${(e as Error).message}`] };
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw))
    return { raw: null, problems: ["rules must be a JSON object"] };
  return { raw: raw as Record<string, unknown>, problems: [] };
}

/** A check of one key: when present and not `ok`, a problem saying what it must be. */
export function ruleChecker(r: Record<string, unknown>, problems: string[]) {
  return (key: string, ok: (v: unknown) => boolean, what: string) => {
    if (key in r && !ok(r[key])) problems.push(`rule "${key}" must be ${what}, got ${JSON.stringify(r[key])}`);
  };
}
