/**
 * The gateway in a process of its own, on a free port, for the fault suite to flood:
 *   node --import tsx test/faults/bin/gateway.ts <requests per second>
 * Prints "gateway ready <url>". Tokens are signed with POLITY_JWT_SECRET.
 */
import { loadConfig, requireUrls } from "../../../lib/config.js";
import { logLine, stopOnSignal } from "../../../lib/process.js";
import { startGateway } from "../../../gateway/main.js";

const config = loadConfig();
const perSecond = Number(process.argv[2] ?? 100);
const running = await startGateway({
  urls: requireUrls(),
  port: 0,
  home: config.native.home,
  topicPrefix: config.topicPrefix,
  clientId: config.clientId,
  log: logLine,
  overrides: { rateLimitPerSecond: perSecond },
});
console.log(`gateway ready ${running.url}`);
stopOnSignal(() => running.stop());
