import assert from "node:assert/strict";
import { test } from "node:test";
import { Layout } from "../src/keyboard.mjs";
import {
  argsortDescending, elasticLogLikelihood, hypot, logaddexp, NoTemplatesError, pairwiseSum, resample, rigidLogLikelihood,
  Shark2Config, Shark2Decoder, TemplateRescorer, TemplateScoring,
} from "../src/templates.mjs";

// Three rows of three 40 x 50 px keys: a b c / d e f / g h i.
const layout = Layout.fromGrid({
  grid_name: "nine", width: 120, height: 150,
  keys: [..."abcdefghi"].map((label, i) => ({ label, hitbox: { x: 40 * (i % 3), y: 50 * Math.floor(i / 3), w: 40, h: 50 } })),
});

function centre(letter) {
  const k = layout.keyIndexForChar(letter);
  return [layout.centers[2 * k], layout.centers[2 * k + 1]];
}

/** A swipe through the key centres of `word`, four points per key-to-key segment. */
function through(word, dx = 0, dy = 0) {
  const points = [...word].map(centre);
  const x = [points[0][0] + dx], y = [points[0][1] + dy];
  for (let i = 1; i < points.length; i++) {
    for (const f of [0.25, 0.5, 0.75, 1]) {
      x.push(points[i - 1][0] + (points[i][0] - points[i - 1][0]) * f + dx);
      y.push(points[i - 1][1] + (points[i][1] - points[i - 1][1]) * f + dy);
    }
  }
  return { x, y };
}

const lexicon = { words: ["ace", "age", "aei", "bed", "fig", "hi", "ai", "café"], frequencies: [5, 3, 1, 4, 2, 6, 1, 9] };

test("numpy's arithmetic: glibc's hypot, logaddexp, pairwise sums, stable argsort", () => {
  // glibc's hypot is not the naive root here (numpy's np.hypot gives 2.769985496929757).
  assert.equal(hypot(2.4831077814613254, 1.2275974091074837), 2.769985496929757);
  assert.equal(Math.sqrt(2.4831077814613254 ** 2 + 1.2275974091074837 ** 2), 2.7699854969297566);
  assert.equal(hypot(-3, 4), 5);
  assert.equal(logaddexp(-3.0, -5.0), -2.8730719889570273);
  assert.equal(logaddexp(-2.0, -2.0), -1.3068528194400546);
  assert.equal(logaddexp(-Infinity, -1), -1);
  const values = Float64Array.from({ length: 300 }, (_, i) => 1 / (i + 1));
  assert.ok(Math.abs(pairwiseSum(values, 0, 300) - values.reduce((a, b) => a + b)) < 1e-12);
  assert.deepEqual(argsortDescending([1, 3, NaN, 3, -Infinity, 2]), [1, 3, 5, 0, 4, 2]);
});

test("resampling spaces points equally along the path and keeps its ends", () => {
  const points = resample(Float64Array.from([0, 0, 1, 0, 1, 1]), 5);
  assert.deepEqual([...points], [0, 0, 0.5, 0, 1, 0, 1, 0.5, 1, 1]);
  assert.deepEqual([...resample(Float64Array.from([2, 3]), 3)], [2, 3, 2, 3, 2, 3]);
  assert.throws(() => resample(Float64Array.from([0, 0]), 1), RangeError);
});

test("the matcher ranks the word whose keys the swipe passes through first", () => {
  const matcher = new Shark2Decoder(layout, lexicon, new Shark2Config({ topK: 3 }));
  assert.deepEqual(matcher.templates.words, lexicon.words.slice(0, 7)); // no key for "é"
  assert.equal(matcher.templates.skipped, 1);
  for (const word of ["ace", "age", "bed", "fig"]) {
    const { x, y } = through(word, 3, -2);
    const found = matcher.decode(x, y);
    assert.equal(found[0][1], word);
    assert.ok(found.length <= 3 && found.every(([score], i) => i === 0 || score <= found[i - 1][0]));
  }
});

test("the matcher scores only the words that may rank, and ranks as scoring every word would", () => {
  // Every word of two to five letters a to i: far more words near a swipe's ends than 4 rescoreTop.
  const letters = [..."abcdefghi"];
  const words = [];
  for (let i = 0; words.length < 600; i++) {
    let word = "", k = i * 7919 + 13;
    for (let n = 2 + (i % 4); n > 0; n--, k = Math.floor(k / 9) + i) word += letters[k % 9];
    if (!words.includes(word)) words.push(word);
  }
  const lexicon = { words, frequencies: words.map((_, i) => 1 + ((i * 31) % 17)) };
  const matcher = new Shark2Decoder(layout, lexicon, new Shark2Config({ topK: 5, rescoreTop: 8 }));
  let shaped = 0;
  const count = matcher._shapeDistance.bind(matcher);
  matcher._shapeDistance = (...args) => (shaped++, count(...args));
  for (const [word, dx, dy] of [["ace", 3, -2], ["bhf", -5, 4], ["gec", 0, 0], ["aeiba", 8, 6], ["e", 2, 2]]) {
    const { x, y } = through(word, dx, dy);
    // Every word that passes pruning, by every channel: what decode gives, computed in full.
    const all = matcher.channelDistances(x, y, matcher.config.startRadius, matcher.config.endRadius);
    const scores = all.index.map((_, c) => rigidLogLikelihood(all.location[c], all.shape[c], hypot(all.start[c], all.end[c]),
      all.isTap, matcher.config.scoring) + all.logPrior[c]);
    let expected;
    if (all.isTap) {
      expected = argsortDescending(scores).slice(0, 5).map((c) => [scores[c], words[all.index[c]]]);
    } else {
      const kept = argsortDescending(scores).slice(0, 8);
      const elastic = matcher.elasticDistances(matcher.prepare(x, y), kept.map((c) => all.index[c]));
      const rescored = kept.map((c, i) => scores[c] + elasticLogLikelihood(elastic.location[i], elastic.shape[i], matcher.config.scoring));
      expected = argsortDescending(rescored).slice(0, 5).map((i) => [rescored[i], words[all.index[kept[i]]]]);
    }
    shaped = 0;
    assert.deepEqual(matcher.decode(x, y), expected);
    if (!all.isTap) assert.ok(shaped < all.index.length, `${word}: ${shaped} of ${all.index.length} words scored`);
  }
});

test("a tap is ranked by its distance to the words' keys and their frequency", () => {
  const matcher = new Shark2Decoder(layout, { words: ["e", "b", "h", "f"], frequencies: [1, 1, 1, 4] }, { topK: 4 });
  const [cx, cy] = centre("e");
  const found = matcher.decode([cx, cx], [cy, cy]);
  assert.equal(found[0][1], "e");
  // The frequent "f" beats the as distant "b" and "h"; those two tie and keep the lexicon order.
  assert.deepEqual(found.map(([, word]) => word), ["e", "f", "b", "h"]);
  assert.equal(found[2][0], found[3][0]);
});

test("a layout that types no word of the lexicon has no matcher", () => {
  assert.throws(() => new Shark2Decoder(layout, { words: ["xyz", "é"], frequencies: [1, 1] }), NoTemplatesError);
  assert.throws(() => new Shark2Config({ topK: 0 }), RangeError);
  assert.throws(() => new TemplateScoring({ sigmaShape: 0 }), RangeError);
});

test("the rescorer adds the template score; words without a template come last, ties keep their order", () => {
  const rescorer = new TemplateRescorer(0.5, 1.0);
  const { x, y } = through("bed", 2, 1);
  const row = [[-1, "ace"], [-1, "bed"], [-1.5, "xyz"], [-2, ""], [-3, "fig"]];
  const rescored = rescorer.rescore(row, layout, x, y);
  assert.equal(rescored[0][1], "bed");
  assert.deepEqual(rescored.slice(-2), [[-Infinity, "xyz"], [-Infinity, ""]]);
  assert.deepEqual(new TemplateRescorer(0).rescore(row, layout, x, y), row);
  assert.deepEqual(rescorer.rescore([], layout, x, y), []);
  // Equal candidates keep their order.
  assert.deepEqual(rescorer.rescore([[0, "ace"], [0, "ace"]], layout, x, y).map(([, w]) => w), ["ace", "ace"]);
  // The prior weighs in: a word far more frequent overtakes the one drawn.
  const priors = Float64Array.from([0, -40, 0, 0, 0]);
  assert.notEqual(rescorer.rescore(row, layout, x, y, priors)[0][1], "bed");
  assert.throws(() => new TemplateRescorer(-1), RangeError);
});

test("a swipe drawn through key centres may be precise and gains the precise drawing's odds", () => {
  const rescorer = new TemplateRescorer(1.0, 0.0);
  const exact = through("aei");
  assert.equal(rescorer.mayBePrecise(layout, exact.x, exact.y), true);
  const off = through("aei", 6, 0);
  assert.equal(rescorer.mayBePrecise(layout, off.x, off.y), false);
  assert.equal(rescorer.mayBePrecise(layout, [], []), false);
  const sloppy = new TemplateRescorer(1.0, 0.0, { preciseLogOdds: -Infinity });
  assert.equal(sloppy.mayBePrecise(layout, exact.x, exact.y), false);
  const [[mixed]] = rescorer.rescore([[0, "aei"]], layout, exact.x, exact.y);
  const [[plain]] = sloppy.rescore([[0, "aei"]], layout, exact.x, exact.y);
  assert.ok(mixed > plain + 7 && mixed <= plain + 8 + Math.LN2);
});
