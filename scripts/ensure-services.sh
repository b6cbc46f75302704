#!/usr/bin/env bash
# Makes sure PostgreSQL (127.0.0.1:5432, user postgres) and Redis (127.0.0.1:6379) answer.
# Order of attempts: already running; the local server binaries (Debian's pg_ctlcluster,
# redis-server); docker compose where a container engine runs. Otherwise it says what is missing.
# With --install (CI), missing Debian packages are installed first.
set -euo pipefail
cd "$(dirname "$0")/.."

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
redis_up() { [ "$( (exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && timeout 2 head -c 5 <&3) 2>/dev/null)" = "+PONG" ]; }
wait_for() { for _ in $(seq 1 60); do "$1" && return 0; sleep 0.5; done; return 1; }
have_engine() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }

if [ "${1:-}" = "--install" ]; then
  missing=()
  command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
  if ! pg_up && ! command -v pg_ctlcluster >/dev/null 2>&1; then missing+=(postgresql); fi
  if ! redis_up && ! command -v redis-server >/dev/null 2>&1; then missing+=(redis-server); fi
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    version=$(ls /etc/postgresql | sort -V | tail -1)
    echo "starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    # Local clusters from Debian use peer auth on the socket; the suite connects over TCP as postgres.
  elif have_engine; then
    echo "starting PostgreSQL with docker compose"
    docker compose up -d postgres
  else
    echo "PostgreSQL is not reachable on 127.0.0.1:5432 and cannot be started here." >&2
    echo "Install it (Debian: apt-get install postgresql) or a container engine (then: docker compose up -d postgres redis)," >&2
    echo "or point W4L_DATABASE_URL and W4L_TEST_DATABASE_URL at a server you have." >&2
    exit 1
  fi
  wait_for pg_up || { echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2; exit 1; }
fi

# A freshly installed Debian cluster asks for a password over TCP; the suite connects as postgres
# without one. On a machine this script set up (--install), trust loopback like the project's
# machines do.
if [ "${1:-}" = "--install" ] && command -v psql >/dev/null 2>&1 \
  && ! psql -q -h 127.0.0.1 -U postgres -d postgres -c 'SELECT 1' >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  version=$(ls /etc/postgresql | sort -V | tail -1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  echo "allowing passwordless loopback connections in $hba"
  { printf 'host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n'; cat "$hba"; } > "$hba.new" && mv "$hba.new" "$hba"
  pg_ctlcluster --skip-systemctl-redirect "$version" main reload || true
fi

if ! redis_up; then
  if command -v redis-server >/dev/null 2>&1; then
    echo "starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  elif have_engine; then
    echo "starting Redis with docker compose"
    docker compose up -d redis
  else
    echo "Redis is not reachable on 127.0.0.1:6379 and cannot be started here." >&2
    echo "Install it (Debian: apt-get install redis-server) or a container engine (then: docker compose up -d redis)," >&2
    echo "or point W4L_REDIS_URL and W4L_TEST_REDIS_URL at a server you have." >&2
    exit 1
  fi
  wait_for redis_up || { echo "Redis did not come up on 127.0.0.1:6379" >&2; exit 1; }
fi
echo "PostgreSQL and Redis are up"
