#!/usr/bin/env bash
# How long the test build takes after a one-line edit: docs/benchmarks.md, "Developer workflow".
#
# Usage: scripts/bench-rebuild.sh FILE...
#   For each FILE: appends a comment line, times `cargo test --workspace --all-targets --no-run`
#   as scripts/test.sh builds (clippy-driver as the workspace's compiler, no incremental state),
#   puts the file back and times the build again. Run it on a built tree (it builds once first)
#   and on an otherwise idle machine; each FILE is restored even when a build fails.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -gt 0 ]] || { sed -n '2,8p' "$0"; exit 2; }
export CARGO_INCREMENTAL=0
RUSTC_WORKSPACE_WRAPPER="$(rustc --print sysroot)/bin/clippy-driver"
export RUSTC_WORKSPACE_WRAPPER

build() {
  local started=$SECONDS
  cargo test --workspace --all-targets --locked --no-run -q >/dev/null
  echo $((SECONDS - started))
}

echo "built first: $(build) s"
for file in "$@"; do
  saved="$(mktemp)"
  cp "$file" "$saved"
  trap 'cp "$saved" "$file"' EXIT
  echo "// one line" >> "$file"
  edited=$(build)
  cp "$saved" "$file"
  trap - EXIT
  restored=$(build)
  rm -f "$saved"
  echo "$file: ${edited} s after the edit, ${restored} s after putting it back"
done
