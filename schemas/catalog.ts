/**
 * The topic catalog: every topic Polity uses, its key, partitions, retention, the message types it
 * carries, and how its registry subjects are named. Producers, processors, projections, the admin
 * step and the AsyncAPI generator all read this one table.
 */

/** Which id a topic is keyed by, so that everything needing order shares a partition. */
export type KeyKind = "goalId" | "agentId" | "policyId" | "tenantId" | "originalKey";

export interface TopicSpec {
  name: string;
  description: string;
  key: KeyKind;
  partitions: number;
  /** "delete" with retentionMs -1 keeps the log forever (the system of record); "compact" keeps the latest per key. */
  cleanupPolicy: "delete" | "compact";
  retentionMs: number;
  /**
   * Largest record batch the topic accepts (max.message.bytes); the broker default (1 MiB) when
   * absent. A goal's snapshot holds all its tasks, and a transaction may carry several.
   */
  maxMessageBytes?: number;
  /** Record names (without namespace) of the messages this topic carries. */
  messages: readonly string[];
}

/** Subject per record type on a topic (Confluent TopicRecordNameStrategy): `<topic>-<full record name>`. */
export function subjectFor(topic: string, fullRecordName: string): string {
  return `${topic}-${fullRecordName}`;
}

const FOREVER = -1;

export const TOPICS = [
  {
    name: "polity.goals.commands",
    description: "Requests about goals and projects from users and integrators; may be rejected.",
    key: "goalId",
    partitions: 6,
    cleanupPolicy: "delete",
    retentionMs: FOREVER,
    messages: ["SubmitGoal", "RequestPhaseTransition", "StopGoal"],
  },
  {
    name: "polity.goals.events",
    description: "Facts about goals and projects: lifecycle, decomposition, phases, snapshots.",
    key: "goalId",
    partitions: 6,
    cleanupPolicy: "delete",
    retentionMs: FOREVER,
    maxMessageBytes: 16 * 1024 * 1024,
    messages: [
      "GoalSubmitted",
      "GoalValidated",
      "GoalRejected",
      "PlanRequested",
      "PlanProposed",
      "GoalDecomposed",
      "GoalCompleted",
      "GoalFailed",
      "GoalStopped",
      "GoalSnapshotTaken",
      "PhaseTransitioned",
      "PhaseTransitionRejected",
    ],
  },
  {
    name: "polity.tasks.events",
    description:
      "Everything that happens to the tasks of a goal, and the messages exchanged about them along the hierarchy.",
    key: "goalId",
    partitions: 6,
    cleanupPolicy: "delete",
    retentionMs: FOREVER,
    messages: [
      "TaskCreated",
      "TaskAssigned",
      "TaskAccepted",
      "TaskStarted",
      "TaskProgressed",
      "TaskCompleted",
      "TaskFailed",
      "TaskRetried",
      "TaskReassigned",
      "TaskCancelled",
      "TaskTimedOut",
      "ReportSubmitted",
      "EscalationRaised",
      "EscalationResolved",
      "ConflictRaised",
      "ConflictResolved",
      "ContextRequested",
      "ContextProvided",
      "QueryAsked",
      "QueryAnswered",
    ],
  },
  {
    name: "polity.governance.events",
    description: "Resource requests and policy decisions made while goals run.",
    key: "goalId",
    partitions: 6,
    cleanupPolicy: "delete",
    retentionMs: FOREVER,
    messages: [
      "ResourceRequested",
      "ResourceAllocated",
      "ResourceDenied",
      "PolicyEvaluated",
      "ConstitutionalViolationDetected",
      "PerformanceAlert",
    ],
  },
  {
    name: "polity.policies.commands",
    description: "Requests to define or amend a policy.",
    key: "policyId",
    partitions: 3,
    cleanupPolicy: "delete",
    retentionMs: FOREVER,
    messages: ["DefinePolicy", "AmendPolicy"],
  },
  {
    name: "polity.policies.events",
    description: "Every version of every policy, in order; the policy engine rebuilds its tables from here.",
    key: "policyId",
    partitions: 3,
    cleanupPolicy: "delete",
    retentionMs: FOREVER,
    messages: ["PolicyDefined", "PolicyAmended", "PolicyRetired"],
  },
  {
    name: "polity.agents.commands",
    description: "Requests about agents: registration and scaling.",
    key: "agentId",
    partitions: 3,
    cleanupPolicy: "delete",
    retentionMs: FOREVER,
    messages: ["RegisterAgent", "ScaleAgents"],
  },
  {
    name: "polity.agents.events",
    description: "Agent lifecycle, heartbeats and health.",
    key: "agentId",
    partitions: 6,
    cleanupPolicy: "delete",
    retentionMs: FOREVER,
    messages: ["AgentRegistered", "AgentHeartbeat", "AgentFailed", "AgentRecovered", "AgentTerminated", "AgentsScaled"],
  },
  {
    name: "polity.notifications",
    description: "Broadcasts to every agent of a tenant.",
    key: "tenantId",
    partitions: 3,
    cleanupPolicy: "delete",
    retentionMs: FOREVER,
    messages: ["NotificationBroadcast"],
  },
  {
    name: "polity.deadletters",
    description: "Messages that could not be read: the original bytes, where they came from, and why.",
    key: "originalKey",
    partitions: 3,
    cleanupPolicy: "delete",
    retentionMs: FOREVER,
    messages: ["DeadLetter"],
  },
] as const satisfies readonly TopicSpec[];

export type TopicName = (typeof TOPICS)[number]["name"];
export type MessageType = (typeof TOPICS)[number]["messages"][number];

const topicOfMessage = new Map<string, TopicSpec>();
for (const topic of TOPICS) {
  for (const message of topic.messages) {
    if (topicOfMessage.has(message)) throw new Error(`catalog: ${message} is listed on two topics`);
    topicOfMessage.set(message, topic);
  }
}

export const MESSAGE_TYPES: readonly MessageType[] = TOPICS.flatMap((t) => t.messages);

/** The topic a message type is written to; throws naming the type when it is not in the catalog. */
export function topicFor(type: string): TopicSpec {
  const topic = topicOfMessage.get(type);
  if (!topic) throw new Error(`message type "${type}" is not in the topic catalog (schemas/catalog.ts)`);
  return topic;
}

export const DEAD_LETTER_TOPIC: TopicName = "polity.deadletters";

/**
 * The name a catalog topic has on the broker: the deployment's prefix (POLITY_TOPIC_PREFIX) before
 * it. Registry subjects keep the catalog name, so every deployment shares one contract.
 */
export function physicalTopic(name: string, prefix = ""): string {
  return `${prefix}${name}`;
}
