# Shared by scripts/serve and scripts/test: find or install what the project needs.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=""
apt_install() {
  # Install Debian packages that are missing; a no-op when all are present.
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  [ "${#missing[@]}" = 0 ] && return 0
  say "installing ${missing[*]} with apt-get"
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

python_bin() {
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  apt_install python3 python3-venv python3-dev
  command -v python3
}

ensure_venv() {
  # ensure_venv EXTRA: a virtualenv with the project installed (EXTRA: "" or "dev"),
  # reinstalled only when pyproject.toml changes.
  local extra="$1" python stamp want
  python="$(python_bin)"
  if [ ! -x "$VENV/bin/python" ]; then
    "$python" -m venv "$VENV" 2>/dev/null || { apt_install python3-venv; rm -rf "$VENV"; "$python" -m venv "$VENV"; }
  fi
  stamp="$VENV/.installed-$extra"
  want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
  # The test install (dev) is a superset of the app's: serving after testing installs nothing.
  if [ -z "$extra" ] && [ -f "$VENV/.installed-dev" ] && [ "$(cat "$VENV/.installed-dev")" = "$want" ]; then
    stamp="$VENV/.installed-dev"
  fi
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    say "installing Python dependencies${extra:+ ($extra)}"
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
    "$VENV/bin/python" -m pip install -q -e "$ROOT${extra:+[$extra]}"
    echo "$want" > "$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
}

free_port() {
  "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# SO_REUSEADDR, as gunicorn binds: the connections of a server just stopped (TIME_WAIT) don't make a port taken.
port_is_free() {
  "$VENV/bin/python" -c 'import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}

# The port scripts/serve listens on: $PORT when it is set (or a clear message and failure when it is taken),
# else 8000, or the next free port up to 8099 when 8000 is taken (the usual default of many dev servers).
serve_port() {
  local port
  if [ -n "${PORT:-}" ]; then
    port_is_free "$PORT" || { echo "Port $PORT is taken. Stop what uses it, or choose another: PORT=8080 ./scripts/serve" >&2; return 1; }
    echo "$PORT"
    return
  fi
  port=8000
  while ! port_is_free "$port"; do
    port=$((port + 1))
    [ "$port" -le 8099 ] || { echo "Ports 8000-8099 are all taken: choose one with PORT=NNNN ./scripts/serve" >&2; return 1; }
  done
  [ "$port" = 8000 ] || echo "Port 8000 is taken; using $port instead (choose one with PORT=NNNN)." >&2
  echo "$port"
}
