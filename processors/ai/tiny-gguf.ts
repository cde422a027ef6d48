/**
 * Writes a tiny, random-weight LLaMA-architecture model as a GGUF file, in plain TypeScript.
 *
 * Why: the embedded backend (embedded-backend.ts) runs a GGUF file in node-llama-cpp, and its tests
 * need a real model file on the real runtime — loading, tokenizing, grammar-constrained sampling,
 * stop reasons, aborts — without downloading weights from anywhere. This writer makes one in a few
 * milliseconds: about 0.6 MB, 2 layers, 64-wide, ~450 tokens, fast to load and to run on a CPU.
 *
 * What comes out is meaningless text. But its vocabulary can spell any text — `<unk>`, `<s>`, `</s>`,
 * the 256 byte-fallback tokens `<0x00>`..`<0xFF>`, every printable ASCII character, and a few common
 * multi-character pieces — so a JSON-schema grammar can always steer it, and a grammar-constrained
 * answer is always valid JSON of the schema (when it is not cut at maxTokens).
 *
 * The file is GGUF v3: header, metadata key/values (general.*, llama.* hyperparameters and a
 * SentencePiece-style "llama" tokenizer), tensor infos, then F32 tensor data aligned to 32 bytes.
 * Weights come from a seeded PRNG, so a seed always gives byte-identical files.
 *
 * `writeTinyGguf` is synchronous (it builds the whole file in memory and writes it at once).
 */
import { writeFileSync } from "node:fs";

/** Shape of the model written (small on purpose: tests load it in well under a second). */
export const TINY_GGUF_SHAPE = {
  contextLength: 4096,
  embedding: 64,
  blocks: 2,
  feedForward: 128,
  heads: 4,
  kvHeads: 2,
} as const;

const ALIGNMENT = 32;
const EOS_ID = 2;
/** Ids below this are <unk>, <s>, </s> and the 256 byte tokens. */
const BYTE_TOKENS_END = 3 + 256;

/** GGUF metadata value types. */
const enum GgufType {
  Uint32 = 4,
  Int32 = 5,
  Float32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
}

/** ggml tensor type F32. */
const GGML_TYPE_F32 = 0;

/** Token types of the llama tokenizer. */
const enum TokenType {
  Normal = 1,
  Unknown = 2,
  Control = 3,
  Byte = 6,
}

type MetaValue =
  | { type: GgufType.Uint32 | GgufType.Int32 | GgufType.Float32; value: number }
  | { type: GgufType.Bool; value: boolean }
  | { type: GgufType.String; value: string }
  | { type: GgufType.Array; itemType: GgufType.String; value: string[] }
  | { type: GgufType.Array; itemType: GgufType.Float32 | GgufType.Int32; value: number[] };

/** A growable little-endian byte buffer. */
class ByteWriter {
  private buf = Buffer.alloc(1 << 16);
  length = 0;

  private ensure(extra: number): void {
    if (this.length + extra <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + extra) size *= 2;
    const next = Buffer.alloc(size);
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf.writeUInt8(v, this.length);
    this.length += 1;
  }
  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v, this.length);
    this.length += 4;
  }
  i32(v: number): void {
    this.ensure(4);
    this.buf.writeInt32LE(v, this.length);
    this.length += 4;
  }
  u64(v: number): void {
    this.ensure(8);
    this.buf.writeBigUInt64LE(BigInt(v), this.length);
    this.length += 8;
  }
  f32(v: number): void {
    this.ensure(4);
    this.buf.writeFloatLE(v, this.length);
    this.length += 4;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  /** GGUF string: u64 byte length, then UTF-8 bytes, no terminator. */
  str(s: string): void {
    const b = Buffer.from(s, "utf8");
    this.u64(b.length);
    this.bytes(b);
  }
  padTo(alignment: number): void {
    while (this.length % alignment !== 0) this.u8(0);
  }
  result(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

/** mulberry32: a small, fast, seedable PRNG; returns floats in [0, 1). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Common multi-character pieces (SentencePiece style, "▁" is a space): JSON punctuation and English bigrams. */
const MULTI_CHAR_PIECES = [
  '":',
  '",',
  '{"',
  '"}',
  '▁"',
  "],",
  "▁t",
  "▁a",
  "▁s",
  "▁i",
  "▁o",
  "▁c",
  "▁w",
  "▁p",
  "▁the",
  "th",
  "he",
  "in",
  "er",
  "an",
  "re",
  "on",
  "at",
  "en",
  "nd",
  "ti",
  "es",
  "or",
  "te",
  "of",
  "ed",
  "is",
  "it",
  "al",
  "ar",
  "st",
  "to",
  "nt",
  "ng",
  "se",
  "ha",
  "as",
  "ou",
  "io",
  "le",
  "ve",
  "co",
  "me",
  "de",
  "hi",
  "ri",
  "ro",
  "ic",
  "ne",
  "ea",
  "ra",
  "ce",
  "ion",
  "ing",
  "tion",
  "and",
  "the",
];

interface Vocabulary {
  tokens: string[];
  scores: number[];
  types: number[];
}

/** <unk>, <s>, </s>; the 256 byte tokens; "▁" and the printable ASCII characters; then multi-character pieces. */
function vocabulary(): Vocabulary {
  const tokens: string[] = [];
  const scores: number[] = [];
  const types: number[] = [];
  const add = (text: string, score: number, type: TokenType): void => {
    tokens.push(text);
    scores.push(score);
    types.push(type);
  };
  add("<unk>", 0, TokenType.Unknown);
  add("<s>", 0, TokenType.Control);
  add("</s>", 0, TokenType.Control);
  for (let b = 0; b < 256; b++) add(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`, 0, TokenType.Byte);
  add("▁", -1000, TokenType.Normal);
  for (let c = 0x21; c <= 0x7e; c++) add(String.fromCharCode(c), -1000 - c, TokenType.Normal);
  // SentencePiece merges the adjacent pair whose merged piece scores highest: earlier pieces win.
  MULTI_CHAR_PIECES.forEach((piece, i) => add(piece, -i, TokenType.Normal));
  if (new Set(tokens).size !== tokens.length) throw new Error("tiny-gguf: duplicate token in vocabulary");
  return { tokens, scores, types };
}

interface Tensor {
  name: string;
  /** ggml order: dims[0] is the innermost (row length). */
  dims: number[];
  data: Float32Array;
}

/**
 * Writes the tiny model to `file` (overwriting it). Deterministic: the same seed (default 1) gives
 * the same bytes. Synchronous.
 */
export function writeTinyGguf(file: string, options: { seed?: number } = {}): void {
  writeFileSync(file, tinyGgufBytes(options));
}

/** The bytes `writeTinyGguf` writes. */
export function tinyGgufBytes(options: { seed?: number } = {}): Buffer {
  const random = prng(options.seed ?? 1);
  const { contextLength, embedding, blocks, feedForward, heads, kvHeads } = TINY_GGUF_SHAPE;
  const headDim = embedding / heads;
  const kvDim = headDim * kvHeads;
  const vocab = vocabulary();
  const nVocab = vocab.tokens.length;

  const metadata: [string, MetaValue][] = [
    ["general.architecture", { type: GgufType.String, value: "llama" }],
    ["general.name", { type: GgufType.String, value: "polity-tiny-random" }],
    ["general.alignment", { type: GgufType.Uint32, value: ALIGNMENT }],
    ["general.file_type", { type: GgufType.Uint32, value: 0 }], // all F32
    ["llama.vocab_size", { type: GgufType.Uint32, value: nVocab }],
    ["llama.context_length", { type: GgufType.Uint32, value: contextLength }],
    ["llama.embedding_length", { type: GgufType.Uint32, value: embedding }],
    ["llama.block_count", { type: GgufType.Uint32, value: blocks }],
    ["llama.feed_forward_length", { type: GgufType.Uint32, value: feedForward }],
    ["llama.rope.dimension_count", { type: GgufType.Uint32, value: headDim }],
    ["llama.rope.freq_base", { type: GgufType.Float32, value: 10000 }],
    ["llama.attention.head_count", { type: GgufType.Uint32, value: heads }],
    ["llama.attention.head_count_kv", { type: GgufType.Uint32, value: kvHeads }],
    ["llama.attention.layer_norm_rms_epsilon", { type: GgufType.Float32, value: 1e-5 }],
    ["tokenizer.ggml.model", { type: GgufType.String, value: "llama" }],
    ["tokenizer.ggml.tokens", { type: GgufType.Array, itemType: GgufType.String, value: vocab.tokens }],
    ["tokenizer.ggml.scores", { type: GgufType.Array, itemType: GgufType.Float32, value: vocab.scores }],
    ["tokenizer.ggml.token_type", { type: GgufType.Array, itemType: GgufType.Int32, value: vocab.types }],
    ["tokenizer.ggml.unknown_token_id", { type: GgufType.Uint32, value: 0 }],
    ["tokenizer.ggml.bos_token_id", { type: GgufType.Uint32, value: 1 }],
    ["tokenizer.ggml.eos_token_id", { type: GgufType.Uint32, value: EOS_ID }],
    ["tokenizer.ggml.add_bos_token", { type: GgufType.Bool, value: true }],
    ["tokenizer.ggml.add_eos_token", { type: GgufType.Bool, value: false }],
    ["tokenizer.ggml.add_space_prefix", { type: GgufType.Bool, value: false }],
  ];

  /** Uniform in [-scale, scale): a std of scale/sqrt(3), enough to give peaked, varied logits. */
  const matrix = (name: string, cols: number, rows: number, scale: number): Tensor => {
    const data = new Float32Array(cols * rows);
    for (let i = 0; i < data.length; i++) data[i] = (random() * 2 - 1) * scale;
    return { name, dims: [cols, rows], data };
  };
  const ones = (name: string, n: number): Tensor => ({ name, dims: [n], data: new Float32Array(n).fill(1) });
  const fanIn = (n: number): number => Math.sqrt(3 / n);

  const tensors: Tensor[] = [matrix("token_embd.weight", embedding, nVocab, 1), ones("output_norm.weight", embedding)];
  const output = matrix("output.weight", embedding, nVocab, 4 * fanIn(embedding));
  // Damp the logits of <unk>, <s> and the byte tokens, so the text is mostly printable ASCII (bytes
  // can still be picked, and a grammar can force them; </s> is the only way to finish, so it stays).
  for (let id = 0; id < BYTE_TOKENS_END; id++) {
    if (id === EOS_ID) continue;
    for (let i = id * embedding; i < (id + 1) * embedding; i++) output.data[i] = (output.data[i] ?? 0) * 0.1;
  }
  tensors.push(output);
  for (let b = 0; b < blocks; b++) {
    const p = `blk.${b}.`;
    tensors.push(
      ones(`${p}attn_norm.weight`, embedding),
      matrix(`${p}attn_q.weight`, embedding, embedding, fanIn(embedding)),
      matrix(`${p}attn_k.weight`, embedding, kvDim, fanIn(embedding)),
      matrix(`${p}attn_v.weight`, embedding, kvDim, fanIn(embedding)),
      matrix(`${p}attn_output.weight`, embedding, embedding, fanIn(embedding)),
      ones(`${p}ffn_norm.weight`, embedding),
      matrix(`${p}ffn_gate.weight`, embedding, feedForward, fanIn(embedding)),
      matrix(`${p}ffn_up.weight`, embedding, feedForward, fanIn(embedding)),
      matrix(`${p}ffn_down.weight`, feedForward, embedding, fanIn(feedForward)),
    );
  }

  const w = new ByteWriter();
  w.bytes(Buffer.from("GGUF", "ascii"));
  w.u32(3);
  w.u64(tensors.length);
  w.u64(metadata.length);
  for (const [key, v] of metadata) {
    w.str(key);
    w.u32(v.type);
    switch (v.type) {
      case GgufType.Uint32:
        w.u32(v.value);
        break;
      case GgufType.Int32:
        w.i32(v.value);
        break;
      case GgufType.Float32:
        w.f32(v.value);
        break;
      case GgufType.Bool:
        w.u8(v.value ? 1 : 0);
        break;
      case GgufType.String:
        w.str(v.value);
        break;
      case GgufType.Array:
        w.u32(v.itemType);
        w.u64(v.value.length);
        if (v.itemType === GgufType.String) for (const s of v.value) w.str(s);
        else if (v.itemType === GgufType.Float32) for (const n of v.value) w.f32(n);
        else for (const n of v.value) w.i32(n);
        break;
    }
  }

  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    offsets.push(offset);
    w.str(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(GGML_TYPE_F32);
    w.u64(offset);
    offset += Math.ceil(t.data.byteLength / ALIGNMENT) * ALIGNMENT;
  }
  w.padTo(ALIGNMENT);
  const dataStart = w.length;
  tensors.forEach((t, i) => {
    if (w.length - dataStart !== offsets[i]) throw new Error(`tiny-gguf: misaligned tensor ${t.name}`);
    // Float32Array bytes are in platform order: little-endian on every platform node-llama-cpp supports.
    w.bytes(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    w.padTo(ALIGNMENT);
  });
  return w.result();
}
