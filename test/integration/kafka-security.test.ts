/**
 * Kafka security (KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_*), the registry's credentials
 * and redaction.
 *
 * The settings are checked without any server. Then a Kafka 3.9.1 broker of its own (the stack's
 * jars, infra/native/kafka.ts) runs in a temporary directory with one SASL_SSL listener on a free
 * loopback port: a self-signed certificate made by keytool, SCRAM-SHA-256 and SCRAM-SHA-512
 * credentials added when its storage is formatted. Through kafkaClient, configured from the
 * environment as every process is, a transactional producer and a read-committed consumer make a
 * processor's round trip; a wrong password fails naming the mechanism and the user but never the
 * password (neither in the error nor in the client's log); a CA that did not sign the broker's
 * certificate fails saying so. The broker is stopped in `after`.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { inspect } from "node:util";
import { after, before, describe, test } from "node:test";
import {
  ConfigError,
  kafkaSecurity,
  loadConfig,
  repoRoot,
  schemaRegistryAuth,
  type KafkaSecurity,
} from "../../lib/config.js";
import { KafkaSecurityError, kafkaClient } from "../../lib/kafka.js";
import { redact, redactUrl, Secret } from "../../lib/redact.js";
import { probeKafka, probeRegistry } from "../../infra/probes.js";
import { kafkaClasspath, newClusterId } from "../../infra/native/kafka.js";
import { run } from "../../infra/native/process.js";
import { ensurePythonAgentEnv, PYTHON_AGENT_DIR } from "../../infra/python.js";
import { RegistryClient, RegistryError } from "../../schemas/registry-client.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "polity-kafka-security-"));
const USER = "polity";
const PASSWORD = `pw-${randomBytes(12).toString("hex")}`;
const WRONG = `wrong-${randomBytes(12).toString("hex")}`;

function file(name: string, content: string): string {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, content);
  return p;
}

const CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";

describe("Kafka security settings", () => {
  const caFile = file("unit-ca.pem", CERT);
  const keyFile = file("unit-key.pem", KEY);
  const passwordFile = file("unit-password", `${PASSWORD}\n`);
  const sasl = { KAFKA_SECURITY_PROTOCOL: "SASL_SSL", KAFKA_SASL_USERNAME: USER, KAFKA_SASL_PASSWORD: PASSWORD };

  test("PLAINTEXT by default; SASL_SSL with SCRAM-SHA-512 by default, mechanism and protocol case-insensitive", () => {
    assert.deepEqual(kafkaSecurity({}), { protocol: "PLAINTEXT", sasl: null, tls: null });
    const s = kafkaSecurity({ ...sasl, KAFKA_SSL_CA_FILE: caFile });
    assert.equal(s.protocol, "SASL_SSL");
    assert.equal(s.sasl?.mechanism, "SCRAM-SHA-512");
    assert.equal(s.sasl?.password.reveal(), PASSWORD);
    assert.equal(s.tls?.ca, CERT);
    assert.equal(s.tls?.rejectUnauthorized, true);
    const t = kafkaSecurity({
      ...sasl,
      KAFKA_SECURITY_PROTOCOL: "sasl_plaintext",
      KAFKA_SASL_MECHANISM: "scram-sha-256",
    });
    assert.equal(t.sasl?.mechanism, "SCRAM-SHA-256");
    assert.equal(t.tls, null);
    assert.equal(kafkaSecurity({ ...sasl, KAFKA_SASL_MECHANISM: "PLAIN" }).sasl?.mechanism, "PLAIN");
    assert.equal(
      kafkaSecurity({ KAFKA_SECURITY_PROTOCOL: "SSL", KAFKA_SSL_REJECT_UNAUTHORIZED: "off" }).tls?.rejectUnauthorized,
      false,
    );
  });

  test("the password from a file, its trailing newline dropped", () => {
    const s = kafkaSecurity({ ...sasl, KAFKA_SASL_PASSWORD: undefined, KAFKA_SASL_PASSWORD_FILE: passwordFile });
    assert.equal(s.sasl?.password.reveal(), PASSWORD);
  });

  const rejects: [string, NodeJS.ProcessEnv, RegExp][] = [
    [
      "unknown protocol",
      { KAFKA_SECURITY_PROTOCOL: "TLS" },
      /KAFKA_SECURITY_PROTOCOL=TLS is not one of PLAINTEXT, SSL/,
    ],
    [
      "unknown mechanism",
      { ...sasl, KAFKA_SASL_MECHANISM: "GSSAPI" },
      /KAFKA_SASL_MECHANISM=GSSAPI is not a SASL mechanism .* SCRAM-SHA-256, SCRAM-SHA-512, PLAIN/,
    ],
    [
      "a user without a password",
      { ...sasl, KAFKA_SASL_PASSWORD: undefined },
      /KAFKA_SASL_USERNAME=polity has no password: set KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE/,
    ],
    ["SASL without a user", { ...sasl, KAFKA_SASL_USERNAME: undefined }, /needs KAFKA_SASL_USERNAME/],
    [
      "a password and a password file",
      { ...sasl, KAFKA_SASL_PASSWORD_FILE: passwordFile },
      /KAFKA_SASL_PASSWORD and KAFKA_SASL_PASSWORD_FILE are both set/,
    ],
    [
      "a password file that does not exist",
      { ...sasl, KAFKA_SASL_PASSWORD: undefined, KAFKA_SASL_PASSWORD_FILE: "/nonexistent/pw" },
      /KAFKA_SASL_PASSWORD_FILE=\/nonexistent\/pw cannot be read \(ENOENT\)/,
    ],
    [
      "a CA file that does not exist",
      { ...sasl, KAFKA_SSL_CA_FILE: "/nonexistent/ca.pem" },
      /KAFKA_SSL_CA_FILE=\/nonexistent\/ca.pem: no such file/,
    ],
    ["a CA file that is no PEM", { ...sasl, KAFKA_SSL_CA_FILE: passwordFile }, /holds no PEM certificate/],
    [
      "a client certificate without its key",
      { ...sasl, KAFKA_SSL_CERT_FILE: caFile },
      /needs both KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE; only the certificate/,
    ],
    [
      "SASL settings on PLAINTEXT (a password that would never be sent)",
      { KAFKA_SASL_USERNAME: USER, KAFKA_SASL_PASSWORD: PASSWORD },
      /KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD are set but KAFKA_SECURITY_PROTOCOL=PLAINTEXT does not use them/,
    ],
    [
      "a CA on SASL_PLAINTEXT",
      { ...sasl, KAFKA_SECURITY_PROTOCOL: "SASL_PLAINTEXT", KAFKA_SSL_CA_FILE: caFile },
      /KAFKA_SSL_CA_FILE is set but KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT does not use it/,
    ],
    [
      "verification neither on nor off",
      { KAFKA_SECURITY_PROTOCOL: "SSL", KAFKA_SSL_REJECT_UNAUTHORIZED: "maybe" },
      /neither on nor off/,
    ],
  ];
  for (const [what, env, message] of rejects) {
    test(`refuses ${what}`, () => {
      assert.throws(
        () => kafkaSecurity(env),
        (e: Error) => e instanceof ConfigError && message.test(e.message) && !e.message.includes(PASSWORD),
      );
    });
  }

  test("mutual TLS: certificate and key", () => {
    const s = kafkaSecurity({
      KAFKA_SECURITY_PROTOCOL: "SSL",
      KAFKA_SSL_CERT_FILE: caFile,
      KAFKA_SSL_KEY_FILE: keyFile,
    });
    assert.equal(s.tls?.cert, CERT);
    assert.equal(s.tls?.key?.reveal(), KEY);
  });

  test("registry credentials: both or neither, once", () => {
    assert.equal(schemaRegistryAuth({}), null);
    const auth = schemaRegistryAuth({ SCHEMA_REGISTRY_USERNAME: "reg", SCHEMA_REGISTRY_PASSWORD_FILE: passwordFile });
    assert.equal(auth?.password.reveal(), PASSWORD);
    assert.throws(
      () => schemaRegistryAuth({ SCHEMA_REGISTRY_USERNAME: "reg" }),
      /SCHEMA_REGISTRY_USERNAME=reg has no password/,
    );
    assert.throws(() => schemaRegistryAuth({ SCHEMA_REGISTRY_PASSWORD: PASSWORD }), /without SCHEMA_REGISTRY_USERNAME/);
    assert.throws(
      () =>
        schemaRegistryAuth({
          SCHEMA_REGISTRY_URL: `http://reg:${PASSWORD}@127.0.0.1:1/`,
          SCHEMA_REGISTRY_USERNAME: "reg",
          SCHEMA_REGISTRY_PASSWORD: PASSWORD,
        }),
      /carries credentials and SCHEMA_REGISTRY_USERNAME is set too/,
    );
  });

  test("a printed configuration shows no password", () => {
    const config = loadConfig({ ...sasl, SCHEMA_REGISTRY_USERNAME: "reg", SCHEMA_REGISTRY_PASSWORD: PASSWORD });
    for (const printed of [
      JSON.stringify(config),
      inspect(config, { depth: 10 }),
      `${config.kafkaSecurity.sasl?.password}`,
    ])
      assert.ok(!printed.includes(PASSWORD), printed);
    assert.match(JSON.stringify(config.kafkaSecurity), /"password":"\*\*\*"/);
  });

  test("redaction of URLs and texts", () => {
    assert.equal(
      redactUrl("postgres://polity:s3cr%2Ft@127.0.0.1:15432/polity"),
      "postgres://polity:***@127.0.0.1:15432/polity",
    );
    assert.equal(
      redactUrl("mongodb://u:p@ss@h1:1,h2:2/db?authSource=admin"),
      "mongodb://u:***@h1:1,h2:2/db?authSource=admin",
    );
    assert.equal(redactUrl("postgres://polity@127.0.0.1/polity"), "postgres://polity@127.0.0.1/polity");
    assert.equal(redactUrl("postgres://h/db?user=a&password=b"), "postgres://h/db?user=a&password=***");
    assert.equal(
      redact(`MONGO_URL=mongodb://a:b@h/db: refused; said ${PASSWORD}`, [new Secret(PASSWORD)]),
      "MONGO_URL=mongodb://a:***@h/db: refused; said ***",
    );
  });
});

describe("schema registry credentials", () => {
  let server: http.Server;
  let base: string;
  const seen: (string | undefined)[] = [];
  before(async () => {
    server = http.createServer((req, res) => {
      seen.push(req.headers.authorization);
      const ok = req.headers.authorization === `Basic ${Buffer.from(`reg:${PASSWORD}`).toString("base64")}`;
      res.writeHead(ok ? 200 : 401, { "content-type": "application/json" });
      res.end(ok ? '["a-subject"]' : '{"error_code":401,"message":"Unauthorized"}');
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `127.0.0.1:${(server.address() as net.AddressInfo).port}/apis/ccompat/v7`;
  });
  after(() => server.close());

  test("from the URL or from SCHEMA_REGISTRY_USERNAME/PASSWORD; a refusal names no password", async () => {
    assert.deepEqual(await new RegistryClient(`http://reg:${PASSWORD}@${base}`, null).subjects(), ["a-subject"]);
    const auth = schemaRegistryAuth({ SCHEMA_REGISTRY_USERNAME: "reg", SCHEMA_REGISTRY_PASSWORD: PASSWORD });
    assert.deepEqual(await new RegistryClient(`http://${base}`, auth).subjects(), ["a-subject"]);
    assert.equal(await probeRegistry(`http://reg:${PASSWORD}@${base}`), "1 subject(s)");
    await assert.rejects(
      new RegistryClient(`http://reg:${WRONG}@${base}`, null).subjects(),
      (e: Error) => e instanceof RegistryError && e.status === 401 && !e.message.includes(WRONG),
    );
    await assert.rejects(
      probeRegistry(`http://reg:${WRONG}@${base}`),
      (e: Error) => e.message.includes("reg:***@") && !e.message.includes(WRONG),
    );
  });
});

/** A port nothing listens on now. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A self-signed certificate for 127.0.0.1 in a PKCS12 keystore, and its PEM. */
async function selfSigned(name: string, storePassword: string): Promise<{ keystore: string; pem: string }> {
  const keystore = path.join(tmp, `${name}.p12`);
  const pem = path.join(tmp, `${name}.pem`);
  const store = ["-keystore", keystore, "-storetype", "PKCS12", "-storepass", storePassword];
  const what = `making the ${name} certificate with keytool`;
  await run(
    "keytool",
    [
      "-genkeypair",
      ...store,
      "-alias",
      name,
      "-keyalg",
      "EC",
      "-groupname",
      "secp256r1",
      "-dname",
      `CN=${name}`,
      "-ext",
      "SAN=ip:127.0.0.1,dns:localhost",
      "-validity",
      "2",
    ],
    { what },
  );
  await run("keytool", ["-exportcert", "-rfc", ...store, "-alias", name, "-file", pem], { what });
  return { keystore, pem };
}

describe("a SASL_SSL broker", { timeout: 300_000 }, () => {
  let broker: ChildProcess | undefined;
  let brokers: string[];
  let caPem: string;
  let otherCaPem: string;
  const logFile = path.join(tmp, "broker.log");

  /** The environment a process of a secured deployment has. */
  const secured = (): NodeJS.ProcessEnv => ({
    KAFKA_SECURITY_PROTOCOL: "SASL_SSL",
    KAFKA_SASL_MECHANISM: "SCRAM-SHA-512",
    KAFKA_SASL_USERNAME: USER,
    KAFKA_SASL_PASSWORD_FILE: file("password", `${PASSWORD}\n`),
    KAFKA_SSL_CA_FILE: caPem,
  });

  before(async () => {
    const storePassword = randomBytes(12).toString("hex");
    const [classpath, server, other] = await Promise.all([
      kafkaClasspath(loadConfig().native, repoRoot),
      selfSigned("broker", storePassword),
      selfSigned("stranger", storePassword),
    ]);
    caPem = server.pem;
    otherCaPem = other.pem;
    const [port, controllerPort] = [await freePort(), await freePort()];
    brokers = [`127.0.0.1:${port}`];
    const jaas = (mechanism: string) =>
      `listener.name.sasl_ssl.${mechanism}.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="${USER}" password="${PASSWORD}";`;
    const props = file(
      "server.properties",
      [
        "process.roles=broker,controller",
        "node.id=1",
        `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
        `listeners=SASL_SSL://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
        `advertised.listeners=SASL_SSL://127.0.0.1:${port}`,
        "listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
        "controller.listener.names=CONTROLLER",
        // The transaction coordinator writes its markers over the broker listener: SASL_SSL too.
        "inter.broker.listener.name=SASL_SSL",
        "sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512",
        "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
        jaas("scram-sha-256"),
        jaas("scram-sha-512"),
        `ssl.keystore.location=${server.keystore}`,
        "ssl.keystore.type=PKCS12",
        `ssl.keystore.password=${storePassword}`,
        `ssl.key.password=${storePassword}`,
        `ssl.truststore.location=${server.pem}`,
        "ssl.truststore.type=PEM",
        `log.dirs=${path.join(tmp, "data")}`,
        "num.partitions=1",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "transaction.state.log.num.partitions=1",
        "group.initial.rebalance.delay.ms=0",
        "",
      ].join("\n"),
    );
    const log4j = file(
      "log4j.properties",
      [
        "log4j.rootLogger=WARN, stdout",
        "log4j.appender.stdout=org.apache.log4j.ConsoleAppender",
        "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout",
        "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n",
        "log4j.logger.kafka.server.KafkaServer=INFO",
        "",
      ].join("\n"),
    );
    const java = ["-cp", classpath, `-Dlog4j.configuration=file:${log4j}`];
    await run(
      "java",
      [
        ...java,
        "kafka.tools.StorageTool",
        "format",
        "-t",
        newClusterId(),
        "-c",
        props,
        "--add-scram",
        `SCRAM-SHA-512=[name=${USER},password=${PASSWORD}]`,
        "--add-scram",
        `SCRAM-SHA-256=[name=${USER},password=${PASSWORD}]`,
      ],
      { what: "formatting the SASL_SSL broker's storage" },
    );
    const out = fs.openSync(logFile, "a");
    broker = spawn(
      "java",
      ["-Xmx256m", "-Xms64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", ...java, "kafka.Kafka", props],
      { cwd: tmp, stdio: ["ignore", out, out] },
    );
    fs.closeSync(out);
    const security = kafkaSecurity(secured());
    // ~5 s on an idle machine; far longer on a loaded one.
    const deadline = Date.now() + 180_000;
    for (;;) {
      if (broker.exitCode !== null) throw new Error(`the broker exited:\n${fs.readFileSync(logFile, "utf8")}`);
      try {
        await probeKafka(brokers, security);
        break;
      } catch (e) {
        if (Date.now() > deadline)
          throw new Error(
            `the broker did not answer in 180 s (${(e as Error).message}):\n${fs.readFileSync(logFile, "utf8")}`,
            { cause: e },
          );
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  });

  after(async () => {
    const b = broker;
    if (b && b.exitCode === null) {
      const exited = new Promise((resolve) => b.once("exit", resolve));
      b.kill("SIGTERM");
      const timer = setTimeout(() => b.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** Runs `work` with the secured environment in process.env, as a process of such a deployment. */
  async function withEnv<T>(env: NodeJS.ProcessEnv, work: () => Promise<T>): Promise<T> {
    const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    Object.assign(process.env, env);
    try {
      return await work();
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  }

  test("a processor's round trip: transactional producer, read-committed consumer, offsets in the transaction", async () => {
    // kafkaClient without security settings takes the environment's, as every process does.
    const kafka = await withEnv(secured(), async () => kafkaClient(brokers, "polity-security-test", true));
    const input = `sec-in-${randomBytes(4).toString("hex")}`;
    const output = `sec-out-${randomBytes(4).toString("hex")}`;
    const group = `sec-group-${randomBytes(4).toString("hex")}`;
    const admin = kafka.admin();
    await admin.connect();
    const producer = kafka.producer({ transactionalId: `sec-tx-${input}`, idempotent: true, maxInFlightRequests: 1 });
    const consumer = kafka.consumer({ groupId: group, readUncommitted: false, maxWaitTimeInMs: 100 });
    try {
      await admin.createTopics({ topics: [{ topic: input }, { topic: output }], waitForLeaders: true });
      await producer.connect();
      const aborted = await producer.transaction();
      await aborted.send({ topic: input, messages: [{ key: "g", value: "aborted" }] });
      await aborted.abort();
      const committed = await producer.transaction();
      await committed.send({ topic: input, messages: [{ key: "g", value: "committed" }] });
      await committed.commit();

      await consumer.connect();
      await consumer.subscribe({ topic: input, fromBeginning: true });
      const seen: string[] = [];
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`read ${seen.join(",")} in 30 s`)), 30_000);
        void consumer.run({
          autoCommit: false,
          eachMessage: async ({ topic, partition, message }) => {
            seen.push(message.value!.toString());
            // Consume, transform, produce: the answer and the input's offset in one transaction.
            const tx = await producer.transaction();
            await tx.send({ topic: output, messages: [{ key: "g", value: `answer to ${message.value!.toString()}` }] });
            await tx.sendOffsets({
              consumerGroupId: group,
              topics: [{ topic, partitions: [{ partition, offset: String(BigInt(message.offset) + 1n) }] }],
            });
            await tx.commit();
            clearTimeout(timer);
            resolve();
          },
        });
      });
      assert.deepEqual(seen, ["committed"], "a read-committed consumer skips the aborted transaction");
      // Offsets 0 "aborted", 1 its abort marker, 2 "committed": the group resumes at 3, committed with the
      // answer. The coordinator shows it once the commit markers are written, a moment after commit() returns.
      let offset = "-1";
      for (let tries = 0; offset !== "3" && tries < 100; tries++) {
        if (tries > 0) await new Promise((r) => setTimeout(r, 100));
        offset = (await admin.fetchOffsets({ groupId: group, topics: [input] }))[0]?.partitions[0]?.offset ?? "-1";
      }
      assert.equal(offset, "3");
      const ends = await admin.fetchTopicOffsets(output);
      assert.ok(BigInt(ends[0]!.high) >= 1n, "the answer is in the output topic");
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
      await admin.disconnect();
    }
  });

  test("SCRAM-SHA-256 logs in too", async () => {
    const kafka = kafkaClient(brokers, "polity-security-256", {
      quiet: true,
      security: kafkaSecurity({ ...secured(), KAFKA_SASL_MECHANISM: "SCRAM-SHA-256" }),
    });
    const admin = kafka.admin();
    await admin.connect();
    try {
      assert.equal((await admin.describeCluster()).brokers.length, 1);
    } finally {
      await admin.disconnect();
    }
  });

  test("a wrong password: the error names the mechanism and the user, never the password", async (t) => {
    const logged: string[] = [];
    const security: KafkaSecurity = kafkaSecurity({
      ...secured(),
      KAFKA_SASL_PASSWORD_FILE: undefined,
      KAFKA_SASL_PASSWORD: WRONG,
    });
    const kafka = kafkaClient(brokers, "polity-security-wrong", { security, logSink: (line) => logged.push(line) });
    const producer = kafka.producer({ transactionalId: "sec-wrong", idempotent: true, maxInFlightRequests: 1 });
    const error = await producer.connect().then(
      () => assert.fail("connected with a wrong password"),
      (e: unknown) => e as Error,
    );
    await producer.disconnect().catch(() => undefined);
    t.diagnostic(error.message);
    for (const line of logged) t.diagnostic(`logged: ${line}`);
    assert.ok(error instanceof KafkaSecurityError, String(error));
    assert.equal(error.kind, "sasl");
    assert.match(error.message, /SASL SCRAM-SHA-512 authentication of user "polity" failed at 127\.0\.0\.1:\d+/);
    assert.match(error.message, /KAFKA_SASL_PASSWORD/);
    assert.ok(logged.length > 0, "the client logged the failure");
    assert.ok(
      logged.some((line) => /SCRAM-SHA-512.*user "polity"/.test(line)),
      "a log line names the mechanism and the user",
    );
    const everything = [error.message, String(error), error.stack ?? "", inspect(error, { depth: 10 }), ...logged].join(
      "\n",
    );
    for (const secret of [WRONG, PASSWORD])
      assert.ok(!everything.includes(secret), `the password leaked:\n${everything}`);
  });

  test("the Python agent's confluent-kafka settings, from the same variables, log in over SASL_SSL", async () => {
    const python = await ensurePythonAgentEnv();
    const script = [
      "import sys, agent",
      "from confluent_kafka.admin import AdminClient",
      "settings = agent.kafka_settings(sys.argv[1])",
      "print(settings['security.protocol'], settings['sasl.mechanisms'], len(AdminClient(settings).list_topics(timeout=20).brokers))",
    ].join("\n");
    const out = await run(python, ["-c", script, brokers.join(",")], {
      what: "listing topics from Python",
      cwd: PYTHON_AGENT_DIR,
      env: { ...process.env, ...secured() },
    });
    assert.match(out, /sasl_ssl SCRAM-SHA-512 1/);
  });

  test("a broker certificate no configured CA signed: a TLS error that says which setting to fix", async (t) => {
    const kafka = kafkaClient(brokers, "polity-security-ca", {
      quiet: true,
      security: kafkaSecurity({ ...secured(), KAFKA_SSL_CA_FILE: otherCaPem }),
      retry: { retries: 0 },
    });
    const admin = kafka.admin();
    const error = await admin.connect().then(
      () => assert.fail("connected to a broker whose certificate is not trusted"),
      (e: unknown) => e as Error,
    );
    await admin.disconnect().catch(() => undefined);
    t.diagnostic(error.message);
    assert.ok(error instanceof KafkaSecurityError, String(error));
    assert.equal(error.kind, "tls");
    assert.match(error.message, /Kafka TLS handshake with 127\.0\.0\.1:\d+ failed: .*certificate/);
    assert.ok(error.message.includes(`KAFKA_SSL_CA_FILE=${otherCaPem}`), error.message);
  });
});
