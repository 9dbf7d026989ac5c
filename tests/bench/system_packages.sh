#!/usr/bin/env bash
# Debian packages the benchmarks read: the PostgreSQL 15 HTML manual (the embedding and search
# corpora). Installed only when missing; on a machine without apt-get it says what to install.
set -euo pipefail
PG_DOCS=/usr/share/doc/postgresql-doc-15/html
if [ -d "$PG_DOCS" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "bench: $PG_DOCS is missing and there is no apt-get; install the PostgreSQL 15 HTML docs (Debian: postgresql-doc-15)" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-doc-15
