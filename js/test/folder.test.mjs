import assert from "node:assert/strict";
import { test } from "node:test";
import * as ort from "onnxruntime-node";
import { loadDecoder, OnnxFolderError } from "../src/index.mjs";
import { Layout } from "../src/keyboard.mjs";
import { readNpy } from "../src/npz.mjs";
import { checkSwipe, SwipeError } from "../src/swipe.mjs";

function files(contents) {
  return async (name) => {
    if (!(name in contents)) throw new OnnxFolderError(`${name}: missing`);
    return new TextEncoder().encode(JSON.stringify(contents[name]));
  };
}

test("a folder's problem is one line naming the file and field", async () => {
  const manifest = { format: "swipe-onnx", version: 1, tokenizer: { alphabet: "ab", eos_id: 0, sos_id: 9 } };
  await assert.rejects(loadDecoder(files({ "model.json": manifest }), { ort }),
    { name: "Error", message: "model.json: tokenizer.sos_id: must be 0 to 4, not 9" });
  await assert.rejects(loadDecoder(files({}), { ort }), { message: "model.json: missing" });
  await assert.rejects(loadDecoder("folder"), { name: "TypeError" });
});

test(".npy arrays: integers, floats and fixed-width strings", () => {
  const npy = (descr, shape, body) => {
    let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape}), }`;
    header += " ".repeat(63 - ((10 + header.length) % 64)) + "\n";
    const head = new Uint8Array([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length, 0]);
    return new Uint8Array([...head, ...new TextEncoder().encode(header), ...new Uint8Array(body.buffer)]);
  };
  assert.deepEqual([...readNpy(npy("<i4", "2, 2", Int32Array.from([1, -1, 3, 4]))).data], [1, -1, 3, 4]);
  assert.deepEqual(readNpy(npy("<f4", "3,", Float32Array.from([0.5, -Infinity, 2]))).shape, [3]);
  assert.deepEqual(readNpy(npy("<U2", "2,", Uint32Array.from([104, 105, 97, 0]))).data, ["hi", "a"]);
});

test("layouts: key width is the median of the letter keys'; centres are float32", () => {
  const key = (label, x, w) => ({ label, hitbox: { x, y: 0, w, h: 10 } });
  const layout = Layout.fromGrid({ grid_name: "t", width: 100, height: 10,
    keys: [key("A", 0, 10), key("b", 10, 20), { action: "shift", hitbox: { x: 30, y: 0, w: 50, h: 10 } }] });
  assert.equal(layout.keyWidth, 15);
  assert.equal(layout.keyIndexForChar("a"), 0);
  assert.deepEqual([...layout.centers.slice(0, 2)], [5, 5]);
  assert.ok(!layout.canType("c"));
});

test("a swipe's problem is one line", () => {
  assert.throws(() => checkSwipe([1, 2], [1, 2], [10, 5]), new SwipeError("time decreases"));
  assert.throws(() => checkSwipe([1], [1, 2], [0]), SwipeError);
  assert.throws(() => checkSwipe(["1"], [1], [0]), SwipeError);
  assert.deepEqual([...checkSwipe([1], [2], [3]).x], [1]);
});
