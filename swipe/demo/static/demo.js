// The swipe demo's page: draws the model's keyboard, sends swipes (in layout pixels) to the server,
// shows the candidates, a candidate's key-centre template and where the model looked.
"use strict";

const state = {
  info: null, layout: 0, view: null, scale: 1, trail: [], drawing: false, pointerId: null,
  pointerType: "mouse", swipe: null, candidates: [], selected: -1, template: null, attention: null,
  char: 0, layer: -1, prompt: null, queue: [], recorded: 0, left: 0, undo: false, seq: 0,
  decoder: "server",
};
const SHOWN_CANDIDATES = 8;
const $ = (id) => document.getElementById(id);
const canvas = $("keyboard");
const ctx = canvas.getContext("2d");

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)};
  const response = await fetch(path, init);
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || response.statusText);
  return answer;
}

// Where swipes are decoded: state.decoder names one of these. "server" posts the swipe to the server;
// static/ondevice.mjs adds "browser" (decoded in this page: no point leaves it). decode(body) answers
// {candidates: [{word, score, in_lexicon}], ms, where}; explain(body, word) {template, attention}
// (attention: null where the decoder has none). The user's words: learn(word) (a picked candidate)
// and add(word), where the decoder keeps them (a decoder without them learns nothing).
const decoders = {
  server: {
    async decode(body) {
      const answer = await api("/api/decode", body);
      return {candidates: answer.candidates, ms: answer.decode_ms, where: "on the server"};
    },
    async explain(body, word) {
      const [template, attention] = await Promise.all([
        api("/api/template", {layout: body.layout, word: word}),
        api("/api/attention", {...body, word: word}),
      ]);
      return {template: template.points, attention: attention};
    },
    async learn(word) { return (await api("/api/learn", {word: word})).learned; },
    async add(word) { return (await api("/api/words", {word: word})).added; },
  },
};

function status(text) { $("status").textContent = text || ""; }

function grid() { return state.info.layouts[state.layout]; }

// The part of the layout drawn: the keys' bounding box (a grid may leave room below its keys for
// keys the model does not know, such as the space bar).
function keysView(g) {
  if (!g.keys.length) return {x: 0, y: 0, w: g.width, h: g.height};
  const left = Math.min(...g.keys.map((k) => k.hitbox.x));
  const top = Math.min(...g.keys.map((k) => k.hitbox.y));
  const right = Math.max(...g.keys.map((k) => k.hitbox.x + k.hitbox.w));
  const bottom = Math.max(...g.keys.map((k) => k.hitbox.y + k.hitbox.h));
  return {x: left, y: top, w: right - left, h: bottom - top};
}

// ---- drawing ------------------------------------------------------------------------------------

function fit() {
  const v = state.view = keysView(grid());
  const width = Math.min(window.innerWidth - 24, 1000);
  const height = window.innerHeight * 0.6;
  state.scale = Math.min(width / v.w, height / v.h);
  const ratio = window.devicePixelRatio || 1;
  const s = state.scale * ratio;
  canvas.style.width = `${v.w * state.scale}px`;
  canvas.style.height = `${v.h * state.scale}px`;
  canvas.width = Math.round(v.w * s);
  canvas.height = Math.round(v.h * s);
  ctx.setTransform(s, 0, 0, s, -v.x * s, -v.y * s);
  draw();
}

const ACTION_LABELS = {space: "space", shift: "⇧", backspace: "⌫", enter: "⏎", toNumberState: "123",
  globe: "lang"};

function drawKeys() {
  const g = grid(), v = state.view;
  ctx.clearRect(v.x, v.y, v.w, v.h);
  const gap = Math.min(g.width, g.height) * 0.006;
  for (const key of g.keys) {
    const b = key.hitbox;
    ctx.fillStyle = key.label ? "#fff" : "#b8bcc6";
    ctx.beginPath();
    ctx.roundRect(b.x + gap, b.y + gap, b.w - 2 * gap, b.h - 2 * gap, 4 * gap);
    ctx.fill();
    const text = key.label || ACTION_LABELS[key.action] || key.action;
    ctx.fillStyle = "#333";
    ctx.font = `${Math.min(b.h * 0.4, b.w * (key.label ? 0.55 : 0.3))}px system-ui, sans-serif`;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(text, b.x + b.w / 2, b.y + b.h / 2);
  }
}

function polyline(points, color, width, dash) {
  if (points.length < 1) return;
  ctx.save();
  ctx.strokeStyle = color;
  ctx.lineWidth = width / state.scale;
  ctx.lineJoin = ctx.lineCap = "round";
  ctx.setLineDash(dash.map((d) => d / state.scale));
  ctx.beginPath();
  ctx.moveTo(points[0][0], points[0][1]);
  for (const [x, y] of points.slice(1)) ctx.lineTo(x, y);
  ctx.stroke();
  ctx.restore();
}

function dot(x, y, radius, color) {
  ctx.fillStyle = color;
  ctx.beginPath();
  ctx.arc(x, y, radius / state.scale, 0, 2 * Math.PI);
  ctx.fill();
}

// Weight in [0, 1] -> a colour from pale yellow to dark red.
function heat(w) {
  const r = 255 - 80 * w, g = 230 - 210 * w, b = 120 - 110 * w;
  return `rgba(${r | 0},${g | 0},${b | 0},${0.35 + 0.65 * w})`;
}

function attentionWeights() {
  const a = state.attention;
  if (!a) return null;
  if (state.layer >= 0) return a.layers[state.layer][state.char];
  const sum = a.points.map(() => 0);
  for (const layer of a.layers) layer[state.char].forEach((w, i) => { sum[i] += w / a.layers.length; });
  return sum;
}

function draw() {
  drawKeys();
  const trail = state.trail.map((p) => [p.x, p.y]);
  polyline(trail, "rgba(43,108,176,0.75)", 6, []);
  if (state.template) {
    polyline(state.template, "rgba(20,20,20,0.8)", 2, [6, 5]);
    state.template.forEach(([x, y]) => dot(x, y, 4, "rgba(20,20,20,0.8)"));
  }
  const weights = attentionWeights();
  if (weights) {
    const top = Math.max(...weights) || 1;
    state.attention.points.forEach(([x, y], i) => {
      const w = weights[i] / top;
      if (w > 0.04) dot(x, y, 2 + 8 * w, heat(w));  // the faintest points would only hide the trail
    });
  }
}

// ---- swiping ------------------------------------------------------------------------------------

function toLayout(event) {
  const rect = canvas.getBoundingClientRect();
  return {x: state.view.x + (event.clientX - rect.left) / state.scale,
    y: state.view.y + (event.clientY - rect.top) / state.scale};
}

function addPoint(event) {
  const p = toLayout(event);
  const last = state.trail[state.trail.length - 1];
  const t = Math.max(event.timeStamp - state.t0, last ? last.t : 0);
  if (last && last.x === p.x && last.y === p.y) return;
  state.trail.push({x: p.x, y: p.y, t: t});
}

canvas.addEventListener("pointerdown", (event) => {
  if (state.drawing) return;
  event.preventDefault();
  canvas.setPointerCapture(event.pointerId);
  Object.assign(state, {drawing: true, pointerId: event.pointerId, pointerType: event.pointerType,
    t0: event.timeStamp, trail: []});
  forgetSwipe();
  addPoint(event);
  draw();
});

canvas.addEventListener("pointermove", (event) => {
  if (!state.drawing || event.pointerId !== state.pointerId) return;
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
  for (const e of (events.length ? events : [event])) addPoint(e);
  draw();
});

function finish(event) {
  if (!state.drawing || event.pointerId !== state.pointerId) return;
  addPoint(event);
  state.drawing = false;
  if (state.trail.length === 1) {  // a tap: down and up at one place
    const p = state.trail[0];
    state.trail.push({x: p.x, y: p.y, t: Math.max(event.timeStamp - state.t0, p.t)});
  }
  swiped();
}
canvas.addEventListener("pointerup", finish);
canvas.addEventListener("pointercancel", finish);

function isTap(body) {
  return body.x.every((x) => x === body.x[0]) && body.y.every((y) => y === body.y[0]);
}

function swipeBody() {
  const r = (v) => Math.round(v * 100) / 100;
  return {layout: state.layout, x: state.trail.map((p) => r(p.x)), y: state.trail.map((p) => r(p.y)),
    t: state.trail.map((p) => r(p.t))};
}

// Forget the answers about the last swipe (a new swipe begins, or another keyboard is shown); an
// answer still on its way is dropped when it arrives.
function forgetSwipe() {
  Object.assign(state, {seq: state.seq + 1, swipe: null, candidates: [], selected: -1,
    template: null, attention: null});
  $("timing").textContent = "";
  status("");
  showCandidates();
  showAttention();
}

async function swiped() {
  const body = swipeBody(), seq = state.seq;
  $("timing").textContent = "decoding…";
  try {
    if (state.prompt && isTap(body)) {
      status(`a tap is not recorded: swipe ${state.prompt}`);
    } else if (state.prompt) {
      await record(body);
    }
    const answer = await decoders[state.decoder].decode(body);
    if (seq !== state.seq) return;
    Object.assign(state, {swipe: body, candidates: answer.candidates.slice(0, SHOWN_CANDIDATES)});
    const points = isTap(body) ? "a tap" : `${body.x.length} points`;
    $("timing").textContent = `decoded in ${answer.ms.toFixed(1)} ms ${answer.where}, ${points}` +
      (state.candidates.length ? "" : ": no candidate");
    showCandidates();
    if (state.candidates.length) await select(0);
  } catch (err) {
    if (seq !== state.seq) return;
    $("timing").textContent = "";
    status(err.message);
  }
}

// ---- candidates, templates, attention -----------------------------------------------------------

function showCandidates() {
  const list = $("candidates");
  list.replaceChildren();
  state.candidates.forEach((c, i) => {
    const button = document.createElement("button");
    button.type = "button";
    const verbatim = c.in_lexicon === false;  // the model's own spelling, outside the lexicon
    button.className = (i === state.selected ? "selected " : "") + (verbatim ? "verbatim" : "");
    button.dataset.word = c.word;
    if (verbatim) button.title = "as you swiped it: not a word the keyboard knows; pick it to add it";
    button.innerHTML = `<span class="word"></span><span class="score">${c.score.toFixed(2)}</span>`;
    button.firstChild.textContent = verbatim ? `“${c.word}”` : c.word;
    button.addEventListener("click", () => chooseCandidate(i).catch((err) => status(err.message)));
    const item = document.createElement("li");
    item.append(button);
    list.append(item);
  });
}

// ---- the user's words ----------------------------------------------------------------------------

// The user picked candidate i: it goes into the typed text and is learned (ranks higher from now on;
// a verbatim candidate becomes a word of theirs), then its template and attention are shown.
async function chooseCandidate(i) {
  const word = state.candidates[i].word, decoder = decoders[state.decoder];
  const learned = decoder.learn && decoder.learn(word).then(() => {
    $("typed").textContent = `${$("typed").textContent} ${word}`.trim();
  });
  await Promise.all([select(i), learned]);
}

// The add-a-word box: the decoder outputs the word from the next swipe on.
async function addWord(event) {
  event.preventDefault();
  const input = $("new-word"), word = input.value.trim().toLowerCase(), decoder = decoders[state.decoder];
  if (!word) return;
  if (!decoder.add) throw new Error("adding words needs decoding on the server");
  status("");
  $("added").textContent = `added ${await decoder.add(word)}: swipe it`;
  input.value = "";
}

$("add-word").addEventListener("submit", (event) => addWord(event).catch((err) => {
  $("added").textContent = "";
  status(err.message);
}));

// Show candidate i of the decoded swipe: its template and where the model looked while reading it.
async function select(i) {
  const seq = state.seq, body = state.swipe, word = state.candidates[i].word;
  Object.assign(state, {selected: i, template: null, attention: null});
  showCandidates();
  showAttention();
  draw();
  const {template, attention} = await decoders[state.decoder].explain(body, word);
  if (seq !== state.seq || state.selected !== i) return;  // another swipe or candidate since
  Object.assign(state, {template: template, attention: attention, char: 0});
  showAttention();
  draw();
}

function showAttention() {
  const a = state.attention;
  $("attention-box").hidden = !a;
  if (!a) return;
  $("attention-word").textContent = a.word;
  const chars = $("attention-chars");
  chars.replaceChildren();
  [...a.word, "end"].forEach((c, i) => {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = c;
    button.className = i === state.char ? "selected" : "";
    button.addEventListener("click", () => { state.char = i; showAttention(); draw(); });
    chars.append(button);
  });
  const layers = $("attention-layer");
  if (layers.options.length !== a.layers.length + 1) {
    layers.replaceChildren(new Option("all (mean)", "-1"));
    a.layers.forEach((_, i) => layers.append(new Option(String(i + 1), String(i))));
    layers.value = String(state.layer);
  }
}

$("attention-layer").addEventListener("change", (e) => { state.layer = Number(e.target.value); draw(); });

// ---- recording ----------------------------------------------------------------------------------

// Recording: the prompted word (null: done), words put back by an undo (prompted first), and the
// server's count of words left after those.
function showPrompt(word) {
  state.prompt = word;
  $("prompt-word").hidden = $("skip").hidden = !word;
  $("prompt-done").hidden = !!word;
  $("prompt").textContent = word || "";
  const left = state.left + state.queue.length;
  $("recorded").textContent = `${state.recorded} recorded` + (word ? `, ${left} more to go` : "");
  $("undo").hidden = !state.undo;
}

async function nextPrompt() {
  if (state.queue.length) return showPrompt(state.queue.shift());
  const answer = await api(`/api/prompt?layout=${state.layout}`);
  state.left = answer.left;
  showPrompt(answer.word);
}

async function record(body) {
  const device = {screen_width: screen.width, screen_height: screen.height,
    pixel_ratio: window.devicePixelRatio || 1, pointer_type: state.pointerType, scale: state.scale};
  const answer = await api("/api/record", {...body, word: state.prompt, device: device});
  Object.assign(state, {recorded: answer.recorded, undo: true});
  await nextPrompt();
}

// Take the last recorded swipe back out of the file and prompt its word again.
async function undo() {
  const answer = await api("/api/undo", {});
  if (state.prompt) state.queue.unshift(state.prompt);
  Object.assign(state, {recorded: answer.recorded, undo: false});
  showPrompt(answer.word);
  status(`your swipe of ${answer.word} is removed: swipe it again`);
}

$("skip").addEventListener("click", () => nextPrompt().catch((err) => status(err.message)));
$("undo").addEventListener("click", () => undo().catch((err) => status(err.message)));

// ---- start --------------------------------------------------------------------------------------

async function start() {
  state.info = await api("/api/info");
  $("model").textContent = state.info.model;
  const select = $("layout");
  state.info.layouts.forEach((g, i) => select.append(new Option(g.grid_name, String(i))));
  $("layout-box").hidden = state.info.layouts.length < 2;
  select.addEventListener("change", () => {
    Object.assign(state, {layout: Number(select.value), trail: [], queue: [], undo: false});
    forgetSwipe();
    fit();
    if (state.info.recording) nextPrompt().catch((err) => status(err.message));
  });
  if (state.info.recording) {
    $("prompt-box").hidden = false;
    state.recorded = state.info.recorded;
    await nextPrompt();
  }
  if (state.info.ondevice && !state.info.recording) await (await import("/static/ondevice.mjs")).offer();
  fit();
  window.addEventListener("resize", fit);
  document.body.dataset.ready = "1";
}

start().catch((err) => status(err.message));
