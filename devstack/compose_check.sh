#!/usr/bin/env bash
# Validates docker-compose.yml with `docker compose config -q` (no Docker engine needed).
#
# If `docker compose` is missing, builds the Compose CLI plugin from the Go module proxy once, into
# ~/.cache/backoffice (outside the clone, so every clone and CI run reuses one build), and installs it as
# ~/.docker/cli-plugins/docker-compose.
#
# Why not `go install github.com/docker/compose/v5/cmd@VERSION`: every Compose release's go.mod carries
# `exclude` directives, which `go install pkg@version` refuses. So the module source is fetched with
# `go mod download` and built as the main module, as upstream's Makefile does. v5.5.1 is pinned: v5.7.0
# needs Go >= 1.26.10, and v5.6.0 requires a github.com/DefangLabs/secret-detector pseudo-version the
# module proxy does not serve. Override with COMPOSE_VERSION=vX.Y.Z.
set -euo pipefail

COMPOSE_VERSION="${COMPOSE_VERSION:-v5.5.1}"
COMPOSE_MODULE="github.com/docker/compose/${COMPOSE_VERSION%%.*}" # major version suffix: v5.5.1 -> /v5

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/backoffice"
plugin_dir="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
cached_binary="$cache_root/bin/docker-compose-$COMPOSE_VERSION"

find_go() {
    if command -v go > /dev/null 2>&1; then
        command -v go
    elif [ -x /usr/local/go/bin/go ]; then
        echo /usr/local/go/bin/go
    else
        echo "docker compose is missing and Go is not installed to build it; install Go or the Compose plugin" >&2
        return 1
    fi
}

build_compose() {
    local go src module_dir
    go="$(find_go)"
    src="$cache_root/compose-src/$COMPOSE_VERSION"
    echo "building Docker Compose $COMPOSE_VERSION into $cached_binary; this takes a minute or two once" >&2
    # Outside any module, so this doesn't touch the project; the module cache copy is read-only.
    module_dir="$(cd "$cache_root" && "$go" mod download -json "$COMPOSE_MODULE@$COMPOSE_VERSION" \
        | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    if [ -z "$module_dir" ] || [ ! -d "$module_dir" ]; then
        echo "could not download $COMPOSE_MODULE@$COMPOSE_VERSION from the Go module proxy" >&2
        return 1
    fi
    rm -rf "$src"
    mkdir -p "$(dirname "$src")" "$(dirname "$cached_binary")"
    cp -R "$module_dir" "$src"
    chmod -R u+w "$src"
    (
        cd "$src"
        GOFLAGS=-buildvcs=false GOTOOLCHAIN=local "$go" build -trimpath \
            -ldflags "-w -X $COMPOSE_MODULE/internal.Version=$COMPOSE_VERSION" \
            -o "$cached_binary.tmp" ./cmd
    )
    mv "$cached_binary.tmp" "$cached_binary"
}

if ! docker compose version > /dev/null 2>&1; then
    [ -x "$cached_binary" ] || build_compose
    mkdir -p "$plugin_dir"
    install -m 0755 "$cached_binary" "$plugin_dir/docker-compose"
    docker compose version >&2
fi

cd "$repo_root"
status=0
JWT_SECRET=x ACCOUNT_NUMBER_KEYS='["x"]' FILE_ENCRYPTION_KEYS='["x"]' LINKING_SECRET=x ODFI_API_KEY=x BUREAU_API_KEY=x IDENTITY_API_KEY=x FX_API_KEY=x \
    BANK_WEBHOOK_SECRET=x GATEWAY_SECRET_KEY=x METRICS_TOKEN=x GRAFANA_ADMIN_PASSWORD=x MINIO_ROOT_PASSWORD=x docker compose -f docker-compose.yml config -q || status=$?
exit "$status"
