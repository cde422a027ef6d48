/** Hash routes (#/goals/g-1), so the gateway serves one page and a reload keeps the place. */
import { useEffect, useState } from "react";

export type Route =
  | { page: "overview" }
  | { page: "domain"; domain: string }
  | { page: "goal"; goalId: string }
  | { page: "agents" }
  | { page: "policies" }
  | { page: "deadletters" }
  | { page: "submit" }
  | { page: "notfound"; path: string };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, "") || "/";
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const [first, second] = parts;
  if (!first) return { page: "overview" };
  if (first === "domains" && second) return { page: "domain", domain: second };
  if (first === "goals" && second) return { page: "goal", goalId: second };
  if (first === "agents") return { page: "agents" };
  if (first === "policies") return { page: "policies" };
  if (first === "deadletters") return { page: "deadletters" };
  if (first === "submit") return { page: "submit" };
  return { page: "notfound", path };
}

export const href = {
  overview: () => "#/",
  domain: (d: string) => `#/domains/${encodeURIComponent(d)}`,
  goal: (id: string) => `#/goals/${encodeURIComponent(id)}`,
  agents: () => "#/agents",
  policies: () => "#/policies",
  deadletters: () => "#/deadletters",
  submit: () => "#/submit",
};

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseRoute(location.hash));
    window.addEventListener("hashchange", on);
    return () => window.removeEventListener("hashchange", on);
  }, []);
  return route;
}

export function navigate(to: string): void {
  location.hash = to.replace(/^#/, "");
}
