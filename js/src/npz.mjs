// Reading numpy's .npz archives (np.savez / np.savez_compressed): a zip file of .npy arrays.
// Enough of both formats for an export folder's lexicon.npz: little-endian integers and floats,
// fixed-width unicode strings, C order; stored or deflated zip entries.

/**
 * An array of a .npy file.
 * @typedef {{ dtype: string, shape: number[], data: Int32Array | Float32Array | Float64Array | Uint8Array | string[] }} NpyArray
 */

const ZIP_CENTRAL = 0x02014b50;
const ZIP_END = 0x06054b50;
const ZIP_LOCAL = 0x04034b50;

/** Inflate raw deflate data: node:zlib in Node, DecompressionStream in a browser. */
async function inflateRaw(bytes) {
  if (typeof process !== "undefined" && process.versions?.node) {
    const zlib = await import("node:zlib");
    return new Uint8Array(zlib.inflateRawSync(bytes));
  }
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** The entries of a zip archive: name -> bytes (inflated). */
async function readZip(bytes, file) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let end = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 65535); i--) {
    if (view.getUint32(i, true) === ZIP_END) { end = i; break; }
  }
  if (end < 0) throw new Error(`${file}: not a readable .npz file (no zip directory)`);
  const count = view.getUint16(end + 10, true);
  let at = view.getUint32(end + 16, true);
  const entries = new Map();
  const decoder = new TextDecoder();
  for (let k = 0; k < count; k++) {
    if (at + 46 > bytes.length || view.getUint32(at, true) !== ZIP_CENTRAL) {
      throw new Error(`${file}: not a readable .npz file (damaged zip directory)`);
    }
    const method = view.getUint16(at + 10, true);
    const compressed = view.getUint32(at + 20, true);
    const nameLength = view.getUint16(at + 28, true);
    const extraLength = view.getUint16(at + 30, true);
    const commentLength = view.getUint16(at + 32, true);
    const local = view.getUint32(at + 42, true);
    const name = decoder.decode(bytes.subarray(at + 46, at + 46 + nameLength));
    at += 46 + nameLength + extraLength + commentLength;
    if (view.getUint32(local, true) !== ZIP_LOCAL) throw new Error(`${file}: ${name}: damaged zip entry`);
    const start = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
    const raw = bytes.subarray(start, start + compressed);
    if (method === 0) entries.set(name, raw);
    else if (method === 8) entries.set(name, await inflateRaw(raw));
    else throw new Error(`${file}: ${name}: zip compression ${method} is not supported`);
  }
  return entries;
}

/** One .npy array. */
export function readNpy(bytes, file = "array.npy") {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (bytes.length < 10 || magic.some((b, i) => bytes[i] !== b)) throw new Error(`${file}: not a .npy array`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6];
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(bytes.subarray(headerStart, headerStart + headerLength));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*True/.test(header);
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shapeText === undefined || fortran) throw new Error(`${file}: unsupported .npy header ${header.trim()}`);
  const shape = shapeText.split(",").map((s) => s.trim()).filter((s) => s).map(Number);
  const size = shape.reduce((a, b) => a * b, 1);
  const body = bytes.slice(headerStart + headerLength); // a copy: aligned for typed arrays
  const buffer = body.buffer;
  let data;
  if (descr === "<i4") data = new Int32Array(buffer, 0, size);
  else if (descr === "<i8") data = Int32Array.from(new BigInt64Array(buffer, 0, size), Number);
  else if (descr === "<f4") data = new Float32Array(buffer, 0, size);
  else if (descr === "<f8") data = new Float64Array(buffer, 0, size);
  else if (descr === "|b1" || descr === "|u1") data = new Uint8Array(buffer, 0, size);
  else if (/^<U\d+$/.test(descr)) {
    const width = Number(descr.slice(2));
    const codes = new Uint32Array(buffer, 0, size * width);
    data = new Array(size);
    for (let i = 0; i < size; i++) {
      let n = width;
      while (n > 0 && codes[i * width + n - 1] === 0) n--; // numpy drops trailing NULs
      data[i] = String.fromCodePoint(...codes.subarray(i * width, i * width + n));
    }
  } else throw new Error(`${file}: unsupported .npy dtype ${descr}`);
  return { dtype: descr, shape, data };
}

/**
 * The arrays of a .npz archive.
 * @param {Uint8Array} bytes
 * @param {string} file  its name, for errors
 * @returns {Promise<Map<string, NpyArray>>}  by name, without ".npy"
 */
export async function readNpz(bytes, file = "arrays.npz") {
  const arrays = new Map();
  for (const [name, entry] of await readZip(bytes, file)) {
    const key = name.endsWith(".npy") ? name.slice(0, -4) : name;
    arrays.set(key, readNpy(entry, `${file}: ${key}`));
  }
  return arrays;
}
