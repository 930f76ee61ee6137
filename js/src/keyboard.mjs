// Keyboard layouts (swipe/keyboard.py): key geometry read from the Yandex Cup grid format.

const LOOKALIKES = new Map([
  ["\u00eb", "\u0451"], // Latin small e with diaeresis -> Cyrillic small io
  ["\u0435\u0308", "\u0451"], // Cyrillic ie + combining diaeresis (when NFC leaves it decomposed)
  ["e\u0308", "\u0451"], // Latin e + combining diaeresis
]);
// Letters that some layouts type with another key ("ъ" on "ь", "ё" on "е").
const KEY_FALLBACKS = new Map([["\u044a", "\u044c"], ["\u0451", "\u0435"]]);

export class LayoutError extends Error {}

/** A key label or a word normalised: NFC, lower case, look-alike characters folded. */
export function normalizeLabel(text) {
  text = text.normalize("NFC").toLowerCase();
  if (LOOKALIKES.has(text)) return LOOKALIKES.get(text);
  if (text.includes("\u00eb") || text.includes("\u0308")) {
    for (const [src, dst] of LOOKALIKES) text = text.split(src).join(dst);
  }
  return text;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  return n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

/** A keyboard layout: its name, size in pixels and keys ({name, x, y, w, h, isAction}). */
export class Layout {
  constructor(name, width, height, keys) {
    if (!keys.length) throw new LayoutError(`layout '${name}' has no keys`);
    if (keys.length > 255) throw new LayoutError(`layout '${name}' has ${keys.length} keys; at most 255 are supported`);
    if (!(width > 0 && height > 0)) throw new LayoutError(`layout '${name}' has a non-positive size ${width}x${height}`);
    this.name = name;
    this.width = width;
    this.height = height;
    this.keys = keys;
    this.index = new Map();
    keys.forEach((key, i) => { if (!this.index.has(key.name)) this.index.set(key.name, i); });
    // x, y of each key's centre, interleaved, float32 as numpy's Layout.centers.
    this.centers = new Float32Array(keys.length * 2);
    keys.forEach((k, i) => { this.centers[2 * i] = k.x + k.w / 2; this.centers[2 * i + 1] = k.y + k.h / 2; });
    const letters = keys.filter((k) => !k.isAction);
    const sized = letters.length ? letters : keys;
    this.keyWidth = median(sized.map((k) => k.w));
    this.keyHeight = median(sized.map((k) => k.h));
    this.halfDiagonal = 0.5 * Math.hypot(this.keyWidth, this.keyHeight);
  }

  /** The single characters typed by this layout's label keys, in key order. */
  get letters() {
    return this.keys.filter((k) => !k.isAction && [...k.name].length === 1).map((k) => k.name).join("");
  }

  typingKey(char) {
    char = normalizeLabel(char);
    let index = this.index.get(char);
    if (index === undefined && KEY_FALLBACKS.has(char)) index = this.index.get(KEY_FALLBACKS.get(char));
    return index;
  }

  /** Index of the key a user presses to type `char` (its own key, or the one typing it here). */
  keyIndexForChar(char) {
    const index = this.typingKey(char);
    if (index === undefined) throw new LayoutError(`layout '${this.name}' has no key for '${normalizeLabel(char)}'`);
    return index;
  }

  canType(char) {
    return this.typingKey(char) !== undefined;
  }

  /** A layout from a grid `{grid_name?, width, height, keys: [{label | action, hitbox: {x, y, w, h}}]}`. */
  static fromGrid(grid, name = undefined) {
    name = name ?? grid.grid_name;
    const where = name ? `layout '${name}'` : "layout";
    if (typeof name !== "string" || !name) throw new LayoutError(`${where}: missing 'grid_name'`);
    for (const field of ["width", "height", "keys"]) {
      if (!(field in grid)) throw new LayoutError(`${where}: missing '${field}'`);
    }
    const keys = grid.keys.map((raw, i) => {
      let keyName, isAction;
      if ("label" in raw) [keyName, isAction] = [normalizeLabel(String(raw.label)), false];
      else if ("action" in raw) [keyName, isAction] = [`<${raw.action}>`, true];
      else throw new LayoutError(`${where}: key ${i} has neither 'label' nor 'action'`);
      const box = raw.hitbox ?? {};
      const [x, y, w, h] = ["x", "y", "w", "h"].map((f) => Number(box[f]));
      if (![x, y, w, h].every(Number.isFinite)) throw new LayoutError(`${where}: key ${i} has no valid hitbox {x, y, w, h}`);
      if (w <= 0 || h <= 0) throw new LayoutError(`${where}: key ${i} has an empty hitbox`);
      return { name: keyName, x, y, w, h, isAction };
    });
    return new Layout(name, Number(grid.width), Number(grid.height), keys);
  }
}

/** The layouts of a grids file's JSON: an object of grids by name or a list of grids with grid_name. */
export function readLayouts(data) {
  const isList = Array.isArray(data);
  if (!(isList || (data && typeof data === "object"))) {
    throw new LayoutError("a layouts file is an object of grids by name or a list of grids");
  }
  const layouts = new Map();
  for (const [name, grid] of isList ? data.map((g) => [g?.grid_name, g]) : Object.entries(data)) {
    if (!grid || typeof grid !== "object") throw new LayoutError(`grid '${name}' is not an object`);
    layouts.set(name, Layout.fromGrid(grid, name));
  }
  return layouts;
}
