/**
 * Co-partitioned assignment (as Kafka Streams does it): partition p of every input topic goes to
 * the same member. The topics a tier reads are all keyed by goal id with the same partition count,
 * so one member sees every event of a goal, and its state for partition p is complete.
 */
import { AssignerProtocol, type PartitionAssigner } from "kafkajs";

export const COPARTITIONED = "PolityCoPartitioned";

export const coPartitionedAssigner: PartitionAssigner = ({ cluster }) => ({
  name: COPARTITIONED,
  version: 1,
  async assign({ members, topics }) {
    const ids = members.map((m) => m.memberId).sort();
    const assignment = new Map<string, Record<string, number[]>>(ids.map((id) => [id, {}]));
    for (const topic of topics) {
      for (const { partitionId } of cluster.findTopicPartitionMetadata(topic)) {
        const member = assignment.get(ids[partitionId % ids.length]!)!;
        (member[topic] ??= []).push(partitionId);
      }
    }
    return ids.map((memberId) => ({
      memberId,
      memberAssignment: AssignerProtocol.MemberAssignment.encode({
        version: 1,
        assignment: assignment.get(memberId)!,
        userData: Buffer.alloc(0),
      }),
    }));
  },
  protocol({ topics }) {
    return {
      name: COPARTITIONED,
      metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: Buffer.alloc(0) }),
    };
  },
});
