// Loads the WebAssembly app. A file, not an inline script, so the Content-Security-Policy can
// forbid inline scripts entirely.
import init from "/minim.js";
init({ module_or_path: "/minim_bg.wasm" });
