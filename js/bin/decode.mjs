#!/usr/bin/env node
// Decode the swipes of a jsonl file with an ONNX export folder, in Node: one JSON line per swipe,
// its candidates best first ([{"word", "score", "inLexicon"}, ...]; --verbatim '{}': with the
// network's best string without the lexicon, inLexicon false, where no lexicon word scores well;
// the object may set lexicon_below, verbatim_above, position; --user-words: the user's words
// changed first, in order: ["add", WORDS, FREQUENCY?], ["remove", WORDS] and ["learn", WORD] steps;
// --user-data FILE: a saved user data file, applied before them).
//
//   node js/bin/decode.mjs FOLDER SWIPES.jsonl [--batch N] [--settings '{"beam_size": 8}'] [--int8] [--verbatim '{}']
//     [--user-words '[["add", ["swipeable"]], ["learn", "swipe"]]'] [--user-data my_words.json]
//
// SWIPES.jsonl: rows {"curve": {"x": [...], "y": [...], "t": [...], "grid_name": "..."}}, as
// python -m swipe.runtime reads them.

import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import * as ort from "onnxruntime-node";
import { loadDecoder } from "../src/index.mjs";

const usage = "usage: node js/bin/decode.mjs FOLDER SWIPES.jsonl [--batch N] [--settings JSON] [--int8] [--verbatim JSON] [--user-words JSON] [--user-data FILE]\n"
  + "example: node js/bin/decode.mjs en_onnx swipe/resources/swipes/hws_real_en_dev.jsonl --batch 16";

function fail(message) {
  process.stderr.write(`decode.mjs: error: ${message}\n${usage}\n`);
  process.exit(2);
}

let args;
try {
  args = parseArgs({
    allowPositionals: true,
    options: { batch: { type: "string", default: "1" }, settings: { type: "string", default: "{}" },
      int8: { type: "boolean", default: false }, verbatim: { type: "string" },
      "user-words": { type: "string", default: "[]" }, "user-data": { type: "string" }, help: { type: "boolean", short: "h" } },
  });
} catch (err) {
  fail(err.message);
}
if (args.values.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}
if (args.positionals.length !== 2) fail("give the export folder and a jsonl file of swipes");
const [folder, path] = args.positionals;
const batch = Number(args.values.batch);
if (!(Number.isInteger(batch) && batch >= 1)) fail(`--batch must be a whole number from 1, not ${args.values.batch}`);
function object(option, text) {
  try {
    const value = JSON.parse(text);
    if (value && typeof value === "object" && !Array.isArray(value)) return value;
  } catch {}
  return fail(`--${option} must be a JSON object, not ${text}`);
}
const settings = object("settings", args.values.settings);
const verbatim = args.values.verbatim === undefined ? null : object("verbatim", args.values.verbatim);
let steps;
try {
  steps = JSON.parse(args.values["user-words"]);
} catch {}
if (!Array.isArray(steps) || !steps.every((step) => Array.isArray(step) && ["add", "remove", "learn"].includes(step[0]))) {
  fail(`--user-words must be a JSON list of ["add", WORDS, FREQUENCY?], ["remove", WORDS] or ["learn", WORD] steps, not ${args.values["user-words"]}`);
}

const swipes = [];
let text;
try {
  text = await readFile(path, "utf8");
} catch (err) {
  fail(`${path}: cannot read it (${err.code ?? err.message})`);
}
text.split("\n").forEach((line, i) => {
  if (!line.trim()) return;
  try {
    const { curve } = JSON.parse(line);
    swipes.push({ x: curve.x, y: curve.y, t: curve.t, layout: curve.grid_name ?? curve.grid.grid_name });
  } catch (err) {
    fail(`${path}:${i + 1}: not a swipe row (${err.message})`);
  }
});

try {
  const decoder = await loadDecoder(folder, { ort, int8: args.values.int8, settings, verbatim });
  const saved = args.values["user-data"];
  if (saved !== undefined) {
    let values;
    try {
      values = JSON.parse(await readFile(saved, "utf8"));
    } catch (err) {
      fail(`${saved}: not a user data file (${err.code ?? err.message})`);
    }
    decoder.loadUserData(values, saved);
  }
  for (const [step, words, frequency = null] of steps) {
    if (step === "add") decoder.addWords(words, frequency);
    else if (step === "remove") decoder.removeWords(words);
    else decoder.learn(words);
  }
  for (let start = 0; start < swipes.length; start += batch) {
    for (const row of await decoder.decodeMany(swipes.slice(start, start + batch))) {
      process.stdout.write(`${JSON.stringify(row)}\n`);
    }
  }
} catch (err) {
  process.stderr.write(`decode.mjs: error: ${err.message}\n`);
  process.exit(1);
}
