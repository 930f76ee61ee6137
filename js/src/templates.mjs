// Word templates on a keyboard and how well a swipe matches them, after SHARK2 (Kristensson and
// Zhai, UIST 2004): the JavaScript port of swipe/templates.py (TemplateScoring, TemplateRescorer)
// and swipe/shark2.py (Shark2Config, Shark2Decoder, NoTemplatesError).
//
// A word's template is the polyline through its key centres. A swipe and a template, both
// resampled to equidistant points, are compared through channels, each a Gaussian log-likelihood
// -d**2 / (2 sigma**2) of a distance d (key units: x in key widths, y in key heights):
//   location (mean distance between corresponding points), shape (the same after both curves are
//   centred and scaled to unit size), ends (first and last points to the word's first and last
//   keys), elastic location and elastic shape (dynamic-time-warping distances per point).
// A tap (a swipe shorter than tapLength) is scored by location alone.
//
// The arithmetic is numpy's, operation by operation, so that the results equal the Python
// package's: float32 where numpy computes in float32 (Math.fround after every operation), numpy's
// pairwise summation where it sums along a contiguous axis and a running sum where it reduces
// along another axis, glibc's hypot, and numpy's stable argsort (ties keep their order, NaN last).
//
// The matcher keeps, per lexicon word, only its keys, its template's two end points and its prior;
// a word's resampled template is computed when a swipe's start and end reach it (the Python
// matcher precomputes every template), with the same arithmetic, so the results are the same.

const f32 = Math.fround;

// ---- numpy's arithmetic ----------------------------------------------------------------------

/** numpy's pairwise sum of `n` float64 values `a[start ..]`. */
export function pairwiseSum(a, start, n) {
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res += a[start + i];
    return res;
  }
  if (n <= 128) {
    let r0 = a[start], r1 = a[start + 1], r2 = a[start + 2], r3 = a[start + 3];
    let r4 = a[start + 4], r5 = a[start + 5], r6 = a[start + 6], r7 = a[start + 7];
    let i = 8;
    for (; i < n - (n % 8); i += 8) {
      const k = start + i;
      r0 += a[k]; r1 += a[k + 1]; r2 += a[k + 2]; r3 += a[k + 3];
      r4 += a[k + 4]; r5 += a[k + 5]; r6 += a[k + 6]; r7 += a[k + 7];
    }
    let res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7));
    for (; i < n; i++) res += a[start + i];
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwiseSum(a, start, n2) + pairwiseSum(a, start + n2, n - n2);
}

/** numpy's pairwise sum of `n` float32 values `a[start ..]`, in float32 arithmetic. */
export function pairwiseSum32(a, start, n) {
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res = f32(res + a[start + i]);
    return res;
  }
  if (n <= 128) {
    let r0 = a[start], r1 = a[start + 1], r2 = a[start + 2], r3 = a[start + 3];
    let r4 = a[start + 4], r5 = a[start + 5], r6 = a[start + 6], r7 = a[start + 7];
    let i = 8;
    for (; i < n - (n % 8); i += 8) {
      const k = start + i;
      r0 = f32(r0 + a[k]); r1 = f32(r1 + a[k + 1]); r2 = f32(r2 + a[k + 2]); r3 = f32(r3 + a[k + 3]);
      r4 = f32(r4 + a[k + 4]); r5 = f32(r5 + a[k + 5]); r6 = f32(r6 + a[k + 6]); r7 = f32(r7 + a[k + 7]);
    }
    let res = f32(f32(f32(r0 + r1) + f32(r2 + r3)) + f32(f32(r4 + r5) + f32(r6 + r7)));
    for (; i < n; i++) res = f32(res + a[start + i]);
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return f32(pairwiseSum32(a, start, n2) + pairwiseSum32(a, start + n2, n - n2));
}

/** glibc's hypot (numpy's np.hypot on float64): Borges' corrected algorithm, without FMA. */
export function hypot(x, y) {
  if (!Number.isFinite(x) || !Number.isFinite(y)) {
    return Number.isNaN(x) || Number.isNaN(y) ? (Math.abs(x) === Infinity || Math.abs(y) === Infinity ? Infinity : NaN) : Infinity;
  }
  x = Math.abs(x);
  y = Math.abs(y);
  const ax = x < y ? y : x;
  const ay = x < y ? x : y;
  if (ax > 2 ** 511) {
    if (ay <= ax * 2 ** -54) return ax + ay;
    return hypotKernel(ax * 2 ** -600, ay * 2 ** -600) / 2 ** -600;
  }
  if (ay < 2 ** -511) {
    if (ax >= ay / 2 ** -54) return ax + ay;
    return hypotKernel(ax / 2 ** -600, ay / 2 ** -600) * 2 ** -600;
  }
  if (ay <= ax * 2 ** -54) return ax + ay;
  return hypotKernel(ax, ay);
}

function hypotKernel(ax, ay) {
  let h = Math.sqrt(ax * ax + ay * ay);
  let t1, t2;
  if (h <= 2.0 * ay) {
    const delta = h - ay;
    t1 = ax * (2.0 * delta - ax);
    t2 = (delta - 2.0 * (ax - ay)) * delta;
  } else {
    const delta = h - ax;
    t1 = 2.0 * delta * (ax - 2.0 * ay);
    t2 = (4.0 * delta - ay) * ay + delta * delta;
  }
  h -= (t1 + t2) / (2.0 * h);
  return h;
}

/** np.hypot on float32 values (glibc's hypotf: the root of the double sum, rounded). */
function hypotf(x, y) {
  return f32(Math.sqrt(x * x + y * y));
}

/** np.logaddexp on float64. */
export function logaddexp(x, y) {
  if (x === y) return x + Math.LN2;
  const tmp = x - y;
  if (tmp > 0) return x + Math.log1p(Math.exp(-tmp));
  if (tmp <= 0) return y + Math.log1p(Math.exp(tmp));
  return tmp;
}

/**
 * Indices that sort `scores` best (highest) first: np.argsort(-scores, kind="stable") (equal
 * scores keep their order, NaN last).
 */
export function argsortDescending(scores, count = scores.length) {
  const order = Array.from({ length: count }, (_, i) => i);
  const key = (i) => (Number.isNaN(scores[i]) ? 1 : 0);
  order.sort((a, b) => {
    const na = key(a), nb = key(b);
    if (na || nb) return na - nb;
    const sa = scores[a], sb = scores[b];
    return sa > sb ? -1 : sa < sb ? 1 : 0;
  });
  return order;
}

/** np.linspace(0, 1, n). */
function linspace01(n) {
  const step = 1.0 / (n - 1);
  const out = new Float64Array(n);
  for (let j = 0; j < n; j++) out[j] = j * step;
  out[n - 1] = 1.0;
  return out;
}

const linspaceCache = new Map();
let lastSteps = linspace01(64);
function unitSteps(n) {
  if (lastSteps.length !== n) {
    if (!linspaceCache.has(n)) linspaceCache.set(n, linspace01(n));
    lastSteps = linspaceCache.get(n);
  }
  return lastSteps;
}

// ---- geometry ----------------------------------------------------------------------------------

/** Pixel coordinates as interleaved x, y float64 in key widths / key heights. */
export function keyUnits(layout, x, y) {
  const out = new Float64Array(2 * x.length);
  for (let i = 0; i < x.length; i++) {
    out[2 * i] = Number(x[i]) / layout.keyWidth;
    out[2 * i + 1] = Number(y[i]) / layout.keyHeight;
  }
  return out;
}

/** The layout's key centres (float32 pixels) in key units, interleaved x, y. */
function centresInKeyUnits(layout) {
  const c = layout.centers;
  const out = new Float64Array(c.length);
  for (let k = 0; k < c.length; k += 2) {
    out[k] = c[k] / layout.keyWidth;
    out[k + 1] = c[k + 1] / layout.keyHeight;
  }
  return out;
}

/** Total length of the polyline through interleaved points (np.linalg.norm(np.diff).sum()). */
export function pathLength(points) {
  const count = points.length / 2;
  if (count < 2) return 0;
  const seg = new Float64Array(count - 1);
  for (let i = 0; i < count - 1; i++) {
    const dx = points[2 * i + 2] - points[2 * i], dy = points[2 * i + 3] - points[2 * i + 1];
    seg[i] = Math.sqrt(dx * dx + dy * dy);
  }
  return pairwiseSum(seg, 0, count - 1);
}

/**
 * One row of resample_many: `n` equidistant points along the polyline of `count` vertices
 * (interleaved float64), padded to `most` vertices by repeating its last one (pad_polylines), as
 * row `row` of a batch whose longest path is `longest` (numpy offsets each row by
 * row * (longest + 1) to search all rows at once, which rounds the comparisons). Writes the points
 * in float64 (or float32 where `out` is a Float32Array) to `out` at `at`; `onlyEnds`: the first
 * and last points only. `cum`, `seg`: scratch arrays of at least `most` values.
 */
function resampleRow(verts, count, most, n, row, longest, out, at = 0, onlyEnds = false,
  cum = new Float64Array(most), seg = new Float64Array(most)) {
  if (most === 1) {
    for (let j = 0; j < n; j++) {
      out[at + 2 * j] = verts[0];
      out[at + 2 * j + 1] = verts[1];
    }
    return;
  }
  let total = 0;
  cum[0] = 0;
  for (let k = 0; k < most - 1; k++) {
    let length = 0;
    if (k + 1 < count) {
      const dx = verts[2 * k + 2] - verts[2 * k], dy = verts[2 * k + 3] - verts[2 * k + 1];
      length = Math.sqrt(dx * dx + dy * dy);
    }
    seg[k] = length;
    total += length;
    cum[k + 1] = total;
  }
  const offset = row * (longest + 1.0);
  const steps = unitSteps(n);
  const last = count - 1;
  let pos = 0; // vertices with cum + offset <= target + offset
  for (let j = 0; j < n; j++) {
    if (onlyEnds && j === 1) j = n - 1;
    const target = steps[j] * total;
    const shifted = target + offset;
    while (pos < most && cum[pos] + offset <= shifted) pos++;
    const col = pos < 1 ? 0 : pos - 1 > most - 2 ? most - 2 : pos - 1;
    const length = seg[col];
    let frac = length > 0 ? (target - cum[col]) / length : 0.0;
    frac = frac < 0 ? 0.0 : frac > 1 ? 1.0 : frac;
    const a = 2 * (col < last ? col : last), b = 2 * (col + 1 < last ? col + 1 : last);
    out[at + 2 * j] = verts[a] * (1.0 - frac) + verts[b] * frac;
    out[at + 2 * j + 1] = verts[a + 1] * (1.0 - frac) + verts[b + 1] * frac;
  }
}

/** The path length resample_many sees for a polyline (its running sum of segment lengths). */
function pathThrough(verts, count) {
  let total = 0;
  for (let k = 1; k < count; k++) {
    const dx = verts[2 * k] - verts[2 * k - 2], dy = verts[2 * k + 1] - verts[2 * k - 1];
    total += Math.sqrt(dx * dx + dy * dy);
  }
  return total;
}

/** pathThrough the key centres `keys[from .. to)` (interleaved `centres`). */
function keyPathLength(centres, keys, from, to) {
  let total = 0;
  for (let i = from + 1; i < to; i++) {
    const a = keys[i - 1], b = keys[i];
    const dx = centres[2 * b] - centres[2 * a], dy = centres[2 * b + 1] - centres[2 * a + 1];
    total += Math.sqrt(dx * dx + dy * dy);
  }
  return total;
}

/**
 * `n` points spaced equally along the polyline through interleaved `points` (float64, as
 * swipe.templates.resample).
 */
export function resample(points, n) {
  if (n < 2) throw new RangeError(`resampling needs at least 2 points, got n=${n}`);
  const count = points.length / 2;
  if (!(count >= 1) || !Number.isInteger(count)) throw new RangeError("expected a non-empty list of (x, y) points");
  const out = new Float64Array(2 * n);
  resampleRow(points, count, count, n, 0, pathThrough(points, count), out);
  return out;
}

/**
 * normalize_shape of one curve of `n` interleaved float64 points at `at`: centred on its centroid
 * (a running sum, as numpy's mean along that axis) and scaled so that the larger bounding-box side
 * is 1.
 */
function normalizeShape(points, n, at = 0, out = new Float64Array(2 * n)) {
  let sx = 0, sy = 0;
  let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
  for (let i = 0; i < n; i++) {
    const px = points[at + 2 * i], py = points[at + 2 * i + 1];
    sx += px;
    sy += py;
    if (px < minX) minX = px;
    if (px > maxX) maxX = px;
    if (py < minY) minY = py;
    if (py > maxY) maxY = py;
  }
  const mx = sx / n, my = sy / n;
  const size = Math.max(maxX - minX, maxY - minY);
  const scale = size > 1e-9 ? size : 1.0;
  for (let i = 0; i < n; i++) {
    out[2 * i] = (points[at + 2 * i] - mx) / scale;
    out[2 * i + 1] = (points[at + 2 * i + 1] - my) / scale;
  }
  return out;
}

/** normalizeShape of a float32 curve, in float32 arithmetic. */
function normalizeShape32(points, n, at = 0, out = new Float32Array(2 * n)) {
  let sx = 0, sy = 0;
  let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
  for (let i = 0; i < n; i++) {
    const px = points[at + 2 * i], py = points[at + 2 * i + 1];
    sx = f32(sx + px);
    sy = f32(sy + py);
    if (px < minX) minX = px;
    if (px > maxX) maxX = px;
    if (py < minY) minY = py;
    if (py > maxY) maxY = py;
  }
  const mx = f32(sx / n), my = f32(sy / n);
  const size = Math.max(f32(maxX - minX), f32(maxY - minY));
  const scale = size > TINY_SIZE_32 ? size : 1.0; // numpy compares float32 with 1e-9 as float32
  for (let i = 0; i < n; i++) {
    out[2 * i] = f32(points[at + 2 * i] - mx) / scale; // stored as float32: rounded once more
    out[2 * i + 1] = f32(points[at + 2 * i + 1] - my) / scale;
  }
  return out;
}

const TINY_SIZE_32 = f32(1e-9);

/** Mean distance between corresponding points of two float64 curves of `n` interleaved points. */
function meanDistance(a, atA, b, atB, n, scratch) {
  for (let i = 0; i < n; i++) {
    const dx = a[atA + 2 * i] - b[atB + 2 * i], dy = a[atA + 2 * i + 1] - b[atB + 2 * i + 1];
    scratch[i] = Math.sqrt(dx * dx + dy * dy);
  }
  return pairwiseSum(scratch, 0, n) / n;
}

/** meanDistance of float32 curves, in float32 arithmetic (`scratch` a Float32Array). */
function meanDistance32(a, atA, b, atB, n, scratch) {
  for (let i = 0; i < n; i++) {
    const dx = f32(a[atA + 2 * i] - b[atB + 2 * i]), dy = f32(a[atA + 2 * i + 1] - b[atB + 2 * i + 1]);
    scratch[i] = Math.sqrt(f32(f32(dx * dx) + f32(dy * dy))); // stored as float32: rounded
  }
  return f32(pairwiseSum32(scratch, 0, n) / n);
}

/**
 * DTW distance between two float32 curves of `n` and `m` interleaved points (query at `atQ`,
 * template at `atT`): Euclidean local cost, steps (1, 0), (0, 1) and (1, 1); float32 arithmetic
 * as swipe.templates.dtw_distances.
 */
function dtwDistance(query, atQ, n, template, atT, m, scratch) {
  const { prev, running } = scratch;
  let sum = 0;
  const qx0 = query[atQ], qy0 = query[atQ + 1];
  for (let j = 0; j < m; j++) {
    sum = f32(sum + hypotf(f32(qx0 - template[atT + 2 * j]), f32(qy0 - template[atT + 2 * j + 1])));
    prev[j] = sum;
  }
  for (let i = 1; i < n; i++) {
    const qx = query[atQ + 2 * i], qy = query[atQ + 2 * i + 1];
    sum = 0;
    for (let j = 0; j < m; j++) {
      sum = f32(sum + hypotf(f32(qx - template[atT + 2 * j]), f32(qy - template[atT + 2 * j + 1])));
      running[j] = sum;
    }
    let best = Infinity;
    let before = 0;
    let left = Infinity; // row i - 1 at column j - 1
    for (let j = 0; j < m; j++) {
      const up = prev[j];
      const v = f32(Math.min(up, left) - before);
      if (v < best || Number.isNaN(v)) best = v;
      before = running[j];
      left = up;
      prev[j] = f32(running[j] + best);
    }
  }
  return prev[m - 1];
}

function dtwScratch(m) {
  return { prev: new Float32Array(m), running: new Float32Array(m) };
}

/** `-(distance / sigma)**2 / 2` in float64: a channel's score. */
export function gaussianLogLikelihood(distance, sigma) {
  const q = distance / sigma;
  return -0.5 * (q * q);
}

// ---- scoring words -------------------------------------------------------------------------------

/** Settings of the template channels (distances in key units); swipe.templates.TemplateScoring. */
export class TemplateScoring {
  constructor({
    numPoints = 64, dtwPoints = 32, sigmaLocation = 5.0, sigmaShape = 0.08, sigmaEnds = 0.5,
    sigmaElasticLocation = 0.28, sigmaElasticShape = 0.035, sigmaTap = 0.5, tapLength = 0.5,
  } = {}) {
    Object.assign(this, {
      numPoints, dtwPoints, sigmaLocation, sigmaShape, sigmaEnds, sigmaElasticLocation,
      sigmaElasticShape, sigmaTap, tapLength,
    });
    if (!(numPoints >= 2 && dtwPoints >= 2)) {
      throw new RangeError(`numPoints and dtwPoints must be at least 2, got ${numPoints} and ${dtwPoints}`);
    }
    for (const name of ["sigmaLocation", "sigmaShape", "sigmaEnds", "sigmaElasticLocation", "sigmaElasticShape", "sigmaTap"]) {
      if (!(this[name] > 0)) throw new RangeError(`${name} must be positive, got ${this[name]}`);
    }
    if (!(tapLength >= 0)) throw new RangeError(`tapLength must be >= 0 (0: no taps), got ${tapLength}`);
    Object.freeze(this);
  }
}

/** The location, shape and end channels' log-likelihood (a tap's: location alone, width sigmaTap). */
export function rigidLogLikelihood(location, shape, ends, isTap, scoring) {
  if (isTap) return gaussianLogLikelihood(location, scoring.sigmaTap);
  return gaussianLogLikelihood(location, scoring.sigmaLocation)
    + gaussianLogLikelihood(shape, scoring.sigmaShape)
    + gaussianLogLikelihood(ends, scoring.sigmaEnds);
}

/** The elastic (DTW per point) channels' log-likelihood. */
export function elasticLogLikelihood(elasticLocation, elasticShape, scoring) {
  return gaussianLogLikelihood(elasticLocation, scoring.sigmaElasticLocation)
    + gaussianLogLikelihood(elasticShape, scoring.sigmaElasticShape);
}

/** Key indices of `word`'s letters (the layout must type them all). */
function wordKeys(layout, word) {
  return Array.from(word, (c) => layout.keyIndexForChar(c));
}

/** Interleaved key centres (key units) of `keys`, from the layout's key-unit centres. */
function polyline(centres, keys) {
  const out = new Float64Array(2 * keys.length);
  keys.forEach((k, i) => {
    out[2 * i] = centres[2 * k];
    out[2 * i + 1] = centres[2 * k + 1];
  });
  return out;
}

/**
 * The channels' distances from a swipe (x, y in pixels) to each word's template
 * (swipe.templates.template_distances): {location, shape, ends, elasticLocation, elasticShape
 * (Float64Array, or null for a tap), isTap}.
 */
export function templateDistances(layout, x, y, words, scoring = new TemplateScoring()) {
  const gesture = keyUnits(layout, x, y);
  const isTap = pathLength(gesture) < scoring.tapLength;
  const count = words.length;
  if (count === 0) {
    const none = new Float64Array(0);
    return { location: none, shape: none, ends: none, elasticLocation: none, elasticShape: none, isTap };
  }
  const n = scoring.numPoints;
  const centres = centresInKeyUnits(layout);
  const lines = words.map((w) => polyline(centres, wordKeys(layout, w)));
  const most = Math.max(...lines.map((l) => l.length / 2));
  const longest = Math.max(...lines.map((l) => pathThrough(l, l.length / 2)));
  const templates = new Float64Array(count * 2 * n);
  lines.forEach((l, r) => resampleRow(l, l.length / 2, most, n, r, longest, templates, r * 2 * n));
  const points = resample(gesture, n);
  const pointShape = normalizeShape(points, n);
  const location = new Float64Array(count), shape = new Float64Array(count), ends = new Float64Array(count);
  const scratch = new Float64Array(n);
  const shapeOut = new Float64Array(2 * n);
  for (let r = 0; r < count; r++) {
    const at = r * 2 * n;
    location[r] = meanDistance(templates, at, points, 0, n, scratch);
    normalizeShape(templates, n, at, shapeOut);
    shape[r] = meanDistance(shapeOut, 0, pointShape, 0, n, scratch);
    const sx = templates[at] - points[0], sy = templates[at + 1] - points[1];
    const ex = templates[at + 2 * n - 2] - points[2 * n - 2], ey = templates[at + 2 * n - 1] - points[2 * n - 1];
    ends[r] = hypot(Math.sqrt(sx * sx + sy * sy), Math.sqrt(ex * ex + ey * ey));
  }
  if (isTap) return { location, shape, ends, elasticLocation: null, elasticShape: null, isTap };
  const m = scoring.dtwPoints;
  const query = resample(gesture, m);
  const queryShape = Float32Array.from(normalizeShape(query, m));
  const query32 = Float32Array.from(query);
  let longestDtw = 0;
  for (let r = 0; r < count; r++) {
    longestDtw = Math.max(longestDtw, pathThrough(templates.subarray(r * 2 * n, (r + 1) * 2 * n), n));
  }
  const dtwTemplate = new Float64Array(2 * m);
  const dtwShape = new Float64Array(2 * m);
  const dtw32 = new Float32Array(2 * m);
  const elasticLocation = new Float64Array(count), elasticShape = new Float64Array(count);
  const dtwWork = dtwScratch(m);
  for (let r = 0; r < count; r++) {
    resampleRow(templates.subarray(r * 2 * n, (r + 1) * 2 * n), n, n, m, r, longestDtw, dtwTemplate);
    dtw32.set(dtwTemplate);
    elasticLocation[r] = f32(dtwDistance(query32, 0, m, dtw32, 0, m, dtwWork) / m);
    normalizeShape(dtwTemplate, m, 0, dtwShape);
    dtw32.set(dtwShape);
    elasticShape[r] = f32(dtwDistance(queryShape, 0, m, dtw32, 0, m, dtwWork) / m);
  }
  return { location, shape, ends, elasticLocation, elasticShape, isTap };
}

/** The sum of the channels' log-likelihoods of each word, from its distances. */
export function distancesLogLikelihood(d, scoring) {
  const out = new Float64Array(d.location.length);
  for (let i = 0; i < out.length; i++) {
    out[i] = rigidLogLikelihood(d.location[i], d.shape[i], d.ends[i], d.isTap, scoring);
    if (!d.isTap) out[i] += elasticLogLikelihood(d.elasticLocation[i], d.elasticShape[i], scoring);
  }
  return out;
}

/** How well a swipe matches each word's template: the sum of the channels' log-likelihoods. */
export function templateLogLikelihoods(layout, x, y, words, scoring = new TemplateScoring()) {
  if (!words.length) return new Float64Array(0);
  return distancesLogLikelihood(templateDistances(layout, x, y, words, scoring), scoring);
}

/**
 * Re-ranks a decoder's candidates by their score plus `weight` times the template score (how well
 * the swipe matches the word's template, a mixture of a sloppy and a precise drawing, plus
 * `priorWeight` times the word's log relative frequency); swipe.templates.TemplateRescorer.
 */
export class TemplateRescorer {
  constructor(weight, priorWeight = 1.0, { scoring = new TemplateScoring(), preciseLogOdds = 8.0, sigmaPrecise = 0.03 } = {}) {
    if (!(Number.isFinite(weight) && weight >= 0)) {
      throw new RangeError(`template weight must be a finite number >= 0, got ${weight}`);
    }
    if (!(Number.isFinite(priorWeight) && priorWeight >= 0)) {
      throw new RangeError(`template prior weight must be a finite number >= 0, got ${priorWeight}`);
    }
    if (Number.isNaN(preciseLogOdds) || preciseLogOdds === Infinity) {
      throw new RangeError(`preciseLogOdds must be a number or -Infinity, got ${preciseLogOdds}`);
    }
    if (!(Number.isFinite(sigmaPrecise) && sigmaPrecise > 0)) {
      throw new RangeError(`sigmaPrecise must be a positive number, got ${sigmaPrecise}`);
    }
    Object.assign(this, { weight, priorWeight, scoring, preciseLogOdds, sigmaPrecise });
    Object.freeze(this);
  }

  /** How well the swipe (pixels) matches each of `words` (which the layout can type), higher is better. */
  matchLogLikelihoods(layout, x, y, words) {
    const distances = templateDistances(layout, x, y, words, this.scoring);
    const sloppy = distancesLogLikelihood(distances, this.scoring);
    if (this.preciseLogOdds === -Infinity) return sloppy;
    return sloppy.map((s, i) => logaddexp(s, this.preciseLogOdds
      + gaussianLogLikelihood(hypot(distances.location[i], distances.ends[i]), this.sigmaPrecise)));
  }

  /**
   * Whether the swipe (pixels) starts and ends within 2 sigmaPrecise of key centres, as a
   * precisely drawn swipe does: a search that missed its word is worth the matcher's proposals.
   */
  mayBePrecise(layout, x, y) {
    if (this.preciseLogOdds === -Infinity || x.length === 0) return false;
    const centres = centresInKeyUnits(layout);
    const ends = keyUnits(layout, [x[0], x[x.length - 1]], [y[0], y[y.length - 1]]);
    let farthest = -Infinity;
    for (let e = 0; e < 2; e++) {
      let nearest = Infinity;
      for (let k = 0; k < centres.length; k += 2) {
        const dx = centres[k] - ends[2 * e], dy = centres[k + 1] - ends[2 * e + 1];
        nearest = Math.min(nearest, Math.sqrt(dx * dx + dy * dy));
      }
      farthest = Math.max(farthest, nearest);
    }
    return farthest <= 2 * this.sigmaPrecise;
  }

  /**
   * `candidates` ([score, word] pairs) of one swipe with new scores, best first (ties keep their
   * order; words the layout cannot type, and empty ones, score -Infinity and come last).
   * `logPriors`: each candidate's log relative frequency, or null (no prior term).
   */
  rescore(candidates, layout, x, y, logPriors = null) {
    if (this.weight === 0 || candidates.length === 0) return candidates.map(([s, w]) => [s, w]);
    const words = candidates.map(([, word]) => word);
    const typeable = [];
    words.forEach((word, i) => {
      if (word && Array.from(word).every((c) => layout.canType(c))) typeable.push(i);
    });
    const template = new Float64Array(words.length).fill(-Infinity);
    if (typeable.length) {
      const match = this.matchLogLikelihoods(layout, x, y, typeable.map((i) => words[i]));
      typeable.forEach((i, k) => { template[i] = match[k]; });
    }
    const scores = new Float64Array(words.length);
    for (let i = 0; i < words.length; i++) {
      const t = logPriors == null ? template[i] : template[i] + this.priorWeight * Number(logPriors[i]);
      scores[i] = candidates[i][0] + this.weight * t;
    }
    return argsortDescending(scores).map((i) => [scores[i], words[i]]);
  }
}

// ---- the SHARK2-style matcher --------------------------------------------------------------------

/** The layout can type no word of the lexicon. */
export class NoTemplatesError extends Error {
  constructor(message) {
    super(message);
    this.name = "NoTemplatesError";
  }
}

/** Settings of Shark2Decoder (distances in key units); swipe.shark2.Shark2Config. */
export class Shark2Config {
  constructor({
    numPoints = 64, dtwPoints = 32, startRadius = 1.0, endRadius = 2.0, sigmaLocation = 5.0,
    sigmaShape = 0.08, sigmaEnds = 0.5, sigmaElasticLocation = 0.28, sigmaElasticShape = 0.035,
    priorWeight = 1.0, rescoreTop = 100, sigmaTap = 0.5, tapLength = 0.5, topK = 10,
  } = {}) {
    Object.assign(this, {
      numPoints, dtwPoints, startRadius, endRadius, sigmaLocation, sigmaShape, sigmaEnds,
      sigmaElasticLocation, sigmaElasticShape, priorWeight, rescoreTop, sigmaTap, tapLength, topK,
    });
    this.scoring = new TemplateScoring({
      numPoints, dtwPoints, sigmaLocation, sigmaShape, sigmaEnds, sigmaElasticLocation,
      sigmaElasticShape, sigmaTap, tapLength,
    });
    if (!(startRadius > 0 && endRadius > 0)) {
      throw new RangeError(`startRadius and endRadius must be positive, got ${startRadius} and ${endRadius}`);
    }
    if (rescoreTop < 1 || topK < 1) throw new RangeError("rescoreTop and topK must be at least 1");
    Object.freeze(this);
  }
}

/**
 * Ranks lexicon words for a swipe with location, shape, end, elastic and frequency channels;
 * swipe.shark2.Shark2Decoder.
 *
 * `lexicon`: {words: string[], frequencies: number[] | Float64Array, name?: string}. Throws
 * NoTemplatesError where the layout can type none of its words.
 */
export class Shark2Decoder {
  constructor(layout, lexicon, config = new Shark2Config()) {
    this.layout = layout;
    this.config = config instanceof Shark2Config ? config : new Shark2Config(config);
    this.templates = buildTemplates(layout, lexicon, this.config.numPoints);
    this._longestTemplatePath = null;
    const most = this.templates.most, n = this.config.numPoints;
    this._scratch = {
      verts: new Float64Array(2 * Math.max(most, n)), cum: new Float64Array(Math.max(most, n)),
      seg: new Float64Array(Math.max(most, n)), points: new Float64Array(2 * Math.max(n, this.config.dtwPoints)),
    };
  }

  /**
   * Word `r`'s template (row `r` of the Python matcher's templates): `numPoints` float32 points in
   * key units, interleaved, written to `out` at `at`.
   */
  template(r, out = new Float32Array(2 * this.config.numPoints), at = 0) {
    const t = this.templates;
    const { verts, cum, seg } = this._scratch;
    const first = t.keyStart[r], count = t.keyStart[r + 1] - first;
    for (let i = 0; i < count; i++) {
      const k = t.keys[first + i];
      verts[2 * i] = t.centres[2 * k];
      verts[2 * i + 1] = t.centres[2 * k + 1];
    }
    const n = this.config.numPoints, points = this._scratch.points;
    resampleRow(verts, count, t.most, n, r, t.longest, points, 0, false, cum, seg);
    for (let i = 0; i < 2 * n; i++) out[at + i] = points[i];
    return out;
  }

  /**
   * A swipe given in pixels, resampled for the channels (swipe.shark2.Shark2Decoder.prepare):
   * {points, shape (null for a tap), dtw, dtwShape (float32, interleaved), isTap}.
   */
  prepare(x, y) {
    const cfg = this.config;
    const gesture = keyUnits(this.layout, x, y);
    const isTap = pathLength(gesture) < cfg.tapLength;
    const points = Float32Array.from(resample(gesture, cfg.numPoints));
    const dtw = resample(gesture, cfg.dtwPoints);
    return {
      points, shape: isTap ? null : normalizeShape32(points, cfg.numPoints), isTap,
      dtw: Float32Array.from(dtw), dtwShape: Float32Array.from(normalizeShape(dtw, cfg.dtwPoints)),
    };
  }

  /**
   * The words whose first and last template points lie within these radii (key units) of the
   * swipe's: {index (template rows, ascending), start, end (float32 distances)}.
   */
  near(swipe, startRadius, endRadius) {
    const t = this.templates, n = this.config.numPoints;
    const px0 = swipe.points[0], py0 = swipe.points[1], px1 = swipe.points[2 * n - 2], py1 = swipe.points[2 * n - 1];
    // numpy compares float32 distances with the radii rounded to float32.
    const startLimit = f32(startRadius), endLimit = f32(endRadius);
    const index = [], start = [], end = [];
    const { starts, ends } = t;
    for (let r = 0; r < t.words.length; r++) {
      let dx = f32(starts[2 * r] - px0), dy = f32(starts[2 * r + 1] - py0);
      const s = f32(Math.sqrt(f32(f32(dx * dx) + f32(dy * dy))));
      if (!(s <= startLimit)) continue;
      dx = f32(ends[2 * r] - px1);
      dy = f32(ends[2 * r + 1] - py1);
      const e = f32(Math.sqrt(f32(f32(dx * dx) + f32(dy * dy))));
      if (!(e <= endLimit)) continue;
      index.push(r);
      start.push(s);
      end.push(e);
    }
    return { index, start: Float32Array.from(start), end: Float32Array.from(end) };
  }

  /** Work arrays of the per-word channels. */
  _work() {
    const n = this.config.numPoints, m = this.config.dtwPoints;
    return {
      template: new Float32Array(2 * n), templateShape: new Float32Array(2 * n), scratch: new Float32Array(n),
      resampled: new Float32Array(2 * n), template64: new Float64Array(2 * n), dtw64: new Float64Array(2 * m),
      dtw: dtwScratch(m),
    };
  }

  /** Word `r`'s shape distance to `swipe` (its template left in work.template). */
  _shapeDistance(swipe, r, work) {
    const n = this.config.numPoints;
    this.template(r, work.template);
    normalizeShape32(work.template, n, 0, work.templateShape);
    return meanDistance32(work.templateShape, 0, swipe.shape, 0, n, work.scratch);
  }

  /** The location distance of the template in work.template. */
  _locationDistance(swipe, work) {
    return meanDistance32(work.template, 0, swipe.points, 0, this.config.numPoints, work.scratch);
  }

  /** Word `r`'s location and shape distances to `swipe` (a tap's shape: 0). */
  _rigidDistances(swipe, r, work) {
    if (swipe.isTap) {
      this.template(r, work.template);
      return [this._locationDistance(swipe, work), 0];
    }
    const shape = this._shapeDistance(swipe, r, work);
    return [this._locationDistance(swipe, work), shape];
  }

  /**
   * The cheap channels' distances for every word that passes start/end pruning with these radii:
   * {index (template rows), start, end, location, shape, logPrior, isTap}. `decode` computes them
   * only for the words that may rank.
   */
  channelDistances(x, y, startRadius, endRadius) {
    const swipe = this.prepare(x, y);
    const { index, start, end } = this.near(swipe, startRadius, endRadius);
    const count = index.length, work = this._work();
    const location = new Float32Array(count), shape = new Float32Array(count), logPrior = new Float64Array(count);
    for (let c = 0; c < count; c++) {
      [location[c], shape[c]] = this._rigidDistances(swipe, index[c], work);
      logPrior[c] = this.templates.logPrior[index[c]];
    }
    return { index, start, end, location, shape, logPrior, isTap: swipe.isTap };
  }

  /** Word `r`'s template resampled for the elastic channels and its shape, into `dtw`, `dtwShape`. */
  _dtwTemplate(r, dtw, dtwShape, work) {
    const n = this.config.dtwPoints, m = this.config.numPoints;
    if (n === m) {
      this.template(r, dtw);
    } else {
      this.template(r, work.resampled);
      work.template64.set(work.resampled);
      resampleRow(work.template64, m, m, n, r, this.longestTemplatePath(), work.dtw64, 0, false,
        this._scratch.cum, this._scratch.seg);
      dtw.set(work.dtw64);
    }
    normalizeShape32(dtw, n, 0, dtwShape);
  }

  /** DTW distances per point between a prepared swipe and the templates of words `index`. */
  elasticDistances(swipe, index) {
    const n = this.config.dtwPoints, work = this._work();
    const dtw = new Float32Array(2 * n), dtwShape = new Float32Array(2 * n);
    const location = new Float32Array(index.length), shape = new Float32Array(index.length);
    index.forEach((r, c) => {
      this._dtwTemplate(r, dtw, dtwShape, work);
      location[c] = f32(dtwDistance(swipe.dtw, 0, n, dtw, 0, n, work.dtw) / n);
      shape[c] = f32(dtwDistance(swipe.dtwShape, 0, n, dtwShape, 0, n, work.dtw) / n);
    });
    return { location, shape };
  }

  /**
   * The `count` best words `near` by the location, shape, end channels and the prior:
   * {index (template rows), scores}, best first, equal scores in the order of `near.index`
   * (swipe.shark2.Shark2Decoder.best_rigid). Each channel only lowers a score, so the end channel
   * and the prior bound it from above: the words are scored in the order of that bound, the first
   * 4 count of them, then those whose bound, and then that with the shape channel, reaches the
   * count-th best score found.
   */
  bestRigid(swipe, near, count) {
    const cfg = this.config, t = this.templates, work = this._work();
    const size = near.index.length;
    const prior = new Float64Array(size), ends = new Float64Array(size), bound = new Float64Array(size);
    const hypots = new Float64Array(size);
    for (let c = 0; c < size; c++) {
      prior[c] = cfg.priorWeight * t.logPrior[near.index[c]];
      hypots[c] = hypot(near.start[c], near.end[c]);
      ends[c] = gaussianLogLikelihood(hypots[c], cfg.sigmaEnds);
      bound[c] = swipe.isTap ? prior[c] : ends[c] + prior[c];
    }
    const scores = new Float64Array(size).fill(-Infinity);
    const score = (c, location, shape) => rigidLogLikelihood(location, shape, hypots[c], swipe.isTap, cfg.scoring) + prior[c];
    const order = argsortDescending(bound);
    for (const c of order.slice(0, 4 * count)) scores[c] = score(c, ...this._rigidDistances(swipe, near.index[c], work));
    if (order.length > 4 * count) {
      const found = Float64Array.from(order.slice(0, 4 * count), (c) => scores[c]).sort();
      const threshold = found[found.length - count];
      for (const c of order.slice(4 * count)) {
        if (!(bound[c] >= threshold)) continue;
        if (swipe.isTap) {
          scores[c] = score(c, ...this._rigidDistances(swipe, near.index[c], work));
          continue;
        }
        const shape = this._shapeDistance(swipe, near.index[c], work);
        if (!(gaussianLogLikelihood(shape, cfg.sigmaShape) + ends[c] + prior[c] >= threshold)) continue;
        scores[c] = score(c, this._locationDistance(swipe, work), shape);
      }
    }
    const best = argsortDescending(scores).slice(0, count);
    return { index: best.map((c) => near.index[c]), scores: Float64Array.from(best, (c) => scores[c]) };
  }

  /**
   * The longest path of any word's template: the Python matcher resamples all templates again for
   * the elastic channels in one batch, whose rows are offset by it. Computed at the first need,
   * resampling only the words whose key-centre path is at least as long (a template's points lie
   * on that path, so its own path is no longer, but for rounding).
   */
  longestTemplatePath() {
    if (this._longestTemplatePath === null) {
      const t = this.templates, n = this.config.numPoints, count = t.words.length;
      const keyPath = new Float64Array(count);
      let first = 0;
      for (let r = 0; r < count; r++) {
        keyPath[r] = keyPathLength(t.centres, t.keys, t.keyStart[r], t.keyStart[r + 1]);
        if (keyPath[r] > keyPath[first]) first = r;
      }
      const template = new Float32Array(2 * n);
      const templatePath = (r) => {
        this.template(r, template);
        let total = 0;
        for (let k = 1; k < n; k++) {
          const dx = template[2 * k] - template[2 * k - 2], dy = template[2 * k + 1] - template[2 * k - 1];
          total += Math.sqrt(dx * dx + dy * dy);
        }
        return total;
      };
      let longest = templatePath(first);
      for (let r = 0; r < count; r++) {
        if (r !== first && keyPath[r] * (1 + 1e-9) + 1e-9 >= longest) longest = Math.max(longest, templatePath(r));
      }
      this._longestTemplatePath = longest;
    }
    return this._longestTemplatePath;
  }

  /**
   * The topK best [score, word] candidates for a swipe given in pixels. If no word passes
   * pruning, the radii are doubled (up to three times) before giving up.
   */
  decode(x, y) {
    const cfg = this.config;
    const swipe = this.prepare(x, y);
    let startRadius = cfg.startRadius, endRadius = cfg.endRadius;
    let near;
    for (let attempt = 0; attempt < 4; attempt++) {
      near = this.near(swipe, startRadius, endRadius);
      if (near.index.length) break;
      startRadius *= 2;
      endRadius *= 2;
    }
    const words = this.templates.words;
    if (swipe.isTap) {
      const { index, scores } = this.bestRigid(swipe, near, cfg.topK);
      return topCandidates(scores, words, index, cfg.topK);
    }
    const { index, scores } = this.bestRigid(swipe, near, cfg.rescoreTop);
    const elastic = this.elasticDistances(swipe, index);
    const rescored = Float64Array.from(scores, (score, i) => score
      + elasticLogLikelihood(elastic.location[i], elastic.shape[i], cfg.scoring));
    return topCandidates(rescored, words, index, cfg.topK);
  }
}

/** The `k` best [score, word] pairs, best first (equal scores keep their order in `index`). */
function topCandidates(scores, words, index, k) {
  return argsortDescending(scores).slice(0, k).map((b) => [scores[b], words[index[b]]]);
}

/**
 * Every typeable lexicon word, compactly: its keys, its template's first and last points (float32
 * key units) and its log prior; templates are resampled from the keys when needed
 * (swipe.shark2.build_templates keeps them all).
 */
function buildTemplates(layout, lexicon, n) {
  const centres = centresInKeyUnits(layout);
  const keyOf = new Map(); // character -> key index, -1 where the layout has none
  const words = [], freqs = [], keyStart = [0], keyList = [];
  let skipped = 0;
  const frequencies = lexicon.frequencies;
  const keys = [];
  lexicon.words.forEach((word, i) => {
    keys.length = 0;
    let typeable = true;
    for (const c of word) {
      let k = keyOf.get(c);
      if (k === undefined) {
        k = layout.canType(c) ? layout.keyIndexForChar(c) : -1;
        keyOf.set(c, k);
      }
      if (k < 0) typeable = false;
      keys.push(k);
    }
    if (!keys.length || !typeable) {
      skipped++;
      return;
    }
    words.push(word);
    freqs.push(Number(frequencies[i]));
    for (const k of keys) keyList.push(k);
    keyStart.push(keyList.length);
  });
  if (!words.length) {
    throw new NoTemplatesError(`lexicon '${lexicon.name ?? ""}': layout '${layout.name}' cannot type any of its words`);
  }
  const keyArray = Uint8Array.from(keyList);
  const starts = Uint32Array.from(keyStart);
  const count = words.length;
  let most = 1, longest = 0;
  for (let r = 0; r < count; r++) {
    most = Math.max(most, starts[r + 1] - starts[r]);
    longest = Math.max(longest, keyPathLength(centres, keyArray, starts[r], starts[r + 1]));
  }
  const firstPoints = new Float32Array(2 * count), lastPoints = new Float32Array(2 * count);
  const ends = new Float64Array(2 * n), verts = new Float64Array(2 * most);
  const cum = new Float64Array(most), seg = new Float64Array(most);
  for (let r = 0; r < count; r++) {
    const size = starts[r + 1] - starts[r];
    for (let i = 0; i < size; i++) {
      const k = keyArray[starts[r] + i];
      verts[2 * i] = centres[2 * k];
      verts[2 * i + 1] = centres[2 * k + 1];
    }
    resampleRow(verts, size, most, n, r, longest, ends, 0, true, cum, seg);
    firstPoints[2 * r] = ends[0];
    firstPoints[2 * r + 1] = ends[1];
    lastPoints[2 * r] = ends[2 * n - 2];
    lastPoints[2 * r + 1] = ends[2 * n - 1];
  }
  // Zero frequencies are raised to the smallest positive one, so that no log prior is -Infinity.
  const freq = Float64Array.from(freqs);
  let smallest = Infinity;
  for (const f of freq) if (f > 0 && f < smallest) smallest = f;
  const floor = smallest === Infinity ? 1.0 : smallest;
  for (let r = 0; r < count; r++) freq[r] = Math.max(freq[r], floor);
  const total = pairwiseSum(freq, 0, count);
  const logPrior = freq.map((f) => Math.log(f / total));
  return {
    words, logPrior, keys: keyArray, keyStart: starts, starts: firstPoints, ends: lastPoints, most, longest,
    centres, skipped,
  };
}
