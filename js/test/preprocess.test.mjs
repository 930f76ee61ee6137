import assert from "node:assert/strict";
import { test } from "node:test";
import { preprocess, resampleCurve, roundHalfEven, thinIndex } from "../src/preprocess.mjs";

test("halves round to even, as numpy's np.round", () => {
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, 2.4, 2.6].map(roundHalfEven), [0, 2, 2, -0, 2, 3]);
});

test("thinning keeps the ends and spaces the rest evenly", () => {
  assert.deepEqual(thinIndex(10, 4), [0, 3, 6, 9]);
  assert.deepEqual(thinIndex(5, 5), [0, 1, 2, 3, 4]);
});

test("path resampling puts a point every step key widths, the last at the end", () => {
  const { x, y, t } = resampleCurve([0, 95], [0, 0], [0, 500], 40, { mode: "path", step: 0.25, keep_time: false });
  assert.deepEqual([...x], [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95]);
  assert.deepEqual([...y], new Array(11).fill(0));
  assert.deepEqual([...t], [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
});

test("time resampling interpolates positions in time; a rest keeps arrival and departure", () => {
  const { x, t } = resampleCurve([0, 10, 10, 20], [0, 0, 0, 0], [0, 10, 30, 40], 40, { mode: "time", step: 10, keep_time: true });
  assert.deepEqual([...t], [0, 10, 20, 30, 40]);
  assert.deepEqual([...x], [0, 10, 10, 10, 20]);
});

test("a curve that does not move is kept as it is", () => {
  const { x, t } = resampleCurve([5, 5], [1, 1], [0, 7], 40, { mode: "path", step: 0.25, keep_time: true });
  assert.deepEqual([...x], [5, 5]);
  assert.deepEqual([...t], [0, 7]);
});

test("preprocess: float32 rows of x (scaled), y and t from the first point, at most maxPoints", () => {
  const swipe = { x: [0, 1, 2, 3, 4], y: [0.1, 0.1, 0.1, 0.1, 0.1], t: [100, 110, 120, 130, 140] };
  const points = preprocess(swipe, { keyWidth: 40 }, { resample: null, maxPoints: 3 }, 2.0);
  assert.ok(points instanceof Float32Array);
  assert.deepEqual([...points], [0, Math.fround(0.1), 0, 4, Math.fround(0.1), 20, 8, Math.fround(0.1), 40]);
});
