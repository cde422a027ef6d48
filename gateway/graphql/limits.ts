/**
 * Query depth and cost limits, as GraphQL validation rules, so an over-deep or over-broad query is
 * refused before anything runs. Cost: every field costs 1, times the size of every list above it:
 * its `first` (or `limit`) argument when given as a literal, the largest page (LARGEST_PAGE) when
 * given as a variable (validation does not see variable values), else the argument's declared
 * default, else LIST_GUESS. A connection's `first` sizes its `edges` list. An operation that asks
 * for introspection only (__schema, __type, __typename at its root, e.g. GraphiQL's) is exempt: its
 * size is bounded by the schema's, and its type references nest deeper than MAX_DEPTH.
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
const LIST_GUESS = 20;
/** Largest page a list argument accepts (read-side MAX_PAGE); assumed for a variable. */
const LARGEST_PAGE = 100;

function limitError(message: string, field: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: "INVALID_INPUT", field, http: { status: 400 } } });
}

export function limitsRule(maxDepth = MAX_DEPTH, maxCost = MAX_COST) {
  return (context: ValidationContext): ASTVisitor => {
    const fragments = new Map<string, FragmentDefinitionNode>();
    for (const d of context.getDocument().definitions)
      if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
    const schema = context.getSchema();

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
      if (!node.selectionSet) return [1, 1];
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
      return [d + 1, 1 + times * c];
    };

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
        const [depth, cost] = measure(op.selectionSet, root ?? null, new Set());
        if (depth > maxDepth)
          context.reportError(
            limitError(`query is ${depth} levels deep; at most ${maxDepth} are allowed: ask for less nesting`, "query"),
          );
        else if (cost > maxCost)
          context.reportError(
            limitError(
              `query cost ${cost} is above the limit ${maxCost}: ask for fewer fields or smaller pages (first)`,
              "query",
            ),
          );
      },
    };
  };
}
