// The pipeline's backend on an export folder's ONNX graphs (decoder.py's OnnxBackend). The
// onnxruntime module is passed in: onnxruntime-node in Node, onnxruntime-web in a browser.

import { logSoftmax } from "./pipeline.mjs";

/** An array with its shape: {type: "float32" | "int64" | "bool" | ..., data, dims}. */
function array(type, data, dims) {
  return { type, data, dims };
}

function rowSize(dims) {
  return dims.slice(1).reduce((a, b) => a * b, 1);
}

/** Rows `rows` of `values` (its first axis). */
function takeRows(values, rows) {
  const size = rowSize(values.dims);
  const data = new values.data.constructor(rows.length * size);
  rows.forEach((r, i) => data.set(values.data.subarray(r * size, (r + 1) * size), i * size));
  return array(values.type, data, [rows.length, ...values.dims.slice(1)]);
}

/**
 * The encoder graph runs once per batch of swipe views, the decoder-step graph once per output
 * character for all hypotheses, the decoder-score graph (where the folder has one) once per batch
 * of given words to score. The memory is an object of the encoder's outputs, one row per
 * curve; the state one of the decoder step's state inputs, (C, K, ...).
 */
export class OnnxBackend {
  /**
   * @param ort  the onnxruntime module
   * @param encoder  an ort.InferenceSession of the encoder graph
   * @param decoderStep  one of the decoder-step graph
   * @param graphs  model.json's "graphs"
   * @param numTokens  output tokens (V)
   * @param decoderScore  one of the decoder-score graph, or null (score gives null: the pipeline steps)
   */
  constructor(ort, encoder, decoderStep, graphs, numTokens, decoderScore = null) {
    this.ort = ort;
    this.encoder = encoder;
    this.decoderStep = decoderStep;
    this.decoderScore = decoderScore;
    this.scoreInputs = decoderScore === null ? [] : graphs.decoder_score.inputs;
    this.encoderOutputs = graphs.encoder.outputs;
    this.stepInputs = graphs.decoder_step.inputs;
    this.stepOutputs = graphs.decoder_step.outputs;
    this.perCurve = graphs.decoder_step.per_curve_inputs;
    this.state = graphs.decoder_step.state;
    this.numTokens = numTokens;
  }

  tensor(values) {
    return new this.ort.Tensor(values.type, values.data, values.dims);
  }

  static int64(values, dims) {
    return array("int64", BigInt64Array.from(values, (v) => BigInt(v)), dims);
  }

  /** The memory of zero-padded points (B, T, 3), their lengths and layout ids. */
  async encode(points, dims, lengths, layoutIds) {
    if (dims[1] < 2) { // the graph computes derivatives: at least two (padded) points
      const padded = new Float32Array(points.length * 2);
      for (let b = 0; b < dims[0]; b++) padded.set(points.subarray(b * dims[1] * 3, (b + 1) * dims[1] * 3), b * dims[1] * 6);
      [points, dims] = [padded, [dims[0], dims[1] * 2, 3]];
    }
    const feeds = {
      points: this.tensor(array("float32", points, dims)),
      lengths: this.tensor(OnnxBackend.int64(lengths, [lengths.length])),
      layout_ids: this.tensor(OnnxBackend.int64(layoutIds, [layoutIds.length])),
    };
    const outputs = await this.encoder.run(feeds);
    return Object.fromEntries(this.encoderOutputs.map((name) => {
      const t = outputs[name];
      return [name, array(t.type, t.data, [...t.dims])];
    }));
  }

  /** The memory of curves `curves`. */
  take(memory, curves) {
    return Object.fromEntries(Object.entries(memory).map(([name, values]) => [name, takeRows(values, curves)]));
  }

  /** Next-token log-probabilities (C * K * V float32) of each hypothesis' last token, and the new state. */
  async step(tokens, dims, memory, state) {
    if (state === null) {
      // One hypothesis per curve: zeros (the transformer's cache of no positions yet) or the
      // encoder's output of that name (the RNN's first state).
      state = {};
      for (const entry of this.state) {
        if (entry.init === "zeros") {
          const shape = [dims[0], 1, ...entry.shape];
          state[entry.input] = array("float32", new Float32Array(shape.reduce((a, b) => a * b, 1)), shape);
        } else {
          const values = memory[entry.input];
          state[entry.input] = array(values.type, values.data, [values.dims[0], 1, ...values.dims.slice(1)]);
        }
      }
    }
    const feeds = { tokens: OnnxBackend.int64(tokens, dims), ...state };
    for (const name of this.perCurve) feeds[name] = memory[name];
    const inputs = Object.fromEntries(this.stepInputs.map((name) => [name, this.tensor(feeds[name])]));
    const outputs = await this.decoderStep.run(inputs);
    const logits = outputs[this.stepOutputs[0]];
    const next = {};
    this.state.forEach((entry, i) => {
      const t = outputs[this.stepOutputs[1 + i]];
      next[entry.input] = array(t.type, t.data, [...t.dims]);
    });
    return [logSoftmax(logits.data, this.numTokens), next];
  }

  /** Log-probabilities (C * W * L * V float32) of the token after each teacher-forced input
   * `tokens` (C * W * L, dims [C, W, L]), the W words of curve c reading row c of the memory;
   * null without a decoder-score graph. */
  async score(tokens, dims, memory) {
    if (this.decoderScore === null) return null;
    const feeds = { ...memory, tokens: OnnxBackend.int64(tokens, dims) };
    const inputs = Object.fromEntries(this.scoreInputs.map((name) => [name, this.tensor(feeds[name])]));
    const outputs = await this.decoderScore.run(inputs);
    return logSoftmax(outputs.logits.data, this.numTokens);
  }

  /** Curves `curves` of a state (null: all), hypothesis j of kept curve i continuing hypothesis
   * parents[i * K + j] (-1: an empty slot, which copies any: it is never read). */
  reorder(state, curves, parents, dims) {
    const [c, k] = dims;
    const out = {};
    for (const [name, values] of Object.entries(state)) {
      const oldK = values.dims[1];
      const size = values.dims.slice(2).reduce((a, b) => a * b, 1);
      const data = new values.data.constructor(c * k * size);
      for (let i = 0; i < c; i++) {
        const row = curves === null ? i : curves[i];
        for (let j = 0; j < k; j++) {
          const slot = Math.max(parents[i * k + j], 0);
          const from = (row * oldK + slot) * size;
          data.set(values.data.subarray(from, from + size), (i * k + j) * size);
        }
      }
      out[name] = array(values.type, data, [c, k, ...values.dims.slice(2)]);
    }
    return out;
  }
}
