/**
 * What a state store wrote itself, so that the next batch of the same source partition need not read
 * it back: per fold (a collection and the source partition whose fields it writes), each document's
 * fields as written and its position for that partition, and which groups (every task of a goal) it
 * holds whole. With the small batches of a live projection, reading back what the previous batch had
 * just written was most of the state projection's finds.
 *
 * Safe because every write of a fold is a compare-and-set on the position it starts from: when another
 * host wrote a document since (a partition that moved away and back, a host that had not yet noticed it
 * lost one), the write matches nothing, the batch fails, the store forgets everything and the host
 * applies the batch again from what is stored. The store also forgets everything whenever the host asks
 * for its checkpoints, which it does on every assignment, so a partition that comes back starts from
 * the store.
 *
 * Bounded: past `capacity` documents the least recently used go first, and a group stops being whole
 * when one of its documents goes.
 */
export interface WrittenDoc<D> {
  /** A copy: the caller may change it. */
  doc: D;
  /** The position recorded on the stored document for the fold's partition (null: none yet). */
  pos: number | null;
}

interface Slot {
  doc: unknown;
  pos: number | null;
  /** The key of the group it belongs to (groupKey), if any. */
  group: string | null;
}

/** The fold a document belongs to: its collection and the source partition whose fields it writes. */
export function foldKey(collection: string, pos: string): string {
  return `${collection}|${pos}`;
}

export class Written {
  private readonly docs = new Map<string, Slot>();
  /** Whole groups: every stored document of the group, by key. */
  private readonly groups = new Map<string, Set<string>>();

  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.docs.size;
  }

  get<D>(fold: string, id: string): WrittenDoc<D> | undefined {
    const key = docKey(fold, id);
    const slot = this.docs.get(key);
    if (!slot) return undefined;
    // Most recently used last.
    this.docs.delete(key);
    this.docs.set(key, slot);
    return { doc: structuredClone(slot.doc) as D, pos: slot.pos };
  }

  /** The ids of a whole group, or undefined when this store does not hold all of it. */
  group(fold: string, group: string): string[] | undefined {
    const ids = this.groups.get(groupKey(fold, group));
    return ids ? [...ids] : undefined;
  }

  /**
   * Records a document as stored now; `group` names the group it belongs to, if any. The document
   * is kept as given (`get` hands out copies), so the caller must not change it afterwards.
   */
  set(fold: string, id: string, doc: unknown, pos: number | null, group: string | null = null): void {
    const key = docKey(fold, id);
    const inGroup = group === null ? null : groupKey(fold, group);
    this.docs.delete(key);
    this.docs.set(key, { doc, pos, group: inGroup });
    if (inGroup !== null) this.groups.get(inGroup)?.add(id);
    while (this.docs.size > this.capacity) this.evictOldest();
  }

  /** Marks a group whole: `ids` are every stored document of it, each already set. */
  setGroup(fold: string, group: string, ids: Iterable<string>): void {
    const members = new Set(ids);
    for (const id of members) if (!this.docs.has(docKey(fold, id))) return;
    this.groups.set(groupKey(fold, group), members);
  }

  clear(): void {
    this.docs.clear();
    this.groups.clear();
  }

  private evictOldest(): void {
    const [key, slot] = this.docs.entries().next().value!;
    this.docs.delete(key);
    if (slot.group !== null) this.groups.delete(slot.group);
  }
}

const docKey = (fold: string, id: string) => `${fold}\u0000${id}`;
const groupKey = (fold: string, group: string) => `${fold}\u0000${group}`;
