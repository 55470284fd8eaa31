# Shared by infra/up and test/run: find or install what the platform needs on a Debian/Ubuntu machine.
# Source it from the repository root.

# The pnpm pinned in package.json. Installed with npm because corepack's bundled signing keys lag behind
# pnpm's releases and refuse to verify newer versions.
ensure_pnpm() {
  local wanted
  wanted=$(node -p 'require("./package.json").packageManager.split("@")[1]')
  if [[ "$(pnpm --version 2>/dev/null || true)" != "$wanted" ]]; then
    echo "installing pnpm ${wanted}" >&2
    npm install --global --silent "pnpm@${wanted}" >&2
  fi
}

port_open() { # host port
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

wait_for_port() { # host port seconds what
  local deadline=$((SECONDS + $3))
  until port_open "$1" "$2"; do
    if ((SECONDS > deadline)); then
      echo "$4 did not start listening on $1:$2 within $3 s" >&2
      return 1
    fi
    sleep 0.2
  done
}

# apt-get as root, or a clear message telling a non-root user what to install.
apt_install() { # debian-package what-for
  if [[ $(id -u) -ne 0 ]]; then
    echo "$2 needs the Debian package '$1': run 'sudo apt-get install -y $1' and try again." >&2
    return 1
  fi
  echo "installing $1 (for $2)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >&2
}

# The audio worker decodes uploads with ffmpeg over pipes (docs/audio-decoding.md); the tests make their audio
# fixtures with it too.
ensure_ffmpeg() {
  command -v ffmpeg >/dev/null 2>&1 && return 0
  apt_install ffmpeg "audio transcription (decoding uploads)"
}

# The tests watch ffmpeg's system calls with strace to prove a decode opens no file (services/audio-worker/test).
ensure_strace() {
  command -v strace >/dev/null 2>&1 && return 0
  apt_install strace "the audio decoder's no-disk test"
}

nats_server_bin() {
  command -v nats-server 2>/dev/null || { [[ -x /usr/sbin/nats-server ]] && echo /usr/sbin/nats-server; }
}

# Starts nats-server with JetStream on 127.0.0.1:PORT, storing in DIR; sets NATS_PID.
start_nats() { # port dir
  local bin
  bin=$(nats_server_bin) || true
  if [[ -z "$bin" ]]; then
    apt_install nats-server "NATS with JetStream"
    bin=$(nats_server_bin)
  fi
  "$bin" -a 127.0.0.1 -p "$1" -js -sd "$2" >"$2/nats-server.log" 2>&1 &
  NATS_PID=$!
  wait_for_port 127.0.0.1 "$1" 20 nats-server
}

postgres_bin_dir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [[ -n "$dir" && -x "$dir/initdb" ]] && echo "$dir"
}

# A throwaway cluster with trust auth on 127.0.0.1:PORT, data in DIR; sets POSTGRES_PID. The tests create and
# drop databases of their own in it. Postgres refuses to run as root, so the cluster belongs to 'postgres'.
start_throwaway_postgres() { # port dir
  local bin
  bin=$(postgres_bin_dir) || true
  if [[ -z "$bin" ]]; then
    apt_install postgresql "the tests' database"
    bin=$(postgres_bin_dir)
  fi
  local run=()
  if [[ $(id -u) -eq 0 ]]; then
    chown postgres "$2"
    run=(runuser -u postgres --)
  fi
  "${run[@]}" "$bin/initdb" -D "$2/data" -A trust -U postgres >/dev/null
  "${run[@]}" "$bin/postgres" -D "$2/data" -h 127.0.0.1 -p "$1" -k "$2" >"$2/postgres.log" 2>&1 &
  POSTGRES_PID=$!
  wait_for_port 127.0.0.1 "$1" 30 postgres
}
