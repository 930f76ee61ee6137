// Decoding in this browser: the page loads the exported ONNX model, onnxruntime-web (WebAssembly)
// and the JavaScript decoder (js/src) from the demo server, then decodes each swipe itself: no point
// leaves the page. offer() adds the decoder "browser" to demo.js's decoders and a switch to the header.

let loading = null;  // the decoder's promise, once asked for
let savedWordsNote = "";  // what became of the words saved in this browser, said once the model is loaded

// The user's words (those added and the candidates picked) are kept in this browser's storage, in
// the format of the user data files (swipe.decoding.user_words), and applied when the model loads.
const USER_DATA_KEY = "swipe-user-data";
let saving = true;  // false where the saved words could not be applied: they are left as they are

function browserDecoder() {
  return (loading ||= loadBrowserDecoder().then(withSavedWords));
}

function withSavedWords(decoder) {
  const where = "the words saved in this browser";
  try {
    const saved = localStorage.getItem(USER_DATA_KEY);
    if (saved !== null) decoder.loadUserData(JSON.parse(saved), where);
  } catch (err) {
    saving = false;
    const why = err instanceof SyntaxError ? `${where}: not JSON` : err.message.replace(/; fix or remove it$/, "");
    savedWordsNote = `${why}: not applied, and new words are kept in this page only`;
  }
  return decoder;
}

function saveWords(decoder) {
  if (!saving) return;
  try {
    localStorage.setItem(USER_DATA_KEY, JSON.stringify(decoder.userData()));
  } catch (err) {  // storage off or full: the words stay in this page
    saving = false;
    status(`new words are kept in this page only (this browser's storage: ${err.message})`);
  }
}

// The files' places on the demo server: /api/info's "ondevice" ({model, module, ort, wasm, missing}).
function files() { return state.info.ondevice; }

function here(path) { return new URL(path, location.href).href; }

// Load onnxruntime-web, the decoder module and the model from the demo server; one WebAssembly
// thread, no worker (so the page needs no cross-origin isolation). options go to loadDecoder
// ({int8: true}: the int8 graphs).
export async function loadBrowserDecoder(where = files(), options = {}) {
  if (where.missing) throw new Error(where.missing);
  const ort = await import(here(where.ort));
  Object.assign(ort.env.wasm, {wasmPaths: here(where.wasm), numThreads: 1, proxy: false});
  const {loadDecoder} = await import(here(where.module));
  return loadDecoder(here(where.model), {...options, ort});
}

// Bytes this page has fetched of the model, onnxruntime-web and the decoder module.
export function downloadedBytes(where = files()) {
  const prefixes = [where.model, where.wasm, where.module.replace(/[^/]*$/, "")].map(here);
  return performance.getEntriesByType("resource")
    .filter((entry) => prefixes.some((prefix) => entry.name.startsWith(prefix)))
    .reduce((sum, entry) => sum + entry.encodedBodySize, 0);
}

// A swipe's candidates, best first, and the milliseconds the decoding took in this page.
async function decodeHere(decoder, body, layoutName) {
  const start = performance.now();
  const candidates = await decoder.decode({x: body.x, y: body.y, t: body.t, layout: layoutName});
  const ms = performance.now() - start;
  return {candidates: candidates.map((c) => ({word: c.word, score: c.score, in_lexicon: c.inLexicon})), ms};
}

// The key centres of a word's letters on the shown keyboard: its template.
function keyCentres(word) {
  const keys = new Map(grid().keys.filter((k) => k.label).map((k) => [k.label.toLowerCase(), k.hitbox]));
  return [...word].map((c) => keys.get(c)).filter(Boolean).map((b) => [b.x + b.w / 2, b.y + b.h / 2]);
}

const browser = {
  async decode(body) {
    const decoder = await browserDecoder();
    const answer = await decodeHere(decoder, body, grid().grid_name);
    return {...answer, where: "in this browser"};
  },
  async explain(body, word) { return {template: keyCentres(word), attention: null}; },
  // The user's words stay in this browser (its decoder and storage): nothing is posted to the server.
  async learn(word) {
    const decoder = await browserDecoder();
    decoder.learn(word);
    saveWords(decoder);
    return word;
  },
  async add(word) {
    const decoder = await browserDecoder();
    decoder.addWords([word]);
    saveWords(decoder);
    return word;
  },
};

export async function offer() {
  decoders.browser = browser;
  const label = document.createElement("label");
  label.append("decode ");
  const select = document.createElement("select");
  select.id = "decode-where";
  select.append(new Option("on the server", "server"), new Option("in this browser", "browser"));
  label.append(select);
  $("status").before(label);
  const missing = files().missing;
  if (missing) {
    select.options[1].disabled = true;
    label.title = missing;
    label.append(Object.assign(document.createElement("small"), {id: "decode-note", textContent: ` (${missing})`}));
  }
  select.addEventListener("change", async () => {
    forgetSwipe();
    if (select.value === "browser") {
      select.disabled = true;
      status("loading the model into this browser…");
      const start = performance.now();
      try {
        await browserDecoder();
      } catch (err) {
        loading = null;
        select.value = "server";
        select.disabled = false;
        status(`cannot decode in this browser: ${err.message}`);
        return;
      }
      select.disabled = false;
      const mb = (downloadedBytes() / 1e6).toFixed(1);
      $("timing").textContent = `model loaded into this browser: ${mb} MB in ${((performance.now() - start) / 1000).toFixed(1)} s`;
      status(savedWordsNote);
    }
    state.decoder = select.value;
  });
}
