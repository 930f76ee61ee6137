// The decoding pipeline (swipe/decoding/pipeline.py), written to match it line by line: swipes in,
// ranked candidate words out. Only the network differs, behind a backend (backend.mjs).
//
// Arithmetic as numpy's: network outputs and next-token scores are float32 (Float32Array,
// Math.fround), hypothesis scores float64 sums; ties broken as numpy's stable sorts break them.
// A candidate is [score, word] (higher scores are better); a row is one swipe's, best first.

import { preprocess } from "./preprocess.mjs";
import { priorIncrements } from "./trie.mjs";

// Longest output (tokens, <eos> included) when there is no lexicon to bound it.
export const DEFAULT_MAX_LENGTH = 40;

/** What the pipeline does (a model's decoding.json; pipeline.py's Settings). */
export const DEFAULT_SETTINGS = Object.freeze({
  beam_size: 8,
  num_candidates: null,
  prior_weight: 0.0,
  length_penalty: 0.5,
  max_length: null,
  template_weight: 0.0,
  template_prior_weight: 1.0,
  x_scales: [1.0],
  views_below: null,
  views_margin: null,
  views_beam_size: null,
  wide_x_scales: [],
  template_candidates: 0,
  templates_below: null,
});

/** The pipeline's settings from the values of a folder's decoding.json (decoder.py's read_settings). */
export function readSettings(values) {
  values = { ...values, ...(values.not_applied ?? {}) }; // folders exported before every stage ran here
  const settings = { ...DEFAULT_SETTINGS };
  for (const [name, value] of Object.entries(values)) {
    if (name in DEFAULT_SETTINGS && value !== null && value !== undefined) settings[name] = value;
  }
  return settings;
}

/** Log-probabilities of each row of `logits` (rows of `v`), float32 as numpy's. */
export function logSoftmax(logits, v) {
  const out = new Float32Array(logits.length);
  const exps = new Float32Array(v);
  for (let base = 0; base < logits.length; base += v) {
    let max = -Infinity;
    for (let k = 0; k < v; k++) max = Math.max(max, logits[base + k]);
    for (let k = 0; k < v; k++) {
      out[base + k] = logits[base + k] - max;
      exps[k] = Math.exp(out[base + k]);
    }
    const log = Math.fround(Math.log(pairwiseSum(exps, 0, v)));
    for (let k = 0; k < v; k++) out[base + k] = out[base + k] - log;
  }
  return out;
}

/** numpy's float32 pairwise summation of values[start:start + n]. */
export function pairwiseSum(values, start, n) {
  const f = Math.fround;
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res = f(res + values[start + i]);
    return res;
  }
  if (n <= 128) {
    const r = Array.from({ length: 8 }, (_, j) => values[start + j]);
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j] = f(r[j] + values[start + i + j]);
    let res = f(f(f(r[0] + r[1]) + f(r[2] + r[3])) + f(f(r[4] + r[5]) + f(r[6] + r[7])));
    for (; i < n; i++) res = f(res + values[start + i]);
    return res;
  }
  let half = Math.floor(n / 2);
  half -= half % 8;
  return f(pairwiseSum(values, start, half) + pairwiseSum(values, start + half, n - half));
}

/** One swipe's candidates from several views of it: each word with its best score, best first
 * (ties: the order first listed), at most as many as the longest view's list. */
export function mergeViews(rows) {
  const best = new Map();
  for (const row of rows) {
    for (const [score, word] of row) {
      if (!best.has(word) || score > best.get(word)) best.set(word, score);
    }
  }
  const ranked = [...best].sort((a, b) => b[1] - a[1]); // stable: first-listed order kept
  const most = Math.max(0, ...rows.map((row) => row.length));
  return ranked.slice(0, most).map(([word, score]) => [score, word]);
}

/** Indices of the rows whose best score is below `threshold` (or that have no candidate) and, if
 * `margin` is given, whose best two scores are less than `margin` apart (one candidate: any). */
export function scoringBelow(rows, threshold, margin = null) {
  const out = [];
  rows.forEach((row, j) => {
    if (!row.length || (row[0][0] < threshold
        && (margin === null || row.length < 2 || row[0][0] - row[1][0] < margin))) out.push(j);
  });
  return out;
}

/** Whether points `x` reach more than a key width past the keyboard's right edge. */
export function reachesPastKeyboard(layout, x) {
  let max = -Infinity;
  for (const v of x) max = Math.max(max, v);
  return x.length > 0 && max > layout.width + layout.keyWidth;
}

function sameScales(a, b) {
  return a.length === b.length && a.every((s, i) => s === b[i]);
}

/**
 * Decodes swipes with a backend, as the settings say.
 *
 * @param backend  the network (backend.mjs's OnnxBackend)
 * @param vocabulary  {alphabet, eosId, sosId}: <eos> (0), then the alphabet (1 ..)
 * @param layouts  the model's layouts, in layout-id order
 * @param prep  {resample: {mode, step, keep_time} | null, maxPoints: number | null}
 * @param settings  readSettings(...)
 * @param trie  the lexicon (trie.mjs), or null: any string of the alphabet
 * @param templates  the module templates.mjs where template_weight or template_candidates are set
 */
export class Pipeline {
  constructor(backend, vocabulary, layouts, prep, settings, trie, templates = null) {
    if (trie === null && (settings.prior_weight || settings.template_candidates)) {
      throw new Error("a word-frequency prior and template candidates need a lexicon");
    }
    if (templates === null && (settings.template_weight || settings.template_candidates)) {
      throw new Error("template_weight and template_candidates need the module templates.mjs");
    }
    this.backend = backend;
    this.vocabulary = vocabulary;
    this.layouts = [...layouts];
    this.layoutIds = new Map(this.layouts.map((layout, i) => [layout.name, i]));
    this.prep = prep;
    this.settings = settings;
    this.trie = trie;
    this.templates = templates;
    this.numCandidates = settings.num_candidates || settings.beam_size;
    this.rescorer = settings.template_weight
      ? new templates.TemplateRescorer(settings.template_weight, settings.template_prior_weight) : null;
    this.ids = new Map([...vocabulary.alphabet].map((c, i) => [c, i + 1]));
    this.matchers = new Map(); // per layout, built at first use
  }

  /** Most output tokens, <eos> included. */
  get maxLength() {
    return this.settings.max_length || (this.trie !== null ? this.trie.maxWordLength + 1 : DEFAULT_MAX_LENGTH);
  }

  /** The layout `swipe` was drawn on. */
  layout(swipe) {
    return this.layouts[this.layoutIds.get(swipe.layout)];
  }

  // -- the stages -------------------------------------------------------------------------------

  /** Each swipe's candidates, best first. */
  async decode(swipes) {
    const s = this.settings;
    if (!swipes.length) return [];
    const first = s.views_below === null ? s.x_scales : [1.0];
    let [rows, memory] = await this.views(swipes, first);
    if (!sameScales(first, [1.0])) memory = null; // not the swipes as drawn, which the template candidates read
    if (s.views_below !== null) {
      const others = s.x_scales.filter((scale) => scale !== 1.0);
      await this.addViews(swipes, rows, scoringBelow(rows, s.views_below, s.views_margin), others);
    }
    if (s.wide_x_scales.length) {
      const wide = [];
      swipes.forEach((swipe, j) => { if (reachesPastKeyboard(this.layout(swipe), swipe.x)) wide.push(j); });
      await this.addViews(swipes, rows, wide, s.wide_x_scales);
    }
    if (s.template_candidates) {
      const below = s.templates_below !== null ? s.templates_below : s.views_below === null ? Infinity : s.views_below;
      // Also the swipes drawn through key centres: a beam that missed such a word is rare but the
      // templates know it.
      const which = new Set(scoringBelow(rows, below));
      swipes.forEach((swipe, j) => {
        if (this.rescorer !== null && this.rescorer.mayBePrecise(this.layout(swipe), swipe.x, swipe.y)) which.add(j);
      });
      await this.addTemplateCandidates(swipes, rows, [...which].sort((a, b) => a - b), memory);
    }
    return rows;
  }

  /** Candidates of `swipes`, each word with its best score over the views `xScales` (every view
   * of every swipe in one encoder call and one search of `beamSize`, null: the settings'), and
   * the views' memory. */
  async views(swipes, xScales, beamSize = null) {
    const views = [];
    for (const scale of xScales) for (const swipe of swipes) views.push([swipe, scale]);
    const memory = await this.encode(views);
    let found = await this.search(memory, views.length, beamSize);
    if (this.rescorer !== null) found = this.rescoreRows(found, views);
    const n = swipes.length;
    const rows = swipes.map((_, j) => (xScales.length > 1
      ? mergeViews(found.filter((_, i) => i % n === j)) : found[j]));
    return [rows, memory];
  }

  /** Merge views `xScales` of swipes `which` into their rows. */
  async addViews(swipes, rows, which, xScales) {
    if (!which.length || !xScales.length) return;
    const [extra] = await this.views(which.map((j) => swipes[j]), xScales, this.settings.views_beam_size);
    which.forEach((j, k) => { rows[j] = mergeViews([rows[j], extra[k]]); });
  }

  /** For swipes `which`, the words the template matcher proposes that the search did not find,
   * scored by the model as the search would have (as drawn), re-ranked and merged in. */
  async addTemplateCandidates(swipes, rows, which, memory = null) {
    const proposals = which.map((j) => {
      const matcher = this.matcher(this.layout(swipes[j]));
      const found = new Set(rows[j].map(([, word]) => word));
      const words = matcher === null ? [] : matcher.decode(swipes[j].x, swipes[j].y).map(([, word]) => word);
      return words.filter((word) => !found.has(word));
    });
    const busy = [];
    proposals.forEach((words, k) => { if (words.length) busy.push(k); });
    if (!busy.length) return;
    if (memory !== null) memory = this.backend.take(memory, busy.map((k) => which[k]));
    else memory = await this.encode(busy.map((k) => [swipes[which[k]], 1.0]));
    let scored = await this.scoreWords(memory, busy.map((k) => proposals[k]));
    if (this.rescorer !== null) scored = this.rescoreRows(scored, busy.map((k) => [swipes[which[k]], 1.0]));
    busy.forEach((k, i) => {
      const j = which[k];
      rows[j] = mergeViews([rows[j], scored[i]]).slice(0, this.numCandidates);
    });
  }

  /** The template matcher of `layout`; null where it can type no lexicon word. */
  matcher(layout) {
    if (!this.matchers.has(layout.name)) {
      const lexicon = { words: this.trie.words, frequencies: Float64Array.from(this.trie.wordLogProbs, Math.exp) };
      try {
        this.matchers.set(layout.name, new this.templates.Shark2Decoder(
          layout, lexicon, { topK: this.settings.template_candidates }));
      } catch (err) {
        if (!(err instanceof this.templates.NoTemplatesError)) throw err;
        this.matchers.set(layout.name, null);
      }
    }
    return this.matchers.get(layout.name);
  }

  /** Each row of `rows` re-ranked by how well its view ([swipe, x scale]: the swipe drawn that
   * many times as wide) matches each word's key template; row by row, the same rows as Python's
   * one pass. */
  rescoreRows(rows, views) {
    return rows.map((row, i) => {
      const [swipe, xScale] = views[i];
      const priors = this.trie === null ? null : this.trie.logProbsOf(row.map(([, word]) => word));
      const x = Float64Array.from(swipe.x, (v) => v * xScale);
      return this.rescorer.rescore(row, this.layout(swipe), x, Float64Array.from(swipe.y), priors);
    });
  }

  // -- the network ------------------------------------------------------------------------------

  /** The backend's memory of each [swipe, x scale] view. */
  async encode(views) {
    const curves = views.map(([swipe, scale]) => preprocess(swipe, this.layout(swipe), this.prep, scale));
    const lengths = curves.map((c) => c.length / 3);
    const longest = Math.max(...lengths);
    const points = new Float32Array(curves.length * longest * 3);
    curves.forEach((c, i) => points.set(c, i * longest * 3));
    const layoutIds = views.map(([swipe]) => this.layoutIds.get(swipe.layout));
    return this.backend.encode(points, [curves.length, longest, 3], lengths, layoutIds);
  }

  /** `nodes.length * V` float32 scores of each next token: the model's log-probability, -inf
   * where no lexicon word continues, plus the prior's increment. */
  nextScores(logProbs, nodes) {
    if (this.trie === null) return logProbs;
    const v = this.trie.numTokens;
    const out = new Float32Array(logProbs.length);
    const children = this.trie.children;
    for (let i = 0; i < nodes.length; i++) {
      for (let k = 0; k < v; k++) out[i * v + k] = children[nodes[i] * v + k] >= 0 ? logProbs[i * v + k] : -Infinity;
    }
    if (this.settings.prior_weight) {
      const weight = Math.fround(this.settings.prior_weight);
      const prior = priorIncrements(this.trie, nodes);
      for (let i = 0; i < out.length; i++) out[i] = out[i] + Math.fround(weight * prior[i]);
    }
    return out;
  }

  /** A finished word's score: total / numTokens ** length_penalty. */
  normalise(total, numTokens) {
    const penalty = this.settings.length_penalty;
    return penalty ? total / numTokens ** penalty : total;
  }

  /**
   * Beam search over all curves at once: per curve up to numCandidates words, best first.
   *
   * The hypotheses of the curves still searched sit in a (curves, width) grid of slots: each
   * curve's in rank order, then empty slots (score -inf) up to the most any curve has. A
   * hypothesis' score is the float64 sum of its tokens' scores (nextScores). Each step every
   * curve keeps its `budget` best one-token extensions (beam_size minus the words it has
   * finished; ties to the lower slot, then token); an extension by <eos> finishes a word.
   */
  async search(memory, numCurves, beamSize = null) {
    const { alphabet, eosId: eos, sosId } = this.vocabulary;
    const letters = [...alphabet];
    const v = letters.length + 1;
    const maxLength = this.maxLength;
    let active = Array.from({ length: numCurves }, (_, c) => c); // the curves still searched
    let width = 1;
    let tokens = active.map(() => [[]]); // each slot's tokens so far
    let scores = new Float64Array(numCurves);
    let nodes = new Int32Array(numCurves); // trie nodes; the root for empty slots
    let last = new Int32Array(numCurves).fill(sosId);
    const budget = new Array(numCurves).fill(beamSize || this.settings.beam_size);
    const finished = active.map(() => []);
    let order = 0; // between equal scores, the word finished first ranks first
    let state = null;
    for (let position = 0; position < maxLength; position++) {
      let logProbs;
      [logProbs, state] = await this.backend.step(last, [active.length, width], memory, state);
      const nextScores = this.nextScores(logProbs, nodes);
      const numTokens = position + 1;
      const live = []; // per active curve: [slot, token, score]
      for (let a = 0; a < active.length; a++) {
        const c = active[a];
        const choices = []; // a curve's choices are indexed slot * V + token
        for (let index = 0; index < width * v; index++) {
          const score = scores[a * width + Math.floor(index / v)] + nextScores[a * width * v + index];
          if (score > -Infinity) choices.push([index, score]);
        }
        choices.sort((p, q) => q[1] - p[1] || p[0] - q[0]);
        const row = [];
        for (const [index, score] of choices.slice(0, budget[c])) {
          const slot = Math.floor(index / v), token = index % v;
          if (token === eos) {
            const word = tokens[a][slot].map((i) => letters[i - 1]).join("");
            finished[c].push([this.normalise(score, numTokens), order, word]);
            order += 1;
            budget[c] -= 1;
          } else {
            row.push([slot, token, score]);
          }
        }
        live.push(row);
      }
      const keep = [];
      live.forEach((row, a) => { if (row.length) keep.push(a); });
      if (!keep.length || numTokens >= maxLength) break;
      // The next grid: each kept curve's live hypotheses, then empty slots (parent -1).
      const oldWidth = width;
      width = Math.max(...keep.map((a) => live[a].length));
      const parents = new Int32Array(keep.length * width).fill(-1);
      const nextLast = new Int32Array(keep.length * width).fill(eos);
      const nextScoresGrid = new Float64Array(keep.length * width).fill(-Infinity);
      const nextNodes = new Int32Array(keep.length * width);
      const nextTokens = [];
      keep.forEach((a, i) => {
        const slots = [];
        for (let j = 0; j < width; j++) {
          const hypothesis = live[a][j];
          const k = i * width + j;
          if (hypothesis) [parents[k], nextLast[k], nextScoresGrid[k]] = hypothesis;
          const from = Math.max(parents[k], 0);
          slots.push([...tokens[a][from], nextLast[k]]);
          if (this.trie !== null && parents[k] >= 0) nextNodes[k] = this.trie.child(nodes[a * oldWidth + from], nextLast[k]);
        }
        nextTokens.push(slots);
      });
      [tokens, last, scores, nodes] = [nextTokens, nextLast, nextScoresGrid, nextNodes];
      const dropped = keep.length < active.length ? keep : null;
      if (dropped !== null) {
        memory = this.backend.take(memory, dropped);
        active = dropped.map((a) => active[a]);
      }
      state = this.backend.reorder(state, dropped, parents, [keep.length, width]);
    }
    return finished.map((words) => {
      words.sort((p, q) => q[0] - p[0] || p[1] - q[1]);
      return words.slice(0, this.numCandidates).map(([score, , word]) => [score, word]);
    });
  }

  /** `word`'s token ids; empty where the alphabet cannot spell it. */
  spelling(word) {
    const ids = [...word].map((c) => this.ids.get(c) ?? -1);
    return ids.length && Math.min(...ids) > 0 ? ids : [];
  }

  /**
   * The scores the search gives words `words[c]` of curve `c` (whose memory is row `c` of
   * `memory`), best first: every word a hypothesis, stepped along its spelling with the search's
   * own arithmetic (its log-probabilities from one backend.score call where it gives them, not null).
   * Words the search cannot output are left out.
   */
  async scoreWords(memory, words) {
    const maxLength = this.maxLength;
    const spelled = words.map((curveWords) => [...new Set(curveWords)]
      .map((word) => [word, this.spelling(word)])
      .filter(([word, ids]) => ids.length && ids.length + 1 <= maxLength && (this.trie === null || this.trie.has(word))));
    const keep = [];
    spelled.forEach((ok, c) => { if (ok.length) keep.push(c); });
    const out = words.map(() => []);
    if (!keep.length) return out;
    if (keep.length < words.length) memory = this.backend.take(memory, keep);
    const width = Math.max(...keep.map((c) => spelled[c].length));
    const length = Math.max(...keep.flatMap((c) => spelled[c].map(([, ids]) => ids.length))) + 1;
    const { eosId: eos, sosId } = this.vocabulary;
    const v = this.vocabulary.alphabet.length + 1;
    const n = keep.length * width;
    const targets = new Int32Array(n * length).fill(eos); // each word, then <eos>
    const wordLengths = new Int32Array(n).fill(-1); // tokens before <eos>; -1: no word
    keep.forEach((c, i) => spelled[c].forEach(([, ids], j) => {
      targets.set(ids, (i * width + j) * length);
      wordLengths[i * width + j] = ids.length;
    }));
    const inputs = new Int32Array(n * length);
    for (let k = 0; k < n; k++) {
      inputs[k * length] = sosId;
      inputs.set(targets.subarray(k * length, (k + 1) * length - 1), k * length + 1);
    }
    // Every token's log-probabilities (n * length * V): one call where the backend can, else one
    // decoder step a token (at the first, one hypothesis per curve, which every word continues).
    let logProbs = await this.backend.score(inputs, [keep.length, width, length], memory);
    if (logProbs === null) {
      logProbs = new Float32Array(n * length * v);
      let state = null;
      for (let position = 0; position < length; position++) {
        const last = position ? inputs.filter((_, i) => i % length === position) : new Int32Array(keep.length).fill(sosId);
        let step;
        [step, state] = await this.backend.step(last, [keep.length, position ? width : 1], memory, state);
        for (let k = 0; k < n; k++) {
          const from = (position ? k : Math.floor(k / width)) * v;
          logProbs.set(step.subarray(from, from + v), (k * length + position) * v);
        }
        if (position + 1 < length) { // each slot continues its own word
          const parents = new Int32Array(n);
          if (position) for (let k = 0; k < n; k++) parents[k] = k % width;
          state = this.backend.reorder(state, null, parents, [keep.length, width]);
        }
      }
    }
    // The trie node before each token, then every token's score as the search gives it.
    const nodes = new Int32Array(n * length);
    if (this.trie !== null) {
      for (let i = 0; i < n * length; i++) {
        if (i % length) nodes[i] = Math.max(this.trie.child(nodes[i - 1], targets[i - 1]), 0);
      }
    }
    const scores = this.nextScores(logProbs, nodes);
    const totals = new Float64Array(n); // float64, summed token by token as the search's scores
    for (let k = 0; k < n; k++) {
      for (let i = k * length; i <= k * length + wordLengths[k]; i++) totals[k] += scores[i * v + targets[i]];
    }
    keep.forEach((c, i) => {
      const row = spelled[c].map(([word, ids], j) => [this.normalise(totals[i * width + j], ids.length + 1), word]);
      out[c] = row.sort((p, q) => q[0] - p[0]);
    });
    return out;
  }
}
