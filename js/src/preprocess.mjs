// Preprocessing (swipe/data/resample.py and the preprocessing of swipe/decoding/pipeline.py):
// each swipe's points as the model was trained on them, resampled and thinned.

export const UNTIMED_STEP_MS = 10.0; // clock of `path` resampling without time: ms per step
export const MAX_RESAMPLED_POINTS = 4096;

/** numpy's np.round: halves to even. */
export function roundHalfEven(value) {
  const r = Math.round(value);
  return r - value === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** How many of 0, step, 2 step, ... lie below `end`. */
function stepsBelow(end, step) {
  return Math.ceil(end / step - 1e-9);
}

/** Indices of `maxPoints` of `size` points, evenly spaced, the first and last kept (np.linspace, np.round). */
export function thinIndex(size, maxPoints) {
  const index = new Array(maxPoints);
  const div = maxPoints - 1;
  const step = (size - 1) / div;
  for (let i = 0; i < maxPoints; i++) {
    index[i] = roundHalfEven(step === 0 ? (i / div) * (size - 1) : i * step);
  }
  if (maxPoints > 1) index[maxPoints - 1] = size - 1;
  return index;
}

/** Most points of a resampled curve. */
export function pointCap(maxPoints) {
  return maxPoints == null ? MAX_RESAMPLED_POINTS : Math.min(maxPoints, MAX_RESAMPLED_POINTS);
}

/** 0, step, 2 step, ... below `end`, then `end`; over `maxPoints` points, those thinning keeps. */
function grid(end, step, maxPoints) {
  const size = stepsBelow(end, step) + 1;
  const index = size <= maxPoints ? Array.from({ length: size }, (_, i) => i) : thinIndex(size, maxPoints);
  const at = new Float64Array(index.length);
  index.forEach((k, i) => { at[i] = k < size - 1 ? k * step : end; });
  return { at, index };
}

/** numpy's searchsorted(along, value, side="right"). */
function searchRight(along, value) {
  let lo = 0, hi = along.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (along[mid] <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Linear interpolation of `values` given at the non-decreasing `along` (resample.py's _interpolate). */
function interpolate(at, along, values) {
  const out = new Float64Array(at.length);
  for (let i = 0; i < at.length; i++) {
    const left = Math.min(Math.max(searchRight(along, at[i]) - 1, 0), along.length - 2);
    const span = along[left + 1] - along[left];
    const weight = span > 0 ? (at[i] - along[left]) / span : 1.0;
    out[i] = values[left] + Math.min(Math.max(weight, 0.0), 1.0) * (values[left + 1] - values[left]);
  }
  return out;
}

/**
 * One curve resampled (resample_curve): a point every `step` ms (mode "time") or `step` key
 * widths along the path ("path"), at most `maxPoints` of them.
 * @param {{mode: string, step: number, keep_time: boolean}} config
 * @returns {{x: Float64Array, y: Float64Array, t: Float64Array}}
 */
export function resampleCurve(x, y, t, keyWidth, config, maxPoints = null) {
  x = Float64Array.from(x);
  y = Float64Array.from(y);
  t = Float64Array.from(t);
  const n = x.length;
  let along, step;
  if (config.mode === "time") {
    along = t.map((v) => v - t[0]);
    step = config.step;
  } else {
    along = new Float64Array(n);
    for (let i = 1; i < n; i++) along[i] = along[i - 1] + Math.hypot(x[i] - x[i - 1], y[i] - y[i - 1]);
    step = config.step * keyWidth;
  }
  if (n < 2 || along[n - 1] <= 0) {
    if (config.mode === "path" && !config.keep_time) t = Float64Array.from({ length: n }, (_, i) => i * UNTIMED_STEP_MS);
    return { x, y, t };
  }
  const { at, index } = grid(along[n - 1], step, pointCap(maxPoints));
  const newX = interpolate(at, along, x), newY = interpolate(at, along, y);
  let newT;
  if (config.mode === "time") newT = at.map((a) => t[0] + a);
  else if (config.keep_time) newT = interpolate(at, along, t);
  else newT = Float64Array.from(index, (k) => k * UNTIMED_STEP_MS);
  return { x: newX, y: newY, t: newT };
}

/**
 * The points `(n, 3)` float32 (x, y in pixels, t in ms from the first) of a swipe as the encoder
 * reads them, drawn on a keyboard `xScale` times as wide (pipeline.py's preprocess).
 * @param {{x: ArrayLike<number>, y: ArrayLike<number>, t: ArrayLike<number>}} swipe
 * @param {{keyWidth: number}} layout
 * @param {{resample: object | null, maxPoints: number | null}} prep
 * @returns {Float32Array}  n * 3 values, row by row
 */
export function preprocess(swipe, layout, prep, xScale = 1.0) {
  let x = Float64Array.from(swipe.x, (v) => v * xScale);
  let y = Float64Array.from(swipe.y);
  let t = Float64Array.from(swipe.t);
  if (prep.resample) ({ x, y, t } = resampleCurve(x, y, t, layout.keyWidth, prep.resample, prep.maxPoints));
  let rows = Array.from({ length: x.length }, (_, i) => i);
  if (prep.maxPoints != null && rows.length > prep.maxPoints) rows = thinIndex(rows.length, prep.maxPoints);
  const points = new Float32Array(rows.length * 3);
  rows.forEach((r, i) => {
    points[3 * i] = x[r];
    points[3 * i + 1] = y[r];
    points[3 * i + 2] = t[r] - t[0];
  });
  return points;
}
