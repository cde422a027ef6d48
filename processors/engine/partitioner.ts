/** Where the producers' default partitioner (murmur2, as Java's) puts a key, for code that must know without producing. */
import { Partitioners } from "kafkajs";

const partitioner = Partitioners.DefaultPartitioner();

export function partitionOfKey(key: string, partitions: number): number {
  const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({
    partitionId,
    leader: 0,
    partitionErrorCode: 0,
    replicas: [0],
    isr: [0],
  }));
  return partitioner({ topic: "polity.agents.events", partitionMetadata, message: { key, value: null } });
}
