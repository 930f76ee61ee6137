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
