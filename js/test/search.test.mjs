import assert from "node:assert/strict";
import { test } from "node:test";
import { logSoftmax, mergeViews, Pipeline, readSettings, scoringBelow } from "../src/pipeline.mjs";
import { priorIncrements, Trie } from "../src/trie.mjs";
import { DEFAULT_VERBATIM, offerVerbatim } from "../src/user_words.mjs";

// A trie of "a", "ab", "b" over the alphabet "ab" (tokens: 0 <eos>, 1 a, 2 b).
// Nodes: 0 root, 1 "a", 2 "ab", 3 "b".
const LOG = { a: Math.log(0.5), ab: Math.log(0.2), b: Math.log(0.3) };
function smallTrie() {
  const children = Int32Array.from([
    -1, 1, 3, // root
    1, -1, 2, // "a" ends here, goes on to "ab"
    2, -1, -1, // "ab"
    3, -1, -1, // "b"
  ]);
  const f = Math.fround;
  const lookahead = Float32Array.from([f(LOG.a), f(LOG.a), f(LOG.ab), f(LOG.b)]);
  const endLogProb = Float32Array.from([-Infinity, f(LOG.a), f(LOG.ab), f(LOG.b)]);
  return new Trie(children, 3, lookahead, endLogProb, Int32Array.from([-1, 0, 1, 2]), ["a", "ab", "b"]);
}

// A network that gives every next token the same probability.
const uniform = {
  async step(tokens, dims) {
    return [logSoftmax(new Float32Array(dims[0] * dims[1] * 3), 3), null];
  },
  take: (memory) => memory,
  reorder: () => null,
  score: async () => null, // the pipeline steps along given words
};

function pipeline(settings, backend = uniform) {
  const vocabulary = { alphabet: "ab", eosId: 0, sosId: 3 };
  return new Pipeline(backend, vocabulary, [], { resample: null, maxPoints: null },
    readSettings({ beam_size: 4, length_penalty: 0, ...settings }), smallTrie());
}

test("log-softmax in float32 sums to one", () => {
  const out = logSoftmax(Float32Array.from([1, 2, 3, 4]), 4);
  assert.ok(out instanceof Float32Array);
  assert.ok(Math.abs(out.reduce((s, v) => s + Math.exp(v), 0) - 1) < 1e-6);
});

test("the prior's increments along a word add up to its log-probability", () => {
  const trie = smallTrie();
  for (const [word, path, tokens] of [["ab", [0, 1, 2], [1, 2, 0]], ["b", [0, 3], [2, 0]]]) {
    const sum = path.reduce((s, node, i) => s + priorIncrements(trie, [node])[tokens[i]], 0);
    assert.ok(Math.abs(sum - LOG[word]) < 1e-6, word);
  }
  assert.equal(priorIncrements(trie, [3])[1], -Infinity); // "ba" leaves the trie
});

test("the search finds the lexicon's words, shorter (likelier) first, ties in token order", async () => {
  const [row] = await pipeline({}).search(null, 1);
  const third = Math.log(1 / 3);
  assert.deepEqual(row.map(([, word]) => word), ["a", "b", "ab"]);
  assert.deepEqual(row.map(([score]) => score), [2 * Math.fround(third), 2 * Math.fround(third), 3 * Math.fround(third)]);
});

test("the prior and the length penalty change the ranking as the settings say", async () => {
  const [row] = await pipeline({ prior_weight: 1.0, length_penalty: 1.0 }).search(null, 1);
  assert.deepEqual(row.map(([, word]) => word), ["a", "ab", "b"]); // per token, "ab" beats the rarer "b"
  const expected = (2 * Math.log(1 / 3) + LOG.b) / 2;
  assert.ok(Math.abs(row[2][0] - expected) < 1e-6);
});

test("a beam of one keeps only the best hypothesis each step", async () => {
  const [row] = await pipeline({ beam_size: 1 }).search(null, 1);
  assert.deepEqual(row.map(([, word]) => word), ["a"]);
});

test("scoring words gives the search's own scores", async () => {
  const p = pipeline({ prior_weight: 1.0 });
  const [found] = await p.search(null, 1);
  const [scored] = await p.scoreWords(null, [["ab", "b", "zz", "b"]]);
  const byWord = new Map(found.map(([score, word]) => [word, score]));
  assert.deepEqual(scored.map(([, word]) => word).sort(), ["ab", "b"]);
  for (const [score, word] of scored) assert.equal(score, byWord.get(word));
});

test("views merge: each word keeps its best score, ties in first-listed order", () => {
  const merged = mergeViews([[[-1, "a"], [-2, "b"]], [[-0.5, "b"], [-1, "c"]]]);
  assert.deepEqual(merged, [[-0.5, "b"], [-1, "a"]]);
  assert.deepEqual(scoringBelow([[[-9, "a"]], [], [[-1, "b"]]], -8), [0, 1]);
});

test("the verbatim candidate: the network's best string, offered second where no word scores well", async () => {
  // A network sure of "ba": b after <sos>, a after b, then <eos>.
  const sure = {
    async encode() { return null; },
    async step(tokens, dims) {
      const logits = new Float32Array(dims[0] * dims[1] * 3);
      tokens.forEach((token, i) => { logits[i * 3 + (token === 3 ? 2 : token === 2 ? 1 : 0)] = 10; });
      return [logSoftmax(logits, 3), null];
    },
    take: (memory) => memory,
    reorder: () => null,
    score: async () => null,
  };
  const layout = { name: "l", width: 100, keyWidth: 10 };
  const p = new Pipeline(sure, { alphabet: "ab", eosId: 0, sosId: 3 }, [layout], { resample: null, maxPoints: null },
    readSettings({ beam_size: 4 }), smallTrie());
  const swipes = [{ x: [0, 50], y: [0, 0], t: [0, 100], layout: "l" }];
  const rows = [[[-9, "a"], [-10, "b"]]];
  const [offered] = await offerVerbatim(p, swipes, rows, { ...DEFAULT_VERBATIM });
  assert.deepEqual(offered.map((c) => [c.word, c.inLexicon]), [["a", true], ["ba", false], ["b", true]]);
  const [kept] = await offerVerbatim(p, swipes, [[[-1, "a"]]], { ...DEFAULT_VERBATIM });
  assert.deepEqual(kept.map((c) => c.word), ["a"]); // a word scoring well: none offered
});
