/** The dashboard's entry point (bundled by infra/ui-build.ts into dist/ui, served at /ui). */
import { createRoot } from "react-dom/client";
import { prefetch } from "./api";
import { App } from "./app";
import { PORTFOLIO, PORTFOLIO_PAGE } from "./pages/overview";
import { peekToken } from "./session";
import "./styles.css";

// The overview's portfolio is asked for at once, beside the token check, not after it.
const token = peekToken();
if (token && /^#(\/)?$|^#token=|^$/.test(location.hash)) prefetch(token, PORTFOLIO, { first: PORTFOLIO_PAGE });

createRoot(document.getElementById("root")!).render(<App />);
