// The lexicon trie (pipeline.py's Trie and prior_increments): lexicon.npz's flat arrays.

/**
 * The lexicon as flat arrays. `children[node * V + token]`: the child node (-1: none; the <eos>
 * column of a node that ends a word points at the node itself); `lookahead[node]`: the best word
 * log-probability below the node; `endLogProb[node]`: that of the word ending there (-inf where
 * none does); `wordIds[node]`: its index into `words` (-1 where none).
 */
export class Trie {
  /**
   * @param {Int32Array} children  nodes * V
   * @param {number} numTokens  V
   * @param {Float32Array} lookahead
   * @param {Float32Array} endLogProb
   * @param {Int32Array} wordIds
   * @param {string[]} words
   */
  constructor(children, numTokens, lookahead, endLogProb, wordIds, words) {
    this.children = children;
    this.numTokens = numTokens;
    this.lookahead = lookahead;
    this.endLogProb = endLogProb;
    this.wordIds = wordIds;
    this.words = words;
    this.wordLogProbs = new Float32Array(words.length);
    for (let node = 0; node < wordIds.length; node++) {
      if (wordIds[node] >= 0) this.wordLogProbs[wordIds[node]] = endLogProb[node];
    }
    this.maxWordLength = words.reduce((most, word) => Math.max(most, [...word].length), 0);
    this.index = null;
  }

  /** The trie of lexicon.npz's arrays (readNpz's map). */
  static fromArrays(arrays) {
    const children = arrays.get("children");
    return new Trie(children.data, children.shape[1], arrays.get("lookahead").data,
      arrays.get("end_log_prob").data, arrays.get("word_ids").data, arrays.get("words").data);
  }

  child(node, token) {
    return this.children[node * this.numTokens + token];
  }

  /** Each word -> its index into `words`. */
  wordIndex() {
    if (this.index === null) this.index = new Map(this.words.map((word, i) => [word, i]));
    return this.index;
  }

  /** Float64 log relative frequencies of words of the trie. */
  logProbsOf(words) {
    const index = this.wordIndex();
    return Float64Array.from(words, (word) => this.wordLogProbs[index.get(word)]);
  }

  has(word) {
    return this.wordIndex().has(word);
  }
}

/**
 * `nodes.length * V` float32: how much each next token changes the best word log-probability
 * still reachable from each node (-inf for a token leaving the trie).
 */
export function priorIncrements(trie, nodes) {
  const v = trie.numTokens;
  const out = new Float32Array(nodes.length * v);
  for (let i = 0; i < nodes.length; i++) {
    const node = nodes[i];
    // The root counts as 0 (not its lookahead), so the first token adds its word's whole look-ahead.
    const here = node === 0 ? 0 : trie.lookahead[node];
    for (let token = 0; token < v; token++) {
      const child = trie.children[node * v + token];
      const target = child < 0 ? -Infinity : token === 0 ? trie.endLogProb[node] : trie.lookahead[child];
      out[i * v + token] = target - here; // rounded to float32 on storing, as numpy's float32 subtraction
    }
  }
  return out;
}
