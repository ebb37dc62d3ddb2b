# shellcheck shell=bash disable=SC2034  # ROOT, WASM_LINKER: used by the sourcing scripts
# Shared helpers for the scripts in scripts/: sourced by them, not run directly.
# need_apt, ensure_rust and ensure_wasm_toolchain are idempotent and cheap when
# everything is already installed (apt-get runs only when something is missing).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

die() { echo "error: $*" >&2; exit 1; }
step() { printf '\n==> %s\n' "$*" >&2; }

_apt_updated=""
# need_apt pkg...: install the Debian packages that are not installed yet.
need_apt() {
  local pkg missing=()
  for pkg in "$@"; do
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" = installed ] || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "missing packages (${missing[*]}) and no apt-get: install them by hand"
  step "installing Debian packages: ${missing[*]}"
  if [ -z "$_apt_updated" ]; then
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q || die "apt-get update failed"
    _apt_updated=1
  fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
    </dev/null || die "apt-get install ${missing[*]} failed"
}

# ensure_rust: make sure a `cargo` is on PATH (rustup's if present, else Debian's rustc-web/cargo-web).
ensure_rust() {
  if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  if ! command -v cargo >/dev/null; then
    need_apt rustc-web cargo-web   # /usr/bin/cargo
  fi
  command -v cargo >/dev/null || die "no cargo on PATH even after installing cargo-web"
  # Host binaries link through `cc`.
  command -v cc >/dev/null || need_apt build-essential pkg-config
  echo "using $(command -v cargo): $(cargo --version)" >&2
}

# ensure_wasm_toolchain: Debian's rustc/cargo 1.96 plus std sources and lld for
# wasm32-unknown-unknown with -Zbuild-std (see TOOLCHAIN notes). Sets WASM_LINKER
# to a linker name when rust-lld does not resolve (empty means rustc's default).
ensure_wasm_toolchain() {
  need_apt rustc-web cargo-web rust-web-src rust-web-llvm lld-22
  [ -x /usr/bin/rustc ] || die "/usr/bin/rustc missing after installing rustc-web"
  [ -x /usr/bin/cargo ] || die "/usr/bin/cargo missing after installing cargo-web"
  [ -d /usr/lib/rustlib/src/rust/library ] ||
    die "/usr/lib/rustlib/src/rust/library missing: rust-web-src is needed for -Zbuild-std"
  WASM_LINKER=""
  if ! command -v rust-lld >/dev/null; then
    if command -v wasm-ld-22 >/dev/null; then WASM_LINKER="wasm-ld-22"
    else need_apt lld-19; WASM_LINKER="wasm-ld-19"
    fi
  fi
}

# ensure_socketio_baseline: Node.js and npm (Debian's, unless some are already on PATH) and the
# socket.io baseline's packages in bench/socketio/node_modules, exactly as package-lock.json pins
# them (`npm ci`). The benchmarks and their CI smoke test compare minim with it.
ensure_socketio_baseline() {
  command -v node >/dev/null || need_apt nodejs
  # A Node.js from elsewhere (e.g. NodeSource) brings its own npm, which Debian's would conflict with.
  command -v npm >/dev/null || need_apt npm
  local dir="$ROOT/bench/socketio"
  if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    step "installing the socket.io baseline's packages (npm ci)"
    (cd "$dir" && npm ci --omit=dev --no-audit --no-fund --loglevel=error) || die "npm ci in bench/socketio failed"
  fi
}
