# Shared by scripts/test, scripts/demo and scripts/bench: packages, build, throwaway PostgreSQL.
# Source it; it defines functions and sets nothing else.

QUEUER_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QUEUER_PACKAGES=(cmake ninja-build g++ pkg-config libpq-dev libuv1-dev libyaml-cpp-dev rapidjson-dev
  libsodium-dev libfmt-dev libgtest-dev libgmock-dev libcli11-dev libspdlog-dev
  libhowardhinnant-date-dev libmicrohttpd-dev postgresql-15 postgresql-client-15 postgresql-contrib)
# Only for scripts/test: the web console's browser test (tests/web/browser_test.py) drives
# Debian's headless Chromium through chromedriver (about 90 MB to download, 300 MB installed).
QUEUER_BROWSER_PACKAGES=(chromium chromium-driver python3-selenium)
# Only for scripts/package: dpkg-shlibdeps (dpkg-dev, file) for the Depends, pandoc for the man
# pages, man-db to check them.
QUEUER_PACKAGING_TOOLS=(dpkg-dev file pandoc man-db)

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Installs whatever Debian package is missing; a no-op (one dpkg-query) when all are present.
ensure_packages() {
  local missing=()
  for p in "${QUEUER_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing missing packages: ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "missing packages (${missing[*]}) and no sudo; install them as root"
    sudo="sudo"
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# build DIR [cmake args...]
build() {
  local dir=$1; shift
  cmake -S "$QUEUER_ROOT" -B "$dir" -G Ninja "$@" >/dev/null
  cmake --build "$dir" -j"$(nproc)"
}

PG_BIN=/usr/lib/postgresql/15/bin
PG_STARTED_DIR=""

# Starts a throwaway cluster unless QUEUER_DB_HOST is set; exports QUEUER_DB_* for it.
pg_start() {
  if [ -n "${QUEUER_DB_HOST:-}" ]; then
    log "using the PostgreSQL named by QUEUER_DB_HOST=$QUEUER_DB_HOST"
    return 0
  fi
  [ -x "$PG_BIN/initdb" ] || die "PostgreSQL 15 binaries not found in $PG_BIN"
  PG_STARTED_DIR=$(mktemp -d /tmp/queuer-pg.XXXXXX)
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 55432)
  local run=()
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$PG_STARTED_DIR"
    run=(runuser -u postgres --)
  fi
  log "starting a throwaway PostgreSQL on 127.0.0.1:$port (data in $PG_STARTED_DIR)"
  "${run[@]}" "$PG_BIN/initdb" -D "$PG_STARTED_DIR/data" -U postgres -A trust --no-sync -E UTF8 >"$PG_STARTED_DIR/initdb.log" 2>&1 \
    || { cat "$PG_STARTED_DIR/initdb.log" >&2; die "initdb failed"; }
  cat >>"$PG_STARTED_DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$PG_STARTED_DIR'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 256MB
log_min_messages = warning
CONF
  "${run[@]}" "$PG_BIN/pg_ctl" -D "$PG_STARTED_DIR/data" -l "$PG_STARTED_DIR/server.log" -w -t 60 start >/dev/null \
    || { cat "$PG_STARTED_DIR/server.log" >&2; die "PostgreSQL did not start"; }
  export QUEUER_DB_HOST=127.0.0.1 QUEUER_DB_PORT=$port QUEUER_DB_DATABASE=postgres \
    QUEUER_DB_USERNAME=postgres QUEUER_DB_PASSWORD="" QUEUER_DB_SCHEMA=public QUEUER_DB_SSLMODE=disable
  # Tests that restart the server need to know how.
  export QUEUER_TEST_PGDATA="$PG_STARTED_DIR/data"
  export QUEUER_TEST_PGCTL="${run[*]} $PG_BIN/pg_ctl"
}

pg_stop() {
  [ -n "$PG_STARTED_DIR" ] || return 0
  local run=()
  [ "$(id -u)" -eq 0 ] && run=(runuser -u postgres --)
  "${run[@]}" "$PG_BIN/pg_ctl" -D "$PG_STARTED_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$PG_STARTED_DIR"
  PG_STARTED_DIR=""
}
