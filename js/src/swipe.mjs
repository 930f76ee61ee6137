// The one check of a swipe's values (swipe/formats.py's check_swipe and swipe_problems).

export const MAX_SWIPE_POINTS = 5000;
const COORD_SCALE = 4.0;
export const MAX_COORDINATE = 32767 / COORD_SCALE;
export const MAX_DURATION_MS = 3_600_000.0;

export class SwipeError extends Error {}

/** numpy's np.rint: halves to even. */
function rint(value) {
  const r = Math.round(value);
  return r - value === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function numbers(values, name) {
  if (!(Array.isArray(values) || ArrayBuffer.isView(values))) throw new SwipeError(`'${name}' must be a list of numbers`);
  if (values.length > MAX_SWIPE_POINTS) {
    throw new SwipeError(`'${name}' has ${values.length} points; at most ${MAX_SWIPE_POINTS} are accepted`);
  }
  if (Array.isArray(values) && !values.every((v) => typeof v === "number")) {
    throw new SwipeError(`x, y and t must be lists of numbers: '${name}' holds a string, boolean or null`);
  }
  return Float64Array.from(values);
}

/**
 * One swipe's points, checked as every reader checks them; a problem is a one-line SwipeError.
 * @returns {{x: Float64Array, y: Float64Array, t: Float64Array}}
 */
export function checkSwipe(x, y, t) {
  [x, y, t] = [numbers(x, "x"), numbers(y, "y"), numbers(t, "t")];
  if (!(x.length === y.length && y.length === t.length) || !t.length) {
    throw new SwipeError(`x, y and t must be lists of the same, non-zero length, got ${x.length}, ${y.length}, ${t.length} values`);
  }
  const limit = MAX_COORDINATE * COORD_SCALE;
  const finite = (i) => Number.isFinite(x[i]) && Number.isFinite(y[i]) && Number.isFinite(t[i]);
  const checks = [
    [(i) => !finite(i), "NaN or infinite value"],
    [(i) => finite(i) && (Math.abs(rint(x[i] * COORD_SCALE)) > limit || Math.abs(rint(y[i] * COORD_SCALE)) > limit),
      `coordinate out of range (|x|, |y| <= ${MAX_COORDINATE} px)`],
    [(i) => i > 0 && t[i] < t[i - 1], "time decreases"],
  ];
  for (const [bad, detail] of checks) {
    for (let i = 0; i < t.length; i++) if (bad(i)) throw new SwipeError(detail);
  }
  if (!(t[t.length - 1] - t[0] <= MAX_DURATION_MS)) throw new SwipeError(`the swipe lasts over ${MAX_DURATION_MS} ms`);
  return { x, y, t };
}
