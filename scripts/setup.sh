#!/usr/bin/env bash
# Idempotent set-up: find a Python >= 3.12, make .venv, install the package with its dev extras.
# Re-running is cheap: the install is redone only when pyproject.toml or constraints.txt changes.
# Then the bundled model structures are compiled into the on-disk caches (as rstanarm compiles its Stan models at
# installation), so the first fit does not compile; BAYES_RESCUE_PRECOMPILE=0 skips this step.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
  local cand
  for cand in "${PYTHON:-}" python3.13 python3.12 python3 python; do
    [ -n "$cand" ] || continue
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      command -v "$cand"; return 0
    fi
  done
  if command -v pyenv >/dev/null 2>&1; then
    local root; root=$(pyenv root)
    for cand in $(ls -d "$root"/versions/3.1[2-9]* 2>/dev/null | sort -V -r); do
      if [ -x "$cand/bin/python" ] && "$cand/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then
        echo "$cand/bin/python"; return 0
      fi
    done
  fi
  return 1
}

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
  py=$(find_python) || { echo "setup: no Python >= 3.12 found (set PYTHON=/path/to/python3.12)" >&2; exit 1; }
  echo "setup: creating .venv with $py" >&2
  rm -rf .venv
  "$py" -m venv .venv
fi
stamp=".venv/.installed-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setup: installing bayes_rescue and its dependencies into .venv" >&2
  .venv/bin/python -m pip install --quiet --upgrade pip
  # the tested versions (constraints.txt), so a fresh machine gets what CI tested
  .venv/bin/python -m pip install --quiet -c constraints.txt -e ".[dev]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
if [ "${BAYES_RESCUE_PRECOMPILE:-1}" != "0" ]; then
  echo "setup: compiling the bundled model structures (once per machine; later runs load them from the cache)" >&2
  .venv/bin/python scripts/precompile.py >&2
fi
