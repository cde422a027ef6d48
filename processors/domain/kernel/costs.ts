/**
 * Costs are decimal strings with four places ("1.2500"), as the Avro schemas carry them; sums are
 * done in integer units so no float rounding creeps into a budget. Shared by the deciders, the
 * projections and the gateway.
 */
const COST_SCALE = 4;

export function toUnits(cost: string): bigint {
  const [whole, frac = ""] = cost.split(".");
  const negative = whole!.startsWith("-");
  const units =
    BigInt(whole!.replace("-", "") || "0") * 10n ** BigInt(COST_SCALE) +
    BigInt(frac.padEnd(COST_SCALE, "0").slice(0, COST_SCALE) || "0");
  return negative ? -units : units;
}

export function formatCost(units: bigint): string {
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString().padStart(COST_SCALE + 1, "0");
  return `${negative ? "-" : ""}${digits.slice(0, -COST_SCALE)}.${digits.slice(-COST_SCALE)}`;
}

export function addCost(a: string, b: string): string {
  return formatCost(toUnits(a) + toUnits(b));
}

export function sumCosts(costs: string[]): string {
  return costs.reduce(addCost, "0.0000");
}
