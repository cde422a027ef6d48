/**
 * One read model in a process of its own, for the fault suite to SIGKILL and start again:
 *   node --import tsx test/faults/bin/projection.ts analytics|state
 * Reads the URLs and POLITY_TOPIC_PREFIX from the environment, like processors/main.ts.
 */
import { loadConfig, requireUrls } from "../../../lib/config.js";
import { kafkaClient } from "../../../lib/kafka.js";
import { logLine, stopOnSignal } from "../../../lib/process.js";
import { readModelsFromEnv, startProjections } from "../../../projections/run.js";
import { Codec } from "../../../schemas/codec.js";

const config = loadConfig();
const urls = requireUrls();
const models = readModelsFromEnv(process.argv[2]);
const running = await startProjections({
  models,
  kafka: kafkaClient(urls.kafkaBrokers, `${config.clientId}-projection-${models.join("-")}`),
  codec: Codec.forUrl(urls.schemaRegistryUrl),
  urls,
  topicPrefix: config.topicPrefix,
  log: logLine,
});
console.log(`projections ready: ${models.join(", ")}`);
stopOnSignal(() => running.stop());
