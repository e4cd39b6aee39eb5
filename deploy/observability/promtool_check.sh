#!/usr/bin/env bash
# `promtool check rules` and `promtool test rules` on the alert rules, and `promtool check config`. Not part of
# `make test`: building promtool from the Go module proxy took 45 minutes on a 2-core machine (tests/unit/test_observability.py checks the same
# files in Python). Built once into ~/.cache/backoffice/bin, like the project's other Go tools.
set -euo pipefail

PROMTOOL_MODULE="github.com/prometheus/prometheus/cmd/promtool@${PROMTOOL_VERSION:-v0.316.0}" # Prometheus 3.16
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="${XDG_CACHE_HOME:-$HOME/.cache}/backoffice/bin"

promtool="$(command -v promtool || true)"
if [ -z "$promtool" ]; then
    promtool="$bin/promtool"
    if [ ! -x "$promtool" ]; then
        go="$(command -v go || echo /usr/local/go/bin/go)"
        echo "building promtool ($PROMTOOL_MODULE) into $bin, once" >&2
        mkdir -p "$bin"
        GOBIN="$bin" GOFLAGS=-buildvcs=false "$go" install "$PROMTOOL_MODULE"
    fi
fi

"$promtool" check rules "$here"/prometheus/rules/*.yml
"$promtool" test rules "$here"/prometheus/tests/*.yml

# The config too, with the container's paths (the token secret, the mounted rules) pointed at local files.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo token > "$work/token"
sed -e "s|/run/secrets/metrics_token|$work/token|" -e "s|/etc/prometheus/rules/|$here/prometheus/rules/|" \
    "$here/prometheus/prometheus.yml" > "$work/prometheus.yml"
"$promtool" check config "$work/prometheus.yml"
