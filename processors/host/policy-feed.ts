/**
 * Keeps a PolicyBook in step with polity.policies.events for the hosts of one process, as the
 * DirectoryFeed does for agents: read from the beginning on start (resolving once caught up), then
 * followed live, with a private consumer group that never commits, because every decider may
 * consult any policy (`ctx.policies`).
 *
 * The view is eventually consistent: a version is seen here a moment after the policy engine
 * writes it. Deciders consult `book.at(time of the input)`, so a late view can only miss a version
 * accepted just before the input, never apply one accepted after it.
 */
import type { Kafka } from "kafkajs";
import { physicalTopic } from "../../schemas/catalog.js";
import type { Codec } from "../../schemas/codec.js";
import { DecodeError } from "../../schemas/codec.js";
import type { PolityEvent } from "../../schemas/reader.js";
import { PolicyBook } from "../domain/policies/book.js";
import { randomUUID } from "node:crypto";
import { TopicFollower } from "./follower.js";

const POLICIES_TOPIC = "polity.policies.events";

export class PolicyFeed {
  readonly book = new PolicyBook();
  private readonly follower: TopicFollower;

  constructor(
    kafka: Kafka,
    private readonly codec: Codec,
    topicPrefix = "",
    log?: (line: string) => void,
  ) {
    this.follower = new TopicFollower(kafka, {
      topics: [physicalTopic(POLICIES_TOPIC, topicPrefix)],
      from: "beginning",
      groupId: `${topicPrefix}polity-policies-${randomUUID()}`,
      consumer: { maxWaitTimeInMs: 100 },
      log,
      onMessage: async (_topic, _partition, message) => {
        try {
          const decoded = await this.codec.decode(message.value);
          this.book.apply({ type: decoded.type, value: decoded.value } as unknown as PolityEvent);
        } catch (e) {
          // The policy engine's own consumer dead-letters bad messages; the feed only skips them.
          if (!(e instanceof DecodeError)) throw e;
        }
      },
    });
  }

  /** Starts following the topic; resolves when everything written before the call has been read. */
  start(): Promise<void> {
    return this.follower.start("reading the policies (polity.policies.events)");
  }

  /** Resolves once the book holds `version` of `policyId` (or a later one). */
  known(policyId: string, version: number, timeoutMs = 30_000): Promise<void> {
    return this.follower.waiters.until(
      () => (this.book.latest(policyId)?.version ?? 0) >= version,
      timeoutMs,
      `reading version ${version} of policy ${policyId}`,
    );
  }

  stop(): Promise<void> {
    return this.follower.stop();
  }
}
