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

# --- report, export and e-mail tests (tests/it/reports.rs, exports.rs, email.rs) ---
need_command pdftotext poppler-utils   # the PDF tests read the text back
need_command python3 python3           # tests/support/smtp_sink.py, the real SMTP server of the e-mail tests
if ! python3 -c "import aiosmtpd" 2>/dev/null; then
    log "installing aiosmtpd (the e-mail tests' SMTP server)"
    python3 -m pip install --quiet --disable-pip-version-check aiosmtpd 2>/dev/null ||
        python3 -m pip install --quiet --disable-pip-version-check --break-system-packages aiosmtpd 2>/dev/null ||
        need_command aiosmtpd python3-aiosmtpd
    python3 -c "import aiosmtpd" || { log "error: could not install the Python package aiosmtpd"; exit 1; }
fi
# --- end report tests ---

# --- API document tests (tests/it/schemathesis.rs): schemathesis from PyPI, pinned, in its own venv ---
SCHEMATHESIS_VERSION=4.32.5
schemathesis_venv=.eventmill/schemathesis
if ! "$schemathesis_venv/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    log "installing schemathesis $SCHEMATHESIS_VERSION (python3 -m venv $schemathesis_venv)"
    rm -rf "$schemathesis_venv"
    if ! python3 -m venv "$schemathesis_venv" 2>/dev/null; then
        log "installing python3-venv (Debian splits venv out of python3)"
        rm -rf "$schemathesis_venv"
        sudo=""
        [[ $(id -u) -eq 0 ]] || sudo="sudo"
        $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv "$schemathesis_venv"
    fi
    "$schemathesis_venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" ||
        { log "error: could not install schemathesis $SCHEMATHESIS_VERSION from PyPI"; exit 1; }
fi
export EVENTMILL_SCHEMATHESIS="$PWD/$schemathesis_venv/bin/schemathesis"
# --- end API document tests ---
