# Tools of the test suites beyond Redis and PostgreSQL; sourced by scripts/test.sh, which defines
# need_command <command> <debian-package> and log. Each suite keeps its lines in its own block.

# --- admin browser tests (tests/browser, tests/it/admin*.rs): Chromium driven by playwright-core ---
need_command chromium chromium
need_command node nodejs
need_command npm npm
if [[ ! -d tests/browser/node_modules/playwright-core ]]; then
    log "installing the browser tests' node modules (npm ci --prefix tests/browser)"
    npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error >/dev/null
fi
# --- end admin browser tests ---
