#!/usr/bin/env bash
# axe-core (the npm package) for the browser tests' accessibility checks. Source it after
# _bootstrap.sh, then call `provide_axe`: it exports LICENSING_TEST_AXE (the path of axe.min.js,
# installed once into .cache/axe with npm) or LICENSING_TEST_AXE_SKIP (why there is none).
# Inputs:
#   LICENSING_TEST_AXE            if already set, that file is used
#   CI (non-empty), as root       npm is installed with apt-get when missing

AXE_VERSION="4.14.1"

provide_axe() {
    if [ -n "${LICENSING_TEST_AXE:-}" ]; then
        return 0
    fi
    local dir="$REPO_ROOT/.cache/axe"
    local file="$dir/node_modules/axe-core/axe.min.js"
    if [ ! -f "$file" ] || ! grep -q "\"version\": \"$AXE_VERSION\"" "$dir/node_modules/axe-core/package.json" 2>/dev/null; then
        if ! command -v npm >/dev/null 2>&1 && is_root && [ -n "${CI:-}" ] && command -v apt-get >/dev/null 2>&1; then
            log "npm not found: installing it with apt-get (for axe-core)"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null </dev/null || true
        fi
        if ! command -v npm >/dev/null 2>&1; then
            export LICENSING_TEST_AXE_SKIP="npm is not installed, so axe-core is not: the accessibility checks are skipped (apt-get install npm)"
            warn "$LICENSING_TEST_AXE_SKIP"
            return 0
        fi
        log "Installing axe-core $AXE_VERSION (npm) into .cache/axe"
        mkdir -p "$dir"
        if ! _quiet npm install --prefix "$dir" --no-audit --no-fund --no-save --ignore-scripts "axe-core@$AXE_VERSION"; then
            export LICENSING_TEST_AXE_SKIP="npm could not install axe-core $AXE_VERSION: the accessibility checks are skipped"
            warn "$LICENSING_TEST_AXE_SKIP"
            return 0
        fi
    fi
    export LICENSING_TEST_AXE="$file"
}
