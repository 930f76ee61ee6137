import assert from "node:assert/strict";
import { test } from "node:test";
import { logSoftmax, Pipeline, readSettings } from "../src/pipeline.mjs";
import { Trie } from "../src/trie.mjs";
import { DEFAULT_LEARN, UserDataError, UserWordError, UserWords, checkSpelling, readUserData } from "../src/user_words.mjs";

// A trie of "a", "ab", "b" over the alphabet "abc" (tokens: 0 <eos>, 1 a, 2 b, 3 c).
const f = Math.fround;
const LOG = { a: Math.log(0.5), ab: Math.log(0.2), b: Math.log(0.3) };
function smallTrie() {
  const children = Int32Array.from([
    -1, 1, 3, -1, // root
    1, -1, 2, -1, // "a" ends here, goes on to "ab"
    2, -1, -1, -1, // "ab"
    3, -1, -1, -1, // "b"
  ]);
  const lookahead = Float32Array.from([f(LOG.a), f(LOG.a), f(LOG.ab), f(LOG.b)]);
  const endLogProb = Float32Array.from([-Infinity, f(LOG.a), f(LOG.ab), f(LOG.b)]);
  return new Trie(children, 4, lookahead, endLogProb, Int32Array.from([-1, 0, 1, 2]), ["a", "ab", "b"]);
}
const keyboard = { name: "abc", canType: (c) => "abc".includes(c) };
const abOnly = { name: "ab", canType: (c) => "ab".includes(c) };

// A network that gives every next token the same probability.
const uniform = {
  async step(tokens, dims) {
    return [logSoftmax(new Float32Array(dims[0] * dims[1] * 4), 4), null];
  },
  take: (memory) => memory,
  reorder: () => null,
  score: async () => null, // the pipeline steps along given words
};

async function words(trie) {
  const vocabulary = { alphabet: "abc", eosId: 0, sosId: 4 };
  const pipeline = new Pipeline(uniform, vocabulary, [], { resample: null, maxPoints: null },
    readSettings({ beam_size: 16, num_candidates: 16, length_penalty: 0, prior_weight: 1 }), trie);
  const [row] = await pipeline.search(null, 1);
  return row.map(([, word]) => word).sort();
}

/** Every node's look-ahead as the best word log-probability below it, computed afresh. */
function checkLookahead(trie) {
  const v = trie.numTokens;
  const best = (node) => {
    let most = trie.children[node * v] === node ? trie.endLogProb[node] : -Infinity;
    for (let t = 1; t < v; t++) if (trie.children[node * v + t] >= 0) most = Math.max(most, best(trie.children[node * v + t]));
    assert.equal(trie.lookahead[node], most, `node ${node}`);
    return most;
  };
  best(0);
}

test("added words are output at once, with their frequency; the look-ahead stays right", async () => {
  const trie = smallTrie();
  const user = new UserWords(trie, "abc", [keyboard]);
  user.add(["cab", "bc"]);
  user.add("ca", 1e8);
  assert.deepEqual(await words(trie), ["a", "ab", "b", "bc", "ca", "cab"]);
  assert.equal(trie.wordLogProbs[trie.wordIndex().get("ca")], f(Math.log(0.1)));
  assert.equal(user.baseLogProb("cab"), user.defaultLogProb); // the lexicon word 10 % down the list
  assert.equal(trie.maxWordLength, 3);
  checkLookahead(trie);
});

test("removed words are never output, their branch is cut, and they come back when added", async () => {
  const trie = smallTrie();
  const user = new UserWords(trie, "abc", [keyboard]);
  user.remove(["ab", "b", "unknown"]);
  assert.deepEqual(await words(trie), ["a"]);
  assert.equal(trie.child(0, 2), -1);
  checkLookahead(trie);
  user.add(["b"]);
  assert.deepEqual(await words(trie), ["a", "b"]);
  assert.equal(trie.wordLogProbs[trie.wordIndex().get("b")], f(LOG.b)); // its own frequency again
  checkLookahead(trie);
});

test("a learned word gains probability, decays as others are learned, and new ones are added", () => {
  const trie = smallTrie();
  const user = new UserWords(trie, "abc", [keyboard]);
  user.learn("ab");
  const boost = DEFAULT_LEARN.weight * (1 - DEFAULT_LEARN.decay);
  assert.ok(Math.abs(Math.exp(trie.wordLogProbs[trie.wordIndex().get("ab")]) - (0.2 + boost)) < 1e-7);
  user.learn("cc");
  assert.ok(trie.has("cc"));
  user.sync();
  assert.ok(Math.abs(user.count("ab") - DEFAULT_LEARN.decay) < 1e-12);
  assert.ok(Math.abs(Math.exp(trie.wordLogProbs[trie.wordIndex().get("ab")]) - (0.2 + boost * 0.99)) < 1e-7);
  checkLookahead(trie);
});

test("a word the model or its keyboards cannot type is refused in one line, nothing added", () => {
  const trie = smallTrie();
  const user = new UserWords(trie, "abc", [abOnly]);
  assert.throws(() => user.add(["ab", "ad"]), new UserWordError("word 'ad': the model cannot write 'd' (its characters: abc)"));
  assert.throws(() => user.learn("ac"), new UserWordError("word 'ac': no key for 'c' on the model's keyboards (ab)"));
  assert.throws(() => checkSpelling("", "abc", []), /a word must be non-empty text, got ''/);
  assert.throws(() => user.add("ba", 0), /frequency must be a positive number/);
  assert.ok(!trie.has("ba") && !trie.has("ac"));
});

test("the user's words are saved as data and come back the same when loaded", async () => {
  const user = new UserWords(smallTrie(), "abc", [keyboard]);
  user.add(["cab"]);
  user.add("ca", 1e8);
  user.remove("b");
  user.learn("ab");
  user.learn("cab");
  user.learn("ab");
  const data = user.data();
  assert.deepEqual(Object.keys(data), ["format", "version", "added", "removed", "learned"]);
  assert.deepEqual(data.added, { cab: null, ca: 1e8 });
  assert.deepEqual(data.removed, ["b"]);
  assert.deepEqual(data.learned.map(([word]) => word), ["cab", "ab"]); // least recently learned first
  const trie = smallTrie();
  const loaded = new UserWords(trie, "abc", [keyboard]);
  loaded.load(readUserData(JSON.parse(JSON.stringify(data))));
  assert.deepEqual(loaded.data(), data);
  assert.deepEqual(await words(trie), ["a", "ab", "ca", "cab"]);
  for (const word of ["a", "ab", "b", "ca", "cab"]) {
    const [was, now] = [user.logProb(word), loaded.logProb(word)];
    assert.ok(was === now || Math.abs(was - now) < 1e-6, `${word}: ${was} ${now}`); // counts kept to 6 decimals
  }
});

test("user data of the wrong shape is refused in one line naming where it came from", () => {
  const good = { format: "swipe-user-data", version: 1, added: {}, removed: [], learned: [] };
  const cases = [
    [[], 'saved.json: not user data (no "format": "swipe-user-data")'],
    [{ ...good, version: 2 }, "saved.json: version 2 is not 1; fix or remove it"],
    [{ ...good, added: { cab: -1 } }, "saved.json: \"added\": word 'cab' has frequency -1 (a positive number or null); fix or remove it"],
    [{ ...good, added: ["cab"] }, 'saved.json: "added" must be an object of at most 20000 words; fix or remove it'],
    [{ ...good, removed: [3] }, 'saved.json: "removed" must be a list of at most 20000 words; fix or remove it'],
    [{ ...good, learned: [["ab", -1]] }, 'saved.json: "learned": ["ab",-1] is not a [word, count] pair (count 0 to 1e6); fix or remove it'],
  ];
  for (const [values, message] of cases) {
    assert.throws(() => readUserData(values, "saved.json"), (err) => err instanceof UserDataError && err.message === message);
  }
  assert.deepEqual(readUserData({ format: "swipe-user-data", version: 1 }), { added: new Map(), removed: [], learned: [] });
  // A word this model cannot type: refused as an added word is.
  const user = new UserWords(smallTrie(), "abc", [abOnly]);
  assert.throws(() => user.load(readUserData({ ...good, added: { cab: null } })), UserWordError);
});
