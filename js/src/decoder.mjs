// The reference decoder of an ONNX export folder (swipe/runtime/decoder.py's OnnxDecoder).

import { OnnxBackend } from "./backend.mjs";
import { OnnxFolderError, folderReader, readExportFolder } from "./folder.mjs";
import { Pipeline, readSettings } from "./pipeline.mjs";
import { SwipeError, checkSwipe } from "./swipe.mjs";
import { Trie } from "./trie.mjs";
import { DEFAULT_VERBATIM, UserDataError, UserWordError, UserWords, offerVerbatim, readUserData } from "./user_words.mjs";

/** Decodes swipes with an ONNX folder; made by loadDecoder. */
export class OnnxDecoder {
  constructor(exported, pipeline, verbatim = null) {
    this.export = exported;
    this.manifest = exported.manifest;
    this.settings = pipeline.settings;
    this.layouts = new Map(exported.layouts.map((layout) => [layout.name, layout]));
    this.pipeline = pipeline;
    this.verbatim = verbatim;
    this.userWordsMade = null;
  }

  /** The user's added, removed and learned words (user_words.mjs; made on first use, in memory). */
  get userWords() {
    this.userWordsMade ??= new UserWords(this.pipeline.trie, this.export.alphabet, this.export.layouts);
    return this.userWordsMade;
  }

  /**
   * Let the decoder output `words` from the next decode on.
   * @param {string | string[]} words
   * @param {number | null} frequency  occurrences per billion words; null: a lexicon word keeps its
   *   own, another gets that of the lexicon word 10 % down the list
   * @throws {UserWordError}  one line naming a word the model or its keyboards cannot type (none is added)
   */
  addWords(words, frequency = null) {
    this.userWords.add(words, frequency);
  }

  /** Never output `words` (words the decoder does not know are ignored). */
  removeWords(words) {
    this.userWords.remove(words);
  }

  /** Record that the user chose or typed `word`: similar swipes rank it higher (added if new). */
  learn(word) {
    this.userWords.learn(word);
  }

  /**
   * The user's added, removed and learned words, to keep (JSON; the format of the user data files
   * the demo server writes with `--user-data` and `python -m swipe.runtime --user-data` reads).
   */
  userData() {
    return this.userWords.data();
  }

  /**
   * Apply saved user data: userData()'s, or a user data file's parsed JSON.
   * @param {string} where  where it came from, for the message of a UserDataError
   * @throws {UserDataError}  one line naming `where`: a field of the wrong type, or a word this
   *   model or its keyboards cannot type
   */
  loadUserData(values, where = "user data") {
    const data = readUserData(values, where);
    try {
      this.userWords.load(data);
    } catch (err) {
      throw err instanceof UserWordError ? new UserDataError(`${where}: ${err.message}; fix or remove it`) : err;
    }
  }

  /**
   * The candidates of one swipe, best first.
   * @param {{x: number[], y: number[], t: number[], layout: string}} swipe  pixels of its layout, ms
   * @returns {Promise<{word: string, score: number, inLexicon: boolean}[]>}  higher scores are
   *   better; inLexicon false: the verbatim candidate (where the `verbatim` option offers it)
   */
  async decode(swipe) {
    const [row] = await this.decodeMany([swipe]);
    return row;
  }

  /** The candidates of each swipe (decoded as one batch), as decode's. */
  async decodeMany(swipes) {
    const checked = this.check(swipes);
    this.userWordsMade?.sync();
    return offerVerbatim(this.pipeline, checked, await this.pipeline.decode(checked), this.verbatim);
  }

  /** Swipes checked as every reader checks them (an OnnxFolderError naming the problem). */
  check(swipes) {
    const checked = swipes.map((swipe) => {
      if (!this.pipeline.layoutIds.has(swipe.layout)) {
        throw new OnnxFolderError(`layout '${swipe.layout}' is not one of the model's [${[...this.layouts.keys()].join(", ")}]`);
      }
      try {
        return { ...checkSwipe(swipe.x, swipe.y, swipe.t), layout: swipe.layout };
      } catch (err) {
        throw err instanceof SwipeError ? new OnnxFolderError(err.message) : err;
      }
    });
    return checked;
  }
}

/**
 * Load the decoder of an ONNX export folder (`python -m swipe.export MODEL --format onnx --out DIR`).
 *
 * @param source  the folder: a path in Node, a URL in a browser, or async (name) => Uint8Array
 * @param options  {ort, int8 = false, threads = 1, settings = {}, verbatim = null}: `ort` the
 *   onnxruntime module (onnxruntime-node or onnxruntime-web); `settings` overrides of
 *   decoding.json's values (beam_size, prior_weight, length_penalty, template_weight, ...);
 *   `verbatim` true (or {lexicon_below, verbatim_above, position}) offers the network's best
 *   string without the lexicon where no lexicon word scores well
 * @returns {Promise<OnnxDecoder>}
 * @throws {OnnxFolderError}  the first problem of the folder, one line naming the file and field
 */
export async function loadDecoder(source, { ort, int8 = false, threads = 1, settings = {}, verbatim = null } = {}) {
  if (!ort?.InferenceSession) throw new TypeError("loadDecoder: pass the onnxruntime module as { ort }");
  const where = typeof source === "function" ? "" : `${source}`.replace(/\/?$/, "/");
  let exported;
  try {
    exported = await readExportFolder(ort, folderReader(source), { int8, threads, overrides: settings });
  } catch (err) {
    throw err instanceof OnnxFolderError ? new OnnxFolderError(`${where}${err.message}`) : err;
  }
  const chosen = readSettings(exported.decoding);
  const numTokens = [...exported.alphabet].length + 1;
  const vocabulary = { alphabet: exported.alphabet, eosId: exported.eosId, sosId: exported.sosId };
  const prep = { resample: exported.resample, maxPoints: exported.maxPoints };
  const trie = Trie.fromArrays(exported.lexicon);
  const backend = new OnnxBackend(ort, exported.encoder, exported.decoderStep, exported.manifest.graphs, numTokens,
    exported.decoderScore);
  const templates = chosen.template_weight || chosen.template_candidates ? await import("./templates.mjs") : null;
  const pipeline = new Pipeline(backend, vocabulary, exported.layouts, prep, chosen, trie, templates);
  const offered = verbatim ? { ...DEFAULT_VERBATIM, ...(verbatim === true ? {} : verbatim) } : null;
  return new OnnxDecoder(exported, pipeline, offered);
}
