/**
 * Query depth and cost limits, as GraphQL validation rules, so an over-deep or over-broad query is
 * refused before anything runs. Cost: every field costs its price (FIELD_COST: what its resolver
 * does to the read models and servers; 1 for a field read off its parent), times the size of every
 * list above it: its `first` (or `limit`) argument when given as a literal, the largest page
 * (LARGEST_PAGE) when given as a variable (validation does not see variable values), else the
 * argument's declared default, else LIST_GUESS. A connection's `first` sizes its `edges` list. A
 * field asked `asOf` a time reads the log back (AS_OF_COST more).
 *
 * Aliases let one operation ask for a root field many times, each alias resolved again: 500 aliases
 * of systemHealth once took 11-13 s of read-model work. So every alias is priced like the field it
 * renames, and an operation may have at most MAX_ROOT_FIELDS root fields and MAX_ALIASES aliases in
 * all. (systemHealth is also computed once per request however often it is asked: ./health.ts.)
 *
 * An operation that asks for introspection only (__schema, __type, __typename at its root, e.g.
 * GraphiQL's) is exempt: its size is bounded by the schema's, and its type references nest deeper
 * than MAX_DEPTH.
 */
import {
  GraphQLError,
  getNamedType,
  getNullableType,
  isListType,
  isObjectType,
  isInterfaceType,
  Kind,
  type ASTVisitor,
  type FieldNode,
  type GraphQLField,
  type FragmentDefinitionNode,
  type GraphQLOutputType,
  type GraphQLCompositeType,
  type SelectionSetNode,
  type ValidationContext,
} from "graphql";

export const MAX_DEPTH = 10;
export const MAX_COST = 20_000;
/** Root fields (aliases included) of one operation. The dashboard's largest asks 10. */
export const MAX_ROOT_FIELDS = 50;
/** Aliased fields of one operation, at any depth, counted per fragment spread. */
export const MAX_ALIASES = 200;
/** What reading a state back from the log (`asOf`) adds to a field. */
export const AS_OF_COST = 500;

/**
 * The price of a field whose resolver does real work, by `Type.field`; any other field costs 1.
 * Root fields are priced by what one call does: systemHealth probes four servers and asks Kafka the
 * end of every partition the read models follow; a list scans a collection or a view; a lookup by
 * id is one indexed read. Nested fields that query a store per parent are priced too.
 */
export const FIELD_COST: Readonly<Record<string, number>> = {
  "Query.systemHealth": 500,
  "Query.hierarchy": 200,
  "Query.agents": 100,
  "Query.escalations": 100,
  "Query.auditTrail": 100,
  "Query.deadLetters": 100,
  "Query.goals": 50,
  "Query.projects": 50,
  "Query.policies": 20,
  "Query.throughput": 50,
  "Query.utilization": 50,
  "Query.modelUsage": 50,
  "Query.policyDenials": 50,
  "Query.constitutionalViolations": 50,
  "Query.agentWorkload": 20,
  "Query.goalProgress": 20,
  "Query.goal": 5,
  "Query.project": 5,
  "Query.task": 5,
  "Query.agent": 5,
  "Query.policy": 5,
  "Query.me": 1,
  "Agent.workload": 10,
  "Goal.analytics": 10,
  "Goal.auditTrail": 50,
  // A mutation writes one command (and may wait for the read model); a subscription holds a feed.
  "Mutation.*": 50,
  "Subscription.*": 50,
};
const LIST_GUESS = 20;
/** Largest page a list argument accepts (read-side MAX_PAGE); assumed for a variable. */
const LARGEST_PAGE = 100;

function limitError(message: string, field: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: "INVALID_INPUT", field, http: { status: 400 } } });
}

export function limitsRule(
  maxDepth = MAX_DEPTH,
  maxCost = MAX_COST,
  maxRootFields = MAX_ROOT_FIELDS,
  maxAliases = MAX_ALIASES,
) {
  return (context: ValidationContext): ASTVisitor => {
    const fragments = new Map<string, FragmentDefinitionNode>();
    for (const d of context.getDocument().definitions)
      if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
    const schema = context.getSchema();
    /** Aliases met while measuring the current operation. */
    let aliases = 0;

    /**
     * [depth, cost] of a selection set on `type`; `page` is the page size of the connection whose
     * fields these are (it sizes `edges`), if any.
     */
    const measure = (
      set: SelectionSetNode,
      type: GraphQLCompositeType | null,
      seen: Set<string>,
      page?: number,
    ): [number, number] => {
      let depth = 0;
      let cost = 0;
      for (const sel of set.selections) {
        if (sel.kind === Kind.FIELD) {
          const [d, c] = field(sel, type, seen, page);
          depth = Math.max(depth, d);
          cost += c;
        } else if (sel.kind === Kind.INLINE_FRAGMENT) {
          const on = sel.typeCondition ? (schema.getType(sel.typeCondition.name.value) as GraphQLCompositeType) : type;
          const [d, c] = measure(sel.selectionSet, on, seen, page);
          depth = Math.max(depth, d);
          cost += c;
        } else {
          const name = sel.name.value;
          const frag = fragments.get(name);
          if (!frag || seen.has(name)) continue; // unknown or cyclic fragments are other rules' errors
          const on = schema.getType(frag.typeCondition.name.value) as GraphQLCompositeType;
          const [d, c] = measure(frag.selectionSet, on, new Set([...seen, name]), page);
          depth = Math.max(depth, d);
          cost += c;
        }
      }
      return [depth, cost];
    };

    /** The page size a field asks for: its first/limit argument, or its declared default. */
    const pageOf = (node: FieldNode, def: GraphQLField<unknown, unknown> | undefined): number | undefined => {
      const arg = node.arguments?.find((a) => a.name.value === "first" || a.name.value === "limit");
      if (arg?.value.kind === Kind.INT) return Number(arg.value.value);
      if (arg?.value.kind === Kind.VARIABLE) return LARGEST_PAGE;
      const declared = def?.args.find((a) => a.name === "first" || a.name === "limit")?.defaultValue;
      return typeof declared === "number" ? declared : undefined;
    };

    const field = (
      node: FieldNode,
      parent: GraphQLCompositeType | null,
      seen: Set<string>,
      page?: number,
    ): [number, number] => {
      let def: GraphQLField<unknown, unknown> | undefined;
      if (parent && (isObjectType(parent) || isInterfaceType(parent))) def = parent.getFields()[node.name.value];
      const fieldType: GraphQLOutputType | undefined = def?.type;
      if (node.alias) aliases++;
      const typeName = parent?.name ?? "";
      let price = FIELD_COST[`${typeName}.${node.name.value}`] ?? FIELD_COST[`${typeName}.*`] ?? 1;
      if (node.arguments?.some((a) => a.name.value === "asOf")) price += AS_OF_COST;
      if (!node.selectionSet) return [1, price];
      const named = fieldType ? (getNamedType(fieldType) as GraphQLCompositeType) : null;
      // A connection (an object with an `edges` list) passes its page size down to its edges.
      const isConnection =
        !!named && isObjectType(named) && !!named.getFields().edges && !isListType(getNullableType(fieldType!));
      const [d, c] = measure(
        node.selectionSet,
        named,
        seen,
        isConnection ? (pageOf(node, def) ?? LIST_GUESS) : undefined,
      );
      let times = 1;
      if (fieldType && isListType(getNullableType(fieldType)))
        times = node.name.value === "edges" && page !== undefined ? page : (pageOf(node, def) ?? LIST_GUESS);
      return [d + 1, price + times * c];
    };

    /** The root fields of a selection set, through fragments (each spread counts). */
    const rootFields = (set: SelectionSetNode, seen: Set<string>): number =>
      set.selections.reduce((n, sel) => {
        if (sel.kind === Kind.FIELD) return n + 1;
        if (sel.kind === Kind.INLINE_FRAGMENT) return n + rootFields(sel.selectionSet, seen);
        const frag = fragments.get(sel.name.value);
        if (!frag || seen.has(sel.name.value)) return n;
        return n + rootFields(frag.selectionSet, new Set([...seen, sel.name.value]));
      }, 0);

    /** Whether every root field of a selection set (through fragments) is an introspection field. */
    const introspectionOnly = (set: SelectionSetNode, seen: Set<string>): boolean =>
      set.selections.every((sel) => {
        if (sel.kind === Kind.FIELD) return sel.name.value.startsWith("__");
        if (sel.kind === Kind.INLINE_FRAGMENT) return introspectionOnly(sel.selectionSet, seen);
        const frag = fragments.get(sel.name.value);
        if (!frag || seen.has(sel.name.value)) return true; // other rules' errors
        return introspectionOnly(frag.selectionSet, new Set([...seen, sel.name.value]));
      });

    return {
      OperationDefinition(op) {
        if (op.operation === "query" && introspectionOnly(op.selectionSet, new Set())) return;
        const root =
          op.operation === "query"
            ? schema.getQueryType()
            : op.operation === "mutation"
              ? schema.getMutationType()
              : schema.getSubscriptionType();
        aliases = 0;
        const [depth, cost] = measure(op.selectionSet, root ?? null, new Set());
        const roots = rootFields(op.selectionSet, new Set());
        if (depth > maxDepth) {
          context.reportError(
            limitError(`query is ${depth} levels deep; at most ${maxDepth} are allowed: ask for less nesting`, "query"),
          );
          return;
        }
        // One error saying every limit passed, always with the cost, so a client sees what to cut.
        const over: string[] = [];
        if (cost > maxCost) over.push(`query cost ${cost} is above the limit ${maxCost}`);
        if (roots > maxRootFields) over.push(`${roots} root fields are more than the ${maxRootFields} allowed`);
        if (aliases > maxAliases) over.push(`${aliases} aliases are more than the ${maxAliases} allowed`);
        if (over.length === 0) return;
        if (cost <= maxCost) over.unshift(`query cost ${cost} (limit ${maxCost})`);
        context.reportError(
          limitError(`${over.join("; ")}: ask for fewer fields, fewer aliases or smaller pages (first)`, "query"),
        );
      },
    };
  };
}
