// swipe-decoder: decodes swipes (gesture typing) with an ONNX export of swipe, in Node
// (onnxruntime-node) and in a browser (onnxruntime-web); the same candidates as swipe.runtime.

export { OnnxDecoder, loadDecoder } from "./decoder.mjs";
export { OnnxFolderError, readExportFolder } from "./folder.mjs";
export { Layout, LayoutError, normalizeLabel } from "./keyboard.mjs";
export { Pipeline, mergeViews, readSettings } from "./pipeline.mjs";
export { preprocess, resampleCurve } from "./preprocess.mjs";
export { SwipeError, checkSwipe } from "./swipe.mjs";
export { Trie } from "./trie.mjs";
export {
  DEFAULT_LEARN, DEFAULT_VERBATIM, TrieEditor, UserDataError, UserWordError, UserWords, checkSpelling, offerVerbatim,
  readUserData,
} from "./user_words.mjs";
