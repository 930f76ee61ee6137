// The verbatim candidate (swipe/decoding/user_words.py's offer_verbatim): the network's best
// string without the lexicon, offered where no lexicon word scores well and the network is sure.

import { Pipeline, readSettings } from "./pipeline.mjs";

// Hypotheses of the verbatim search.
export const VERBATIM_BEAM = 4;

/** When and where the verbatim candidate is offered (VerbatimSettings; chosen for en_hws). */
export const DEFAULT_VERBATIM = Object.freeze({ lexicon_below: -7.0, verbatim_above: -0.3, position: 1 });

/** Each swipe's best string by the network alone, without the lexicon, its prior or templates:
 * [[score, string]], or [] where the search ends none. */
export async function verbatimRows(pipeline, swipes) {
  const settings = readSettings({ beam_size: VERBATIM_BEAM, num_candidates: 1, length_penalty: pipeline.settings.length_penalty });
  const free = new Pipeline(pipeline.backend, pipeline.vocabulary, pipeline.layouts, pipeline.prep, settings, null);
  return free.decode(swipes);
}

/**
 * `rows` (the pipeline's candidates of `swipes`) as {word, score, inLexicon} lists, with the
 * verbatim candidate (inLexicon false) of each swipe whose best candidate scores below
 * `settings.lexicon_below`, inserted at `settings.position` if it scores above
 * `settings.verbatim_above` and is no lexicon word. `settings` null: none is offered.
 */
export async function offerVerbatim(pipeline, swipes, rows, settings) {
  const out = rows.map((row) => row.map(([score, word]) => ({ word, score, inLexicon: true })));
  if (settings === null || pipeline.trie === null) return out;
  const which = [];
  rows.forEach((row, j) => { if (!row.length || row[0][0] < settings.lexicon_below) which.push(j); });
  if (!which.length) return out;
  const found = await verbatimRows(pipeline, which.map((j) => swipes[j]));
  which.forEach((j, k) => {
    const [best] = found[k];
    if (best && best[1] && best[0] > settings.verbatim_above && !pipeline.trie.has(best[1])) {
      out[j].splice(Math.min(settings.position, out[j].length), 0, { word: best[1], score: best[0], inLexicon: false });
    }
  });
  return out;
}

// ---- user words: added, removed and learned words (swipe/decoding/user_words.py) -----------------

// A word added without a frequency gets that of the lexicon word this far down the list, most
// frequent first (0.1: rank 5,000 of 50,000).
export const DEFAULT_RANK = 0.1;
// Most characters of a user word.
export const MAX_WORD_LENGTH = 40;
// Most user words (added) and removed words.
export const MAX_USER_WORDS = 20_000;
// Spare trie nodes reserved when the trie is first edited (more are made by doubling).
export const SPARE_NODES = 4096;

/** How UserWords.learn boosts chosen words (LearnSettings): `weight` the share of probability the
 * user's recent choices take in all, `decay` each learn event's factor on every count,
 * `max_learned` the most words remembered. */
export const DEFAULT_LEARN = Object.freeze({ weight: 0.2, decay: 0.99, max_learned: 1000 });

/** A word cannot be added (a character the model or its keyboards cannot type, too long, ...). */
export class UserWordError extends Error {}

/** Saved user data that cannot be applied: one line naming where it came from. */
export class UserDataError extends Error {}

// The user data format (swipe.decoding.user_words.UserData): what data() gives, what the demo
// server writes with --user-data FILE and `python -m swipe.runtime --user-data FILE` reads.
export const USER_DATA_FORMAT = "swipe-user-data";
export const USER_DATA_VERSION = 1;

/**
 * Saved user data (the parsed JSON of a user data file), checked as
 * swipe.decoding.user_words.read_user_data checks a file: {added: Map(word -> frequency or null),
 * removed: string[], learned: [word, count][]}.
 * @throws {UserDataError}  one line naming `where` and the field that is wrong
 */
export function readUserData(values, where = "user data") {
  const bad = (what) => new UserDataError(`${where}: ${what}; fix or remove it`);
  const isObject = (v) => typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isObject(values) || values.format !== USER_DATA_FORMAT) {
    throw new UserDataError(`${where}: not user data (no "format": "${USER_DATA_FORMAT}")`);
  }
  if (values.version !== USER_DATA_VERSION) throw bad(`version ${JSON.stringify(values.version)} is not ${USER_DATA_VERSION}`);
  const { added = {}, removed = [], learned = [] } = values;
  if (!isObject(added) || Object.keys(added).length > MAX_USER_WORDS) {
    throw bad(`"added" must be an object of at most ${MAX_USER_WORDS} words`);
  }
  for (const [word, frequency] of Object.entries(added)) {
    if (frequency !== null && !(typeof frequency === "number" && Number.isFinite(frequency) && frequency > 0)) {
      throw bad(`"added": word ${repr(word.slice(0, 40))} has frequency ${JSON.stringify(frequency)} (a positive number or null)`);
    }
  }
  if (!Array.isArray(removed) || removed.length > MAX_USER_WORDS || !removed.every((w) => typeof w === "string")) {
    throw bad(`"removed" must be a list of at most ${MAX_USER_WORDS} words`);
  }
  if (!Array.isArray(learned) || learned.length > MAX_USER_WORDS) {
    throw bad(`"learned" must be a list of at most ${MAX_USER_WORDS} [word, count] pairs`);
  }
  for (const item of learned) {
    if (!(Array.isArray(item) && item.length === 2 && typeof item[0] === "string" && typeof item[1] === "number"
          && item[1] >= 0 && item[1] <= 1e6)) {
      throw bad(`"learned": ${JSON.stringify(item).slice(0, 60)} is not a [word, count] pair (count 0 to 1e6)`);
    }
  }
  return { added: new Map(Object.entries(added)), removed: [...removed], learned: learned.map(([w, c]) => [w, c]) };
}

/** Python's repr of a string, as the Python decoder's messages write words. */
function repr(text) {
  if (typeof text !== "string") return JSON.stringify(text) ?? String(text);
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  return quote + text.replaceAll("\\", "\\\\").replaceAll(quote, `\\${quote}`) + quote;
}

/** `settings` (a part of DEFAULT_LEARN) checked and completed. */
export function learnSettings(settings = {}) {
  const s = { ...DEFAULT_LEARN, ...settings };
  if (!(s.weight >= 0 && s.weight < 1)) throw new RangeError(`learn weight must be in [0, 1), got ${s.weight}`);
  if (!(s.decay > 0 && s.decay < 1)) throw new RangeError(`learn decay must be in (0, 1), got ${s.decay}`);
  if (!(s.max_learned >= 1)) throw new RangeError(`max_learned must be at least 1, got ${s.max_learned}`);
  return Object.freeze(s);
}

/**
 * `word` if the model writes each of its characters and one of `layouts` has a key for it.
 * @throws {UserWordError}  naming the word and the first character that cannot be typed
 */
export function checkSpelling(word, alphabet, layouts) {
  if (typeof word !== "string" || !word) throw new UserWordError(`a word must be non-empty text, got ${repr(word)}`);
  const chars = [...word];
  if (chars.length > MAX_WORD_LENGTH) {
    throw new UserWordError(`word ${repr(chars.slice(0, 20).join(""))}...: longer than ${MAX_WORD_LENGTH} characters`);
  }
  for (const c of chars) {
    if (!alphabet.includes(c)) {
      throw new UserWordError(`word ${repr(word)}: the model cannot write ${repr(c)} (its characters: ${alphabet})`);
    }
    if (layouts.length && !layouts.some((layout) => layout.canType(c))) {
      const names = layouts.map((layout) => layout.name).join(", ");
      throw new UserWordError(`word ${repr(word)}: no key for ${repr(c)} on the model's keyboards (${names})`);
    }
  }
  return word;
}

function logaddexp(x, y) {
  if (x === y) return x + Math.LN2;
  const d = x - y;
  return d > 0 ? x + Math.log1p(Math.exp(-d)) : y + Math.log1p(Math.exp(d));
}

/**
 * Edits a Trie (trie.mjs) in place; a decoder using the trie sees each change at once. Every word
 * the trie ever held keeps its index into `trie.words`; a word not output (removed) is out of
 * `trie.wordIndex()` and its log-probability is -inf.
 */
export class TrieEditor {
  constructor(trie, alphabet) {
    this.trie = trie;
    this.ids = new Map([...alphabet].map((c, i) => [c, i + 1]));
    this.numNodes = trie.children.length / trie.numTokens;
    this.allIds = new Map(trie.wordIndex()); // every word ever held -> its index
    this.own = false; // whether the arrays are this editor's copies
    this.paths = new Map(); // reweigh()'s words' nodes, root first
    this.reserve(SPARE_NODES);
  }

  /** Room for `count` more nodes (rows of -1 / -inf); arrays are copied, never shared. */
  reserve(count) {
    const t = this.trie, v = t.numTokens;
    const have = t.children.length / v;
    if (this.numNodes + count <= have && this.own) return;
    this.own = true;
    const size = Math.max(this.numNodes + count, have + SPARE_NODES);
    const n = this.numNodes;
    const grown = (array, fill, width) => {
      const out = new array.constructor(size * width).fill(fill);
      out.set(array.subarray(0, n * width));
      return out;
    };
    t.children = grown(t.children, -1, v);
    t.lookahead = grown(t.lookahead, -Infinity, 1);
    t.endLogProb = grown(t.endLogProb, -Infinity, 1);
    t.wordIds = grown(t.wordIds, -1, 1);
  }

  /** The nodes from the root to `word`'s end (made where missing if `create`; else cut short
   * where the trie has no node). */
  path(word, create) {
    const v = this.trie.numTokens;
    const chars = [...word];
    const nodes = [0];
    for (const c of chars) {
      const token = this.ids.get(c);
      const at = nodes[nodes.length - 1] * v + token;
      let child = this.trie.children[at];
      if (child < 0) {
        if (!create) return nodes;
        if (this.numNodes >= this.trie.children.length / v) this.reserve(chars.length);
        child = this.numNodes++;
        this.trie.children[at] = child;
      }
      nodes.push(child);
    }
    return nodes;
  }

  /** Make each word output with its log-probability (-inf: not output), then repair the
   * look-ahead along every path touched. */
  setWords(words, logProbs) {
    const t = this.trie, v = t.numTokens;
    const index = t.wordIndex();
    const touched = new Map(); // node -> depth
    words.forEach((word, i) => {
      const logProb = logProbs[i];
      const live = logProb > -Infinity;
      this.paths.delete(word);
      const nodes = this.path(word, live);
      const length = [...word].length;
      if (nodes.length !== length + 1) return; // not in the trie, nothing to remove
      const end = nodes[nodes.length - 1];
      if (!this.allIds.has(word)) {
        this.allIds.set(word, t.words.length);
        t.words.push(word);
        const grown = new Float32Array(t.wordLogProbs.length + 1);
        grown.set(t.wordLogProbs);
        grown[t.wordLogProbs.length] = -Infinity;
        t.wordLogProbs = grown;
      }
      const wordId = this.allIds.get(word);
      t.wordLogProbs[wordId] = logProb;
      t.endLogProb[end] = logProb;
      t.children[end * v] = live ? end : -1;
      t.wordIds[end] = live ? wordId : -1;
      if (live) {
        index.set(word, wordId);
        t.maxWordLength = Math.max(t.maxWordLength, length);
      } else {
        index.delete(word);
      }
      nodes.forEach((node, depth) => touched.set(node, depth));
    });
    this.repair(touched);
    if (logProbs.some((logProb) => logProb === -Infinity)) this.prune(words);
  }

  /** New finite log-probabilities for words the trie outputs (each word's path is kept). */
  reweigh(words, logProbs) {
    if (!words.length) return;
    const t = this.trie;
    const touched = new Map();
    words.forEach((word, i) => {
      if (!this.paths.has(word)) this.paths.set(word, this.path(word, false));
      const nodes = this.paths.get(word);
      t.endLogProb[nodes[nodes.length - 1]] = logProbs[i];
      t.wordLogProbs[this.allIds.get(word)] = logProbs[i];
      nodes.forEach((node, depth) => { if (!touched.has(node)) touched.set(node, depth); });
    });
    this.repair(touched);
  }

  /** Recompute the look-ahead (best word log-probability below) of the nodes of `depths` (node ->
   * depth), deepest first: each from its own word and its children's look-ahead. */
  repair(depths) {
    if (!depths.size) return;
    const t = this.trie, v = t.numTokens;
    const byDepth = [];
    for (const [node, depth] of depths) (byDepth[depth] ??= []).push(node);
    for (let depth = byDepth.length - 1; depth >= 0; depth--) {
      for (const node of byDepth[depth] ?? []) {
        let best = t.endLogProb[node];
        for (let token = 1; token < v; token++) {
          const child = t.children[node * v + token];
          if (child >= 0 && t.lookahead[child] > best) best = t.lookahead[child];
        }
        t.lookahead[node] = best;
      }
    }
  }

  /** Cut the edges into branches that end no word any more, so the search never enters them. */
  prune(words) {
    const t = this.trie, v = t.numTokens;
    for (const word of words) {
      const chars = [...word];
      const nodes = this.path(word, false);
      for (let depth = nodes.length - 1; depth > 0; depth--) {
        if (t.lookahead[nodes[depth]] > -Infinity) break;
        t.children[nodes[depth - 1] * v + this.ids.get(chars[depth - 1])] = -1;
      }
    }
  }
}

/**
 * A user's words, removed words and learned choices, applied to a decoder's trie (edited in
 * place), in memory (UserWords of swipe/decoding/user_words.py without its file).
 *
 * @param trie  the decoder's lexicon trie
 * @param {string} alphabet  the characters the model writes (token i + 1 is alphabet[i])
 * @param layouts  the model's keyboards: a user word must be typeable on one of them
 * @param learn  a part of DEFAULT_LEARN
 */
export class UserWords {
  constructor(trie, alphabet, layouts, learn = {}) {
    this.alphabet = alphabet;
    this.layouts = [...layouts];
    this.learnSettings = learnSettings(learn);
    this.editor = new TrieEditor(trie, alphabet);
    this.lexiconLogProbs = new Map([...trie.wordIndex()].map(([word, i]) => [word, trie.wordLogProbs[i]]));
    const values = Float64Array.from(this.lexiconLogProbs.values()).sort().reverse();
    this.defaultLogProb = values.length ? values[Math.trunc(DEFAULT_RANK * (values.length - 1))] : -10.0;
    this.added = new Map(); // word -> frequency per billion words, or null
    this.removed = new Set();
    this.counts = new Map(); // word -> [count, at event], least recently learned first
    this.events = 0;
    this.synced = 0; // the learn event the trie's boosts are of
  }

  get trie() {
    return this.editor.trie;
  }

  /** Let the decoder output `words` (checked first: none is added if one is refused).
   * `frequency`: occurrences per billion words; null: a word of the lexicon keeps its own,
   * another gets that of the lexicon word at DEFAULT_RANK. */
  add(words, frequency = null) {
    if (frequency !== null && !(Number.isFinite(frequency) && frequency > 0)) {
      throw new UserWordError(`frequency must be a positive number (per billion words), got ${frequency}`);
    }
    words = asList(words).map((word) => checkSpelling(word, this.alphabet, this.layouts));
    const fresh = [...new Set(words)].filter((w) => !this.added.has(w) && !this.lexiconLogProbs.has(w));
    if (this.added.size + fresh.length > MAX_USER_WORDS) {
      throw new UserWordError(`at most ${MAX_USER_WORDS} user words; remove some first`);
    }
    for (const word of words) {
      this.removed.delete(word);
      if (!this.lexiconLogProbs.has(word) || frequency !== null) this.added.set(word, frequency);
    }
    this.apply(words);
  }

  /** Never output `words` (words the decoder does not know are ignored). */
  remove(words) {
    words = asList(words).filter((w) => typeof w === "string");
    const known = words.filter((w) => this.added.has(w) || this.lexiconLogProbs.has(w));
    if (this.removed.size + known.length > MAX_USER_WORDS) {
      throw new UserWordError(`at most ${MAX_USER_WORDS} removed words`);
    }
    for (const word of known) {
      this.added.delete(word);
      this.counts.delete(word);
      if (this.lexiconLogProbs.has(word)) this.removed.add(word);
    }
    this.apply(known);
  }

  /** Record that the user chose or typed `word`: it ranks higher from now on (a word the decoder
   * does not know is added first, one the user removed is output again). */
  learn(word) {
    word = checkSpelling(word, this.alphabet, this.layouts);
    if (this.removed.has(word) || (!this.lexiconLogProbs.has(word) && !this.added.has(word))) this.add([word]);
    const s = this.learnSettings;
    this.events += 1;
    const count = this.count(word);
    this.counts.delete(word);
    this.counts.set(word, [count + 1.0, this.events]);
    const forgotten = [];
    while (this.counts.size > s.max_learned) {
      const [oldest] = this.counts.keys();
      this.counts.delete(oldest);
      forgotten.push(oldest);
    }
    this.apply([word, ...forgotten]); // the others' decay waits for sync()
  }

  /** What to save: the user data format's JSON object (readUserData reads it back). */
  data() {
    return {
      format: USER_DATA_FORMAT,
      version: USER_DATA_VERSION,
      added: Object.fromEntries(this.added),
      removed: [...this.removed].sort(),
      learned: [...this.counts.keys()].map((word) => [word, Number(this.count(word).toFixed(6))]),
    };
  }

  /** Apply saved data (readUserData's; words this model cannot type are refused: UserWordError). */
  load(data) {
    const byFrequency = new Map();
    for (const [word, frequency] of data.added) {
      if (!byFrequency.has(frequency)) byFrequency.set(frequency, []);
      byFrequency.get(frequency).push(word);
    }
    for (const [frequency, words] of byFrequency) this.add(words, frequency);
    this.remove(data.removed);
    for (const [word, count] of data.learned.slice(-this.learnSettings.max_learned)) {
      if (!this.removed.has(word) && (this.added.has(word) || this.lexiconLogProbs.has(word))) {
        this.counts.set(word, [count, this.events]);
      }
    }
    this.synced = -1; // the loaded boosts are not in the trie yet
    this.sync();
  }

  /** `word`'s learned count now (decayed since it was last learned). */
  count(word) {
    if (!this.counts.has(word)) return 0.0;
    const [count, at] = this.counts.get(word);
    return count * this.learnSettings.decay ** (this.events - at);
  }

  /** `word`'s log-probability before learning (-inf: not output). */
  baseLogProb(word) {
    if (this.removed.has(word)) return -Infinity;
    const frequency = this.added.get(word);
    if (frequency !== undefined && frequency !== null) return Math.log(frequency / 1e9);
    if (this.lexiconLogProbs.has(word)) return this.lexiconLogProbs.get(word);
    return this.added.has(word) ? this.defaultLogProb : -Infinity;
  }

  /** `word`'s log-probability with its learned boost. */
  logProb(word) {
    const base = this.baseLogProb(word);
    const s = this.learnSettings;
    const boost = s.weight * (1.0 - s.decay) * this.count(word);
    if (base === -Infinity || boost <= 0) return base;
    return logaddexp(base, Math.log(boost));
  }

  apply(words) {
    this.editor.setWords(words, words.map((w) => this.logProb(w)));
  }

  /** Bring every learned word's decayed boost into the trie (called before each decode). */
  sync() {
    if (this.synced === this.events) return;
    const s = this.learnSettings;
    const words = [...this.counts.keys()];
    const logProbs = words.map((word) => {
      const [count, at] = this.counts.get(word);
      const boost = s.weight * (1.0 - s.decay) * count * s.decay ** (this.events - at);
      return logaddexp(this.baseLogProb(word), Math.log(boost));
    });
    this.editor.reweigh(words, logProbs);
    this.synced = this.events;
  }
}

function asList(words) {
  return typeof words === "string" ? [words] : [...words];
}
