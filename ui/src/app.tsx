/** The page shell: sign-in, the header (navigation, who we are, the live connection), the routes. */
import { useEffect, useMemo, useState, type ReactNode } from "react";
import { ApiError, connectLive } from "./api";
import { ErrorBox } from "./components";
import { AgentsPage } from "./pages/agents";
import { DeadLettersPage } from "./pages/deadletters";
import { DomainPage } from "./pages/domain";
import { GoalPage } from "./pages/goal";
import { OverviewPage } from "./pages/overview";
import { PoliciesPage } from "./pages/policies";
import { SubmitPage } from "./pages/submit";
import { href, useRoute, type Route } from "./router";
import {
  SessionContext,
  storedToken,
  storeToken,
  tokenFromLink,
  useLiveStatus,
  useSession,
  whoAmI,
  type Me,
  type Session,
} from "./session";

export function App() {
  const [token, setToken] = useState<string | null>(() => tokenFromLink() ?? storedToken());
  const [me, setMe] = useState<Me | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [checking, setChecking] = useState(!!token);

  // A link with a token opened in a tab already on the dashboard changes only the hash.
  useEffect(() => {
    const onHash = () => {
      const t = tokenFromLink();
      if (t) {
        setError(null);
        setMe(null);
        setToken(t);
      }
    };
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);

  useEffect(() => {
    if (!token) return;
    let cancelled = false;
    setChecking(true);
    whoAmI(token).then(
      (m) => {
        if (cancelled) return;
        storeToken(token);
        setMe(m);
        setError(null);
        setChecking(false);
      },
      (e: ApiError) => {
        if (cancelled) return;
        setError(e);
        setMe(null);
        setChecking(false);
        if (e.code === "UNAUTHENTICATED") storeToken(null);
      },
    );
    return () => {
      cancelled = true;
    };
  }, [token]);

  const live = useMemo(() => (token && me ? connectLive(token) : null), [token, me]);
  useEffect(() => () => live?.dispose(), [live]);

  const session: Session | null = useMemo(
    () =>
      token && me && live
        ? {
            token,
            me,
            live,
            signOut: (why?: ApiError) => {
              storeToken(null);
              setMe(null);
              setToken(null);
              setError(why ?? null);
            },
          }
        : null,
    [token, me, live],
  );

  if (!session)
    return (
      <SignIn
        checking={checking}
        error={error}
        onToken={(t) => {
          setError(null);
          setToken(t);
        }}
      />
    );
  return (
    <SessionContext.Provider value={session}>
      <Shell />
    </SessionContext.Provider>
  );
}

function SignIn(props: { checking: boolean; error: ApiError | null; onToken: (t: string) => void }) {
  const [text, setText] = useState("");
  const why = props.error;
  return (
    <div className="signin">
      <h1>Polity</h1>
      <p>
        Paste a bearer token to sign in. The dashboard sees what the token sees: its tenant, and its role decides the
        commands.
      </p>
      {why && (
        <div className="error" role="alert" data-testid="signin-error">
          <strong>{why.code === "UNAUTHENTICATED" ? "This token is not accepted" : "Could not sign in"}: </strong>
          {why.message}
        </div>
      )}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          const t = text.trim().replace(/^Bearer\s+/i, "");
          if (t) props.onToken(t);
        }}
      >
        <textarea
          aria-label="token"
          placeholder="eyJhbGciOiJIUzI1NiJ9…"
          rows={4}
          value={text}
          onChange={(e) => setText(e.target.value)}
        />
        <button className="primary" type="submit" disabled={props.checking || !text.trim()}>
          {props.checking ? "Checking…" : "Sign in"}
        </button>
      </form>
      <div className="howto">
        <h3>How to get a token</h3>
        <p>On the machine running Polity:</p>
        <pre>npm run token -- --role operator --tenant default</pre>
        <p>
          It prints the token, and a ready link to this dashboard (<code>/ui#token=…</code>) on stderr. Roles: viewer
          (read), operator (read, submit, stop, approve phases), admin (also policies); tokens last an hour unless{" "}
          <code>--ttl</code> says otherwise.
        </p>
      </div>
    </div>
  );
}

function LiveIndicator() {
  const s = useLiveStatus();
  const [flash, setFlash] = useState(false);
  useEffect(() => {
    if (!s.lastReconnectAt) return;
    setFlash(true);
    const t = setTimeout(() => setFlash(false), 8_000);
    return () => clearTimeout(t);
  }, [s.lastReconnectAt]);
  const label =
    s.state === "live"
      ? flash
        ? `reconnected ${s.lastReconnectAt?.toLocaleTimeString()}`
        : "live"
      : s.state === "reconnecting"
        ? "connection lost, reconnecting…"
        : "connecting…";
  return (
    <span
      className={`live live-${s.state} ${flash ? "live-flash" : ""}`}
      data-testid="live-status"
      data-state={s.state}
      data-reconnects={s.reconnects}
      title={`${s.reconnects} reconnection(s)${s.lastError ? `; last: ${s.lastError}` : ""}`}
    >
      <span className="dot" /> {label}
    </span>
  );
}

function NavLink(props: { to: string; active: boolean; children: ReactNode }) {
  return (
    <a href={props.to} className={props.active ? "active" : undefined}>
      {props.children}
    </a>
  );
}

function Shell() {
  const route = useRoute();
  const session = useSession();
  const { me } = session;
  const at = (page: Route["page"]) => route.page === page;
  return (
    <div className="shell">
      <header className="top">
        <a className="brand" href={href.overview()}>
          Polity
        </a>
        <nav>
          <NavLink to={href.overview()} active={at("overview")}>
            Overview
          </NavLink>
          <NavLink to={href.agents()} active={at("agents")}>
            Agents
          </NavLink>
          <NavLink to={href.policies()} active={at("policies")}>
            Policies
          </NavLink>
          <NavLink to={href.deadletters()} active={at("deadletters")}>
            Dead letters
          </NavLink>
          <NavLink to={href.submit()} active={at("submit")}>
            Submit
          </NavLink>
          <span className="sep" />
          <a href="/graphql" target="_blank" rel="noreferrer">
            GraphiQL
          </a>
          <a href="/api-docs" target="_blank" rel="noreferrer">
            API docs
          </a>
        </nav>
        <div className="who">
          <LiveIndicator />
          <span className="tenant" data-testid="tenant" title={`${me.subject}, role ${me.role}`}>
            {me.tenantId} · {me.role}
          </span>
          <button className="link" onClick={() => session.signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <main>
        <Page route={route} />
      </main>
    </div>
  );
}

function Page({ route }: { route: Route }) {
  switch (route.page) {
    case "overview":
      return <OverviewPage />;
    case "domain":
      return <DomainPage domain={route.domain} />;
    case "goal":
      return <GoalPage goalId={route.goalId} key={route.goalId} />;
    case "agents":
      return <AgentsPage />;
    case "policies":
      return <PoliciesPage />;
    case "deadletters":
      return <DeadLettersPage />;
    case "submit":
      return <SubmitPage />;
    default:
      return <ErrorBox error={`no page at ${route.path}`} />;
  }
}
