#!/usr/bin/env bash
# run_pair.sh: one verified transfer over a lossy emulated link (see --help).
#
# The command users type.  It sets up .venv on first use (a fresh machine has
# only python3), then hands over to the harness (harness/run_pair.py), which
# checks the options, starts the emulators, the receiver and the sender,
# verifies the output, and stops every process it started whatever happens.
# The options are checked before the set-up, which --help and --dry-run
# never need.
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
ME=run_pair.sh
export RUN_PAIR_PYTHON="$PY"                        # what the programs run under
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"  # this tree's harness, whatever .venv has

die() { echo "$ME: error: $*" >&2; exit 2; }

if ! "$PY" -c "import loguru, bokeh, common, sender, receiver, emulator, analysis, harness" 2>/dev/null
then
    command -v python3 >/dev/null || die "python3 is needed"
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "python 3.11 or newer is needed (python3 is $(python3 -V 2>&1))"
    # The standard library is enough to check the options: exit 3 means a run follows.
    RUN_PAIR_PRECHECK=1 python3 -m harness.run_pair "$@"
    rc=$?
    [ "$rc" = 3 ] || exit "$rc"
    echo "$ME: setting up $VENV (first run)..." >&2
    python3 -m venv "$VENV" || die "cannot create $VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -e "$ROOT[extras]" >&2 \
        || die "pip install failed"
fi
exec "$PY" -m harness.run_pair "$@"
