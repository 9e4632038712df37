#!/usr/bin/env bash
# Installs what the tests need (Debian peers + Python packages) and runs the whole suite.
# This is the README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# real peers for the interop tests: StayRTR (cache), RTRlib rtrclient / rpki-rov, BIRD 2, FRR
# (bgpd + its RPKI module), GoBGP, tmux; chromium + chromium-driver for the web view tests
# (Selenium, headless); their system services are never used (tests start private instances)
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends stayrtr rtr-tools bird2 tmux frr frr-rpki-rtrlib \
    gobgpd chromium chromium-driver >/dev/null
python3 -m pip install -q -e '.[test]'
python3 -m pytest -q -ra --durations=10 "$@"
