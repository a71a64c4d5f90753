#!/usr/bin/env bash
# Shared helpers for scripts/test and scripts/serve. Source it, then call
#   bootstrap            # venv + `pip install -e .`
#   bootstrap test       # venv + `pip install -e '.[test]'`
# After sourcing, the current directory is the repository root ($REPO_ROOT).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO_ROOT"
export REPO_ROOT

VENV="$REPO_ROOT/.venv"

log() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# Succeeds when the given interpreter is Python >= 3.11.
_python_ok() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1
}

# Prints the best available Python >= 3.11 (newest first), or fails.
find_python() {
    local candidate
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 && _python_ok "$candidate"; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

ensure_venv() {
    if [ -x "$VENV/bin/python" ] && _python_ok "$VENV/bin/python"; then
        return 0
    fi
    local py
    if ! py="$(find_python)"; then
        local found="none"
        command -v python3 >/dev/null 2>&1 && found="$(python3 -V 2>&1)"
        die "Python >= 3.11 is required (found: $found). Install python3.11 or newer and re-run."
    fi
    if [ -e "$VENV" ]; then
        log "Existing .venv is broken or uses Python < 3.11: recreating it"
        rm -rf "$VENV"
    fi
    log "Creating .venv with $py ($("$py" -V 2>&1))"
    # The pip that comes with Python 3.11 installs the project (editable installs from
    # pyproject.toml need pip 21.3): not upgrading it saves a download and a few seconds.
    "$py" -m venv "$VENV" || die "could not create .venv (on Debian: apt-get install python3-venv)"
}

# Runs `pip "$@"` in the venv; its output (including build-backend warnings) is only
# shown when it fails.
_quiet_pip() {
    _quiet "$VENV/bin/python" -m pip -q "$@"
}

# Runs a command; its output is only shown when it fails.
_quiet() {
    local out rc=0
    out="$(mktemp)"
    "$@" >"$out" 2>&1 || rc=$?
    [ "$rc" -eq 0 ] || cat "$out" >&2
    rm -f "$out"
    return "$rc"
}

# Debian packages needed at runtime by WeasyPrint, plus poppler-utils (pdftoppm), chromium and
# zbar-tools (zbarimg reads the payment QR code of a rendered invoice) for tests.
SYSTEM_PACKAGES=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core poppler-utils chromium zbar-tools)

_dpkg_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null | cut -c1-2)" = "ii" ]
}

ensure_system_libs() {
    if ! command -v dpkg-query >/dev/null 2>&1; then
        # Not a Debian-like system: do a best-effort check via ldconfig.
        if command -v ldconfig >/dev/null 2>&1 && ! ldconfig -p 2>/dev/null | grep -q 'libpango-1.0.so'; then
            warn "Pango not found: WeasyPrint (PDF invoices) will not work. Install pango, harfbuzz and poppler."
        fi
        return 0
    fi
    local missing=() pkg
    for pkg in "${SYSTEM_PACKAGES[@]}"; do
        _dpkg_installed "$pkg" || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0

    if is_root && command -v apt-get >/dev/null 2>&1; then
        log "Installing system packages: ${missing[*]}"
        if DEBIAN_FRONTEND=noninteractive apt-get update -qq \
            && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null </dev/null; then
            return 0
        fi
        warn "apt-get failed to install: ${missing[*]} (PDF features/tests will fail)"
    else
        warn "missing system packages: ${missing[*]}"
        warn "PDF generation (WeasyPrint) and PDF tests will fail. To fix, run:"
        warn "  sudo apt-get update && sudo apt-get install -y ${missing[*]}"
    fi
}

# bootstrap [test]
bootstrap() {
    local extras="${1:-}"
    ensure_venv
    ensure_system_libs
    local target="."
    [ -n "$extras" ] && target=".[$extras]"
    # The install is editable: code changes need no reinstall, only a changed pyproject.toml
    # (dependencies, entry points) does. A stamp in the venv remembers what was installed.
    local stamp="$VENV/.installed-${extras:-base}"
    local wanted
    wanted="$("$VENV/bin/python" -c 'import hashlib; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest())')"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
        return 0
    fi
    _install "$target" || die "installing the project ('$target') failed (output above)"
    printf '%s\n' "$wanted" >"$stamp"
}

# Installs the project with uv when it can get it (a few seconds from a fresh clone, against
# half a minute with pip), with pip otherwise. Neither compiles every module upfront: Python
# compiles those it imports, when it first imports them.
_install() {
    local target="$1"
    if [ ! -x "$VENV/bin/uv" ]; then
        _quiet_pip install --disable-pip-version-check uv >/dev/null 2>&1 || true
    fi
    if [ -x "$VENV/bin/uv" ]; then
        log "Installing project (uv pip install -e '$target')"
        _quiet "$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python" -e "$target" && return 0
        warn "uv could not install the project (output above): trying pip"
    fi
    log "Installing project (pip install -e '$target')"
    _quiet_pip install --disable-pip-version-check --no-compile -e "$target"
}
