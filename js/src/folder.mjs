// Reading an ONNX export folder (swipe/runtime/folder.py), its files checked before anything is
// decoded: a problem is an OnnxFolderError whose message is one line naming the file and field.

import { readLayouts } from "./keyboard.mjs";
import { readNpz } from "./npz.mjs";

export const FORMAT = "swipe-onnx";
export const VERSION = 1;
const MAX_LENGTH = 256;
const MAX_BEAM = 1024;
const RESAMPLE_STEPS = { time: [1.0, 1000.0], path: [0.01, 10.0] };
const MAX_POINTS = 4096;
const ENCODER_INPUTS = ["points", "lengths", "layout_ids"];

export class OnnxFolderError extends Error {}

/** A function reading a file of the folder by name: fs in Node, fetch in a browser. */
export function folderReader(source) {
  if (typeof source === "function") return source;
  const inNode = typeof process !== "undefined" && Boolean(process.versions?.node);
  const isUrl = source instanceof URL || /^[a-z][a-z0-9+.-]*:\/\//i.test(source) || !inNode;
  if (isUrl) {
    const base = new URL(String(source).endsWith("/") ? String(source) : `${source}/`,
      typeof location !== "undefined" ? location.href : undefined);
    return async (name) => {
      const response = await fetch(new URL(name, base));
      if (!response.ok) throw new OnnxFolderError(`${name}: cannot read it (HTTP ${response.status} from ${base})`);
      return new Uint8Array(await response.arrayBuffer());
    };
  }
  return async (name) => {
    const [{ readFile }, { join }] = await Promise.all([import("node:fs/promises"), import("node:path")]);
    try {
      return new Uint8Array(await readFile(join(source, name)));
    } catch (err) {
      throw new OnnxFolderError(`${name}: cannot read it (${err.code ?? err.message})`);
    }
  };
}

/** Typed access to a JSON object's fields; a problem is one line naming the file and field. */
class Fields {
  constructor(file, values, prefix = "") {
    this.file = file;
    this.prefix = prefix;
    if (!values || typeof values !== "object" || Array.isArray(values)) throw this.error("", "must be a JSON object");
    this.values = values;
  }

  error(name, problem) {
    const field = `${this.prefix}${name}`;
    return new OnnxFolderError(`${this.file}: ${field ? `${field}: ` : ""}${problem}`);
  }

  get(name, kind, optional = false) {
    const value = this.values[name];
    if (value === undefined || (value === null && optional)) {
      if (optional) return null;
      throw this.error(name, "missing");
    }
    const ok = { integer: Number.isInteger(value), number: typeof value === "number" && Number.isFinite(value),
      string: typeof value === "string", boolean: typeof value === "boolean", list: Array.isArray(value),
      object: value !== null && typeof value === "object" && !Array.isArray(value) }[kind];
    if (!ok) throw this.error(name, `must be ${optional ? "null or " : ""}${kind === "integer" ? "a whole number" : `a ${kind}`}, not ${JSON.stringify(value)}`);
    return value;
  }

  integer(name, low, high, optional = false) {
    const value = this.get(name, "integer", optional);
    if (value !== null && !(low <= value && value <= high)) throw this.error(name, `must be ${low} to ${high}, not ${value}`);
    return value;
  }

  number(name, low = -Infinity, high = Infinity, optional = false) {
    const value = this.get(name, "number", optional);
    if (value !== null && !(low <= value && value <= high)) throw this.error(name, `must be a finite number from ${low} to ${high}, not ${value}`);
    return value;
  }

  names(name) {
    const value = this.get(name, "list");
    if (!value.every((v) => typeof v === "string" && v) || new Set(value).size !== value.length) {
      throw this.error(name, "must be a list of distinct names");
    }
    return value;
  }

  child(name) {
    return new Fields(this.file, this.get(name, "object"), `${this.prefix}${name}.`);
  }
}

async function readJson(read, name) {
  const bytes = await read(name);
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new OnnxFolderError(`${name}: not valid JSON (${err.message})`);
  }
}

function readDecoding(values, overrides) {
  const merged = { ...new Fields("decoding.json", values).values };
  for (const [name, value] of Object.entries(overrides)) if (value !== null && value !== undefined) merged[name] = value;
  const fields = new Fields("decoding.json", merged);
  fields.integer("beam_size", 1, MAX_BEAM);
  fields.integer("num_candidates", 0, MAX_BEAM, true);
  fields.integer("max_length", 1, MAX_LENGTH, true);
  fields.number("prior_weight", 0.0, 1e3);
  fields.number("length_penalty", -10.0, 10.0);
  fields.number("template_weight", 0.0, 1e3, true);
  fields.number("template_prior_weight", -1e3, 1e3, true);
  fields.number("views_below", -Infinity, Infinity, true);
  fields.number("views_margin", -Infinity, Infinity, true);
  fields.integer("views_beam_size", 1, MAX_BEAM, true);
  fields.number("templates_below", -Infinity, Infinity, true);
  fields.integer("template_candidates", 0, 10000, true);
  const notApplied = fields.get("not_applied", "object", true) ?? {};
  for (const name of ["x_scales", "wide_x_scales"]) {
    const scales = merged[name] ?? notApplied[name];
    if (scales != null && !(Array.isArray(scales) && scales.length <= 64
        && scales.every((s) => typeof s === "number" && s >= 0.1 && s <= 10))) {
      throw fields.error(name, `must be at most 64 numbers from 0.1 to 10, not ${JSON.stringify(scales)}`);
    }
  }
  return merged;
}

function checkLexicon(arrays, numTokens, name = "lexicon.npz") {
  for (const key of ["children", "lookahead", "end_log_prob", "word_ids", "words"]) {
    if (!arrays.has(key)) throw new OnnxFolderError(`${name}: ${key}: missing${key.startsWith("word") ? " (export the model again)" : ""}`);
  }
  const children = arrays.get("children");
  if (!(children.data instanceof Int32Array) || children.shape.length !== 2 || children.shape[1] !== numTokens || !children.shape[0]) {
    throw new OnnxFolderError(`${name}: children: must be integers of shape (nodes, ${numTokens}), not ${children.dtype} (${children.shape})`);
  }
  const nodes = children.shape[0];
  for (const value of children.data) {
    if (value < -1 || value >= nodes) throw new OnnxFolderError(`${name}: children: node numbers must be -1 to ${nodes - 1}`);
  }
  for (const key of ["lookahead", "end_log_prob"]) {
    const values = arrays.get(key);
    if (!(values.data instanceof Float32Array) || values.shape.length !== 1 || values.shape[0] !== nodes) {
      throw new OnnxFolderError(`${name}: ${key}: must be float32 of shape (${nodes},), not ${values.dtype} (${values.shape})`);
    }
    if (values.data.some((v) => Number.isNaN(v) || v === Infinity)) {
      throw new OnnxFolderError(`${name}: ${key}: holds NaN or +inf (log-probabilities are finite or -inf)`);
    }
  }
  const words = arrays.get("words"), wordIds = arrays.get("word_ids");
  if (!Array.isArray(words.data) || words.shape.length !== 1) throw new OnnxFolderError(`${name}: words: must be a list of strings`);
  if (!(wordIds.data instanceof Int32Array) || wordIds.shape[0] !== nodes) throw new OnnxFolderError(`${name}: word_ids: must be integers of shape (${nodes},)`);
  for (const id of wordIds.data) {
    if (id < -1 || id >= words.data.length) throw new OnnxFolderError(`${name}: word_ids: must be -1 to ${words.data.length - 1}`);
  }
}

function oneLine(err) {
  const text = String(err?.message ?? err).split(/\s+/).join(" ");
  return text.length <= 200 ? text : `${text.slice(0, 197)}...`;
}

async function readGraphs(ort, read, graphs, int8, threads) {
  const encoderSpec = graphs.child("encoder"), stepSpec = graphs.child("decoder_step");
  const encoderOutputs = encoderSpec.names("outputs");
  if ([...encoderSpec.names("inputs")].sort().join() !== [...ENCODER_INPUTS].sort().join()) {
    throw encoderSpec.error("inputs", `must be ${ENCODER_INPUTS.join(", ")}`);
  }
  const stepInputs = stepSpec.names("inputs"), stepOutputs = stepSpec.names("outputs");
  const perCurve = stepSpec.names("per_curve_inputs");
  const state = stepSpec.get("state", "list");
  state.forEach((entry, i) => {
    const fields = new Fields("model.json", entry, `graphs.decoder_step.state[${i}].`);
    fields.get("input", "string");
    fields.get("output", "string");
    const init = fields.get("init", "string");
    const shape = fields.get("shape", "list");
    if (!shape.length || !shape.every((n) => Number.isInteger(n) && n >= 0)) throw fields.error("shape", "must be sizes (0 for positions still to come)");
    if (!(init === "zeros" || (init === "encoder" && encoderOutputs.includes(entry.input)))) {
      throw fields.error("init", "must be 'zeros' or 'encoder' (an encoder output of the input's name)");
    }
  });
  const expected = new Set(["tokens", ...perCurve, ...state.map((e) => e.input)]);
  if (stepInputs.length !== expected.size || !stepInputs.every((n) => expected.has(n)) || !perCurve.every((n) => encoderOutputs.includes(n))) {
    throw stepSpec.error("inputs", "must be tokens, the per-curve encoder outputs and the state inputs");
  }
  if (stepOutputs.length !== 1 + state.length) throw stepSpec.error("outputs", "must be the logits and one output per state entry");
  const specs = [[encoderSpec, ENCODER_INPUTS, encoderOutputs], [stepSpec, stepInputs, stepOutputs]];
  if (graphs.get("decoder_score", "object", true) !== null) {
    const scoreSpec = graphs.child("decoder_score");
    const scoreInputs = scoreSpec.names("inputs"), scoreOutputs = scoreSpec.names("outputs");
    if (!scoreInputs.includes("tokens") || !scoreInputs.every((n) => n === "tokens" || encoderOutputs.includes(n))) {
      throw scoreSpec.error("inputs", "must be tokens and encoder outputs");
    }
    if (scoreOutputs.join() !== "logits") throw scoreSpec.error("outputs", "must be the logits");
    specs.push([scoreSpec, scoreInputs, scoreOutputs]);
  }
  const options = { intraOpNumThreads: threads, interOpNumThreads: 1, logSeverityLevel: 3 };
  const sessions = [];
  for (const [spec, inputs, outputs] of specs) {
    let file = spec.get("file", "string");
    if (file.includes("/") || file.includes("\\") || !file.endsWith(".onnx")) throw spec.error("file", `must be a .onnx file of the folder, not ${JSON.stringify(file)}`);
    if (int8) file = `${file.slice(0, -".onnx".length)}.int8.onnx`;
    const bytes = await read(file);
    let session;
    try {
      session = await ort.InferenceSession.create(bytes, options);
    } catch (err) {
      throw new OnnxFolderError(`${file}: not a loadable ONNX graph (${oneLine(err)})`);
    }
    if ([...session.inputNames].sort().join() !== [...inputs].sort().join() || session.outputNames.join() !== outputs.join()) {
      throw new OnnxFolderError(`${file}: inputs ${session.inputNames} and outputs ${session.outputNames} are not those model.json lists`);
    }
    sessions.push(session);
  }
  return [sessions[0], sessions[1], sessions[2] ?? null];
}

/** Run the graphs once on a small swipe (folder.py's _check_graphs_run): they must give finite
 * values of the expected shapes (broken or non-finite weights are found here, not as NaN scores
 * later). */
async function checkGraphsRun(ort, [encoder, decoderStep, decoderScore], graphs, sosId, numTokens) {
  const tensor = (type, data, dims) => new ort.Tensor(type, data, dims);
  const int64 = (values, dims) => tensor("int64", BigInt64Array.from(values, BigInt), dims);
  const run = async (session, file, feeds) => {
    try {
      return await session.run(feeds);
    } catch (err) {
      throw new OnnxFolderError(`${file}: does not run (${oneLine(err)})`);
    }
  };
  const encoderFile = graphs.encoder.file, step = graphs.decoder_step, stepFile = step.file;
  const points = Float32Array.from([0, 0, 0, 10, 5, 20, 20, 10, 40]);
  const memory = await run(encoder, encoderFile, {
    points: tensor("float32", points, [1, 3, 3]), lengths: int64([3], [1]), layout_ids: int64([0], [1]),
  });
  const feeds = { tokens: int64([sosId], [1, 1]) };
  for (const name of step.per_curve_inputs) feeds[name] = memory[name];
  step.state.forEach((entry, i) => {
    if (entry.init === "zeros") {
      const shape = [1, 1, ...entry.shape];
      feeds[entry.input] = tensor("float32", new Float32Array(shape.reduce((a, b) => a * b, 1)), shape);
      return;
    }
    const values = memory[entry.input], dims = [...values.dims].slice(1);
    if (dims.join() !== entry.shape.join()) {
      throw new OnnxFolderError(`model.json: graphs.decoder_step.state[${i}].shape: [${entry.shape.join(", ")}], `
        + `but ${encoderFile} gives [${dims.join(", ")}]`);
    }
    feeds[entry.input] = tensor(values.type, values.data, [1, 1, ...dims]);
  });
  const stepped = await run(decoderStep, stepFile, Object.fromEntries(step.inputs.map((name) => [name, feeds[name]])));
  const logits = stepped[step.outputs[0]];
  const checked = [[encoderFile, Object.values(memory)], [stepFile, [logits]]];
  if (decoderScore !== null) {
    const score = graphs.decoder_score;
    const word = { ...memory, tokens: int64([sosId, 1], [1, 1, 2]) }; // one word of one token
    const scored = (await run(decoderScore, score.file, Object.fromEntries(score.inputs.map((name) => [name, word[name]])))).logits;
    if ([...scored.dims].join() !== [1, 1, 2, numTokens].join()) {
      throw new OnnxFolderError(`${score.file}: gives logits of shape [${[...scored.dims].join(", ")}] for one word `
        + `of two tokens and ${numTokens} output tokens`);
    }
    checked.push([score.file, [scored]]);
  }
  for (const [file, values] of checked) {
    if (values.some((t) => t.data instanceof Float32Array && !t.data.every(Number.isFinite))) {
      throw new OnnxFolderError(`${file}: computes NaN or infinite values (damaged weights?)`);
    }
  }
  if (logits.data.length !== numTokens) throw new OnnxFolderError(`${stepFile}: gives ${logits.data.length} logits for ${numTokens} output tokens`);
}

/**
 * Read and check every file of an ONNX export folder (folder.py's read_export_folder).
 *
 * @param ort  the onnxruntime module (onnxruntime-node or onnxruntime-web)
 * @param read  async (name) => Uint8Array, a file of the folder (folderReader)
 * @param options  {int8 = false, threads = 1, overrides = {}}: overrides of decoding.json's values
 * @returns {Promise<object>}  {manifest, decoding, alphabet, eosId, sosId, maxLength, layouts,
 *   resample, maxPoints, lexicon (readNpz's map), encoder, decoderStep, decoderScore (null where
 *   model.json lists no decoder_score graph)}
 */
export async function readExportFolder(ort, read, { int8 = false, threads = 1, overrides = {} } = {}) {
  const manifest = new Fields("model.json", await readJson(read, "model.json"));
  if (manifest.values.format !== FORMAT || manifest.values.version !== VERSION) {
    throw manifest.error("format", `not a version ${VERSION} ${FORMAT} manifest`);
  }
  const tokenizer = manifest.child("tokenizer");
  const alphabet = tokenizer.get("alphabet", "string");
  const letters = [...alphabet];
  if (!letters.length || new Set(letters).size !== letters.length) throw tokenizer.error("alphabet", "must be distinct characters, at least one");
  const numTokens = letters.length + 1;
  const eosId = tokenizer.integer("eos_id", 0, numTokens - 1);
  const sosId = tokenizer.integer("sos_id", 0, numTokens + 1);
  const maxLength = manifest.integer("max_length", 1, MAX_LENGTH);
  const layoutNames = manifest.names("layouts");
  if (!layoutNames.length) throw manifest.error("layouts", "must name at least one layout");
  const prep = manifest.child("preprocessing");
  const maxPoints = prep.integer("max_points", 2, MAX_POINTS, true);
  let resample = null;
  if (prep.get("resample", "object", true) !== null) {
    const fields = prep.child("resample");
    const mode = fields.get("mode", "string");
    if (!(mode in RESAMPLE_STEPS)) throw fields.error("mode", `must be one of ${Object.keys(RESAMPLE_STEPS).join(", ")}, not ${JSON.stringify(mode)}`);
    resample = { mode, step: fields.number("step", ...RESAMPLE_STEPS[mode]), keep_time: fields.get("keep_time", "boolean") };
  }
  const decoding = readDecoding(await readJson(read, "decoding.json"), overrides);
  let grids;
  try {
    grids = readLayouts(await readJson(read, "layouts.json"));
  } catch (err) {
    throw err instanceof OnnxFolderError ? err : new OnnxFolderError(`layouts.json: not a layouts file (${err.message})`);
  }
  const missing = layoutNames.filter((name) => !grids.has(name));
  if (missing.length) throw new OnnxFolderError(`layouts.json: no layout '${missing[0]}' (model.json: layouts names it)`);
  let lexicon;
  try {
    lexicon = await readNpz(await read("lexicon.npz"), "lexicon.npz");
  } catch (err) {
    throw err instanceof OnnxFolderError ? err : new OnnxFolderError(`lexicon.npz: not a readable .npz file (${err.message})`);
  }
  checkLexicon(lexicon, numTokens);
  const sessions = await readGraphs(ort, read, manifest.child("graphs"), int8, threads);
  await checkGraphsRun(ort, sessions, manifest.values.graphs, sosId, numTokens);
  const [encoder, decoderStep, decoderScore] = sessions;
  return {
    manifest: manifest.values, decoding, alphabet, eosId, sosId, maxLength,
    layouts: layoutNames.map((name) => grids.get(name)), resample, maxPoints, lexicon, encoder, decoderStep, decoderScore,
  };
}
