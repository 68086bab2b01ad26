#!/usr/bin/env bash
# Start a real single-node OpenStack Swift ("Swift All In One") on 127.0.0.1, for tests.
#
#   eval "$(bash scripts/start-saio.sh DIR)"   # exports SWIFT_AUTH_URL, SWIFT_USER, SWIFT_KEY,
#   ...                                        # S3_ENDPOINT_URL, S3_ACCESS_KEY_ID,
#                                              # S3_SECRET_ACCESS_KEY, S3_REGION, SAIO_DIR
#   SAIO_WIPE=1 bash scripts/stop-saio.sh DIR
#
# What runs: memcached (Debian package, installed if missing) and Swift's proxy, account,
# container and object servers from PyPI's `swift` in a venv of its own, each one process
# (workers = 0), all bound to 127.0.0.1. Auth is tempauth: user test:tester, key testing.
# The proxy also speaks S3 (s3api, region us-east-1, SigV4, path-style addressing): the access
# key is the tempauth account:user (test:tester), the secret its key (testing).
# No systemd, no docker, nothing written to /etc. Progress goes to stderr; stdout carries
# only the `export` lines. Layout under DIR: etc/ (configs, rings), log/, run/ (pid files, and
# `listeners`: the servers' listening sockets, which stop-saio.sh waits for), cache/, data/
# (unless SAIO_DATA_DIR says otherwise), install.log (apt and pip output).
#
# Environment:
#   SAIO_VENV            venv holding swift   (default $HOME/.cache/ovirt-backup/saio-venv, reused)
#   SAIO_SWIFT_VERSION   PyPI swift version   (default 2.38.3)
#   SAIO_PYTHON          python that creates the venv (default python3)
#   SAIO_DATA_DIR        object data          (default DIR/data; /dev/shm/... is faster)
#   SAIO_KEEP_DATA=1     keep objects of an earlier start (default: wiped)
#   SAIO_PROXY_PORT 8080, SAIO_OBJECT_PORT 6200, SAIO_CONTAINER_PORT 6201,
#   SAIO_ACCOUNT_PORT 6202, SAIO_MEMCACHED_PORT 11311   (must be distinct and free)
#   SAIO_PORTS=auto      pick each of those five that is not set: a port free on 127.0.0.1 and
#                        below the kernel's ephemeral range, so that no outgoing connection
#                        can take it before the server binds it (scripts/dev uses this)
#   SAIO_READY_TIMEOUT   seconds to wait for a working Swift (default 60)
set -euo pipefail

say() { printf 'start-saio: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

[ $# -eq 1 ] && [ -n "$1" ] || die "usage: $0 DIR"
mkdir -p "$1"
DIR=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
T0=$(date +%s%3N)

VENV=${SAIO_VENV:-$HOME/.cache/ovirt-backup/saio-venv}
SWIFT_VERSION=${SAIO_SWIFT_VERSION:-2.38.3}
PY=${SAIO_PYTHON:-python3}
DATA=${SAIO_DATA_DIR:-$DIR/data}
case ${SAIO_PORTS:-} in   # dflt PORT: the default port, or none (SAIO_PORTS=auto picks it in step 1)
  auto) dflt() { :; };;
  '')   dflt() { echo "$1"; };;
  *)    die "SAIO_PORTS must be 'auto' or unset, not '$SAIO_PORTS'";;
esac
PROXY_PORT=${SAIO_PROXY_PORT:-$(dflt 8080)}
OBJECT_PORT=${SAIO_OBJECT_PORT:-$(dflt 6200)}
CONTAINER_PORT=${SAIO_CONTAINER_PORT:-$(dflt 6201)}
ACCOUNT_PORT=${SAIO_ACCOUNT_PORT:-$(dflt 6202)}
MEMCACHED_PORT=${SAIO_MEMCACHED_PORT:-$(dflt 11311)}
READY_TIMEOUT=${SAIO_READY_TIMEOUT:-60}
ETC=$DIR/etc LOG=$DIR/log RUN=$DIR/run CACHE=$DIR/cache

# --- 1. refuse early: a live instance in DIR, bad or busy ports; pick the unset ones --------
# shellcheck source=saio-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/saio-lib.sh"   # pidstart PID, alive PIDFILE, listening
mkdir -p "$RUN"
for f in "$RUN"/*.pid; do
  [ -e "$f" ] || continue
  alive "$f" && die "Swift already runs from $DIR ($(basename "$f" .pid)); stop it with: bash $HERE/stop-saio.sh $DIR"
done
rm -f "$RUN"/*.pid "$RUN/listeners"   # stale: none of them is alive

for p in "$PROXY_PORT" "$OBJECT_PORT" "$CONTAINER_PORT" "$ACCOUNT_PORT" "$MEMCACHED_PORT"; do
  case $p in *[!0-9]*) die "port '$p' is not a number";; esac
done
# eventlet binds with SO_REUSEPORT, so a second server on a busy port would bind silently:
# check each port here, with SO_REUSEADDR only (which still fails against any listener).
# An empty one (SAIO_PORTS=auto) is picked, free by the same test and below the kernel's
# ephemeral range (ip_local_port_range), where connect() never takes a port by itself.
PORTS=$("$PY" - "$PROXY_PORT" "$OBJECT_PORT" "$CONTAINER_PORT" "$ACCOUNT_PORT" "$MEMCACHED_PORT" <<'EOF'
import random, socket, sys

def free(port):  # the port (bound now, by us) if it is free, else None; plus why not
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        s.listen(1)
        return s.getsockname()[1], None
    except OSError as e:
        return None, e.strerror
    finally:
        s.close()

ports = [int(p) if p else None for p in sys.argv[1:]]
busy = []
for port in ports:
    if port is not None:
        ok, why = free(port)
        if ok is None:
            busy.append("%d (%s)" % (port, why))
if busy:
    print("start-saio: busy: " + ", ".join(busy), file=sys.stderr)
    sys.exit(1)
try:
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except (OSError, ValueError, IndexError):
    low = 0
candidates = list(range(10000, low)) if low > 11000 else []   # else: what bind(port 0) gives
random.shuffle(candidates)
for i in range(len(ports)):
    while ports[i] is None:
        port = free(candidates.pop() if candidates else 0)[0]
        if port not in ports:
            ports[i] = port
print(" ".join(map(str, ports)))
EOF
) || die "port(s) in use on 127.0.0.1 (set SAIO_*_PORT to free ones, or SAIO_PORTS=auto)"
read -r PROXY_PORT OBJECT_PORT CONTAINER_PORT ACCOUNT_PORT MEMCACHED_PORT <<<"$PORTS"
[ "$(printf '%s\n' $PORTS | sort -u | wc -l)" -eq 5 ] || die "ports must be distinct: $PORTS"

# --- 2. install what is missing: memcached (apt), swift (venv) ---------------------------
if ! command -v memcached >/dev/null 2>&1; then
  say "installing memcached (apt)"
  export DEBIAN_FRONTEND=noninteractive
  # No service may start from the package's postinst (there is no init system to stop it).
  added_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    added_policy=1
  fi
  apt_rc=0
  { apt-get -qq -o DPkg::Lock::Timeout=120 update &&
    apt-get -qq -y -o DPkg::Lock::Timeout=120 install --no-install-recommends memcached; } \
    </dev/null >>"$DIR/install.log" 2>&1 || apt_rc=$?
  [ -n "$added_policy" ] && rm -f /usr/sbin/policy-rc.d
  [ "$apt_rc" -eq 0 ] || { tail -n 20 "$DIR/install.log" >&2; die "apt-get install memcached failed"; }
fi
MEMCACHED=$(command -v memcached)

venv_ok() { [ "$(cat "$VENV/.saio-swift" 2>/dev/null)" = "$SWIFT_VERSION" ] && [ -x "$VENV/bin/swift-proxy-server" ]; }
if ! venv_ok; then
  mkdir -p "$(dirname "$VENV")"
  exec 9>"$VENV.lock"
  flock 9   # another start may be building the same venv
  if ! venv_ok; then
    say "installing swift==$SWIFT_VERSION into $VENV"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV" >>"$DIR/install.log" 2>&1 \
      || { tail -n 20 "$DIR/install.log" >&2; die "'$PY -m venv' failed (Debian: apt-get install python3-venv, or set SAIO_PYTHON)"; }
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "swift==$SWIFT_VERSION" </dev/null >>"$DIR/install.log" 2>&1 \
      || { tail -n 20 "$DIR/install.log" >&2; die "pip install swift==$SWIFT_VERSION failed"; }
    echo "$SWIFT_VERSION" >"$VENV/.saio-swift"
  fi
  exec 9>&-
fi

# --- 3. configs, rings, data ---------------------------------------------------------------
mkdir -p "$ETC" "$LOG" "$CACHE"
if [ "${SAIO_KEEP_DATA:-0}" != 1 ]; then
  rm -rf "$DATA/d1" "$CACHE"/*   # only what we own: DATA itself may be a shared dir
fi
mkdir -p "$DATA/d1"
DATA=$(cd "$DATA" && pwd)
USER_NAME=$(id -un)

cat >"$ETC/swift.conf" <<EOF
[swift-hash]
swift_hash_path_prefix = saio-prefix
swift_hash_path_suffix = saio-suffix

[storage-policy:0]
name = Policy-0
default = yes
EOF

common() {  # common NAME PORT
  cat <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $2
workers = 0
user = $USER_NAME
swift_dir = $ETC
devices = $DATA
mount_check = false
disable_fallocate = true
recon_cache_path = $CACHE
log_name = $1
log_level = INFO
EOF
}

for srv in account container object; do
  case $srv in
    account) port=$ACCOUNT_PORT;; container) port=$CONTAINER_PORT;; object) port=$OBJECT_PORT;;
  esac
  { common "$srv-server" "$port"
    cat <<EOF

[pipeline:main]
pipeline = healthcheck recon $srv-server

[app:$srv-server]
use = egg:swift#$srv

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:recon]
use = egg:swift#recon
EOF
  } >"$ETC/$srv-server.conf"
done

{ common proxy-server "$PROXY_PORT"
  cat <<EOF

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl s3api tempauth copy slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
allow_account_management = true
account_autocreate = true

# S3 API: must come before tempauth, which then checks the S3 signature (access key
# account:user, secret its key); SigV4 needs the region, hence location.
[filter:s3api]
use = egg:swift#s3api
location = us-east-1

[filter:tempauth]
use = egg:swift#tempauth
user_admin_admin = admin .admin .reseller_admin
user_test_tester = testing .admin
user_test2_tester2 = testing2 .admin
user_test_tester3 = testing3

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MEMCACHED_PORT

[filter:proxy-logging]
use = egg:swift#proxy_logging
# never write any part of an auth token to the log
reveal_sensitive_prefix = 0

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:bulk]
use = egg:swift#bulk

[filter:tempurl]
use = egg:swift#tempurl
allowed_digests = sha256 sha512

[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo

[filter:versioned_writes]
use = egg:swift#versioned_writes

[filter:symlink]
use = egg:swift#symlink
EOF
} >"$ETC/proxy-server.conf"

# One python process with swift's RingBuilder (9 swift-ring-builder calls take ~3 s).
"$VENV/bin/python" - "$ETC" "$ACCOUNT_PORT" "$CONTAINER_PORT" "$OBJECT_PORT" <<'EOF' >&2 || die "building rings failed"
import os, sys
from swift.common.ring import RingBuilder
etc = sys.argv[1]
for kind, port in zip(("account", "container", "object"), map(int, sys.argv[2:5])):
    rb = RingBuilder(8, 1, 1)   # part power 8, 1 replica, min_part_hours 1
    rb.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": port,
                "replication_ip": "127.0.0.1", "replication_port": port,
                "device": "d1", "weight": 1.0, "meta": ""})
    rb.rebalance()
    rb.save(os.path.join(etc, kind + ".builder"))
    rb.get_ring().save(os.path.join(etc, kind + ".ring.gz"))
EOF

# --- 4. start the processes ------------------------------------------------------------------
STARTED=
cleanup() {  # on any failure after this point: stop what we started, show the logs
  local rc=$?
  [ -n "$STARTED" ] || exit "$rc"
  say "start failed; stopping what was started. Last log lines:"
  for f in "$LOG"/*.log; do
    [ -s "$f" ] || continue
    printf -- '--- %s ---\n' "$f" >&2
    tail -n 20 "$f" >&2
  done
  bash "$HERE/stop-saio.sh" "$DIR" >&2 || true
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

launch() {  # launch NAME CMD...: detached, stdio on the log (a caller's $(...) must not wait)
  local name=$1
  shift
  setsid "$@" </dev/null >"$LOG/$name.log" 2>&1 &
  pidstart $! >"$RUN/$name.pid" || die "$name exited at once (see $LOG/$name.log)"
  STARTED=1
}

launch memcached "$MEMCACHED" -l 127.0.0.1 -p "$MEMCACHED_PORT" -U 0 -m 64 -u "$USER_NAME" -v
for srv in account container object proxy; do
  launch "$srv" "$VENV/bin/swift-$srv-server" "$ETC/$srv-server.conf" -v
done

# --- 5. readiness: /info, a tempauth login, a container + object round trip ----------------
say "waiting for Swift on 127.0.0.1:$PROXY_PORT (at most ${READY_TIMEOUT}s)"
"$VENV/bin/python" - "$PROXY_PORT" "$READY_TIMEOUT" "$RUN" <<'EOF' >&2 || exit 1
import glob, json, os, sys, time, urllib.error, urllib.request

port, timeout, run = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
base = "http://127.0.0.1:%d" % port
deadline = time.monotonic() + timeout

def dead():
    for f in glob.glob(os.path.join(run, "*.pid")):
        pid, start = open(f).read().split()
        try:
            rest = open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()
        except OSError:
            return os.path.basename(f)[:-4]
        if rest[0] == "Z" or rest[19] != start:
            return os.path.basename(f)[:-4]

def call(method, url, headers=None, data=None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status, r.headers, r.read()

def probe():
    status, _, body = call("GET", base + "/info")
    assert "swift" in json.loads(body)
    _, h, _ = call("GET", base + "/auth/v1.0",
                   {"X-Auth-User": "test:tester", "X-Auth-Key": "testing"})
    url, tok = h["X-Storage-Url"], {"X-Auth-Token": h["X-Auth-Token"]}
    c = url + "/saio-ready-%d" % os.getpid()
    call("PUT", c, tok)
    call("PUT", c + "/probe", tok, b"ready")
    _, _, got = call("GET", c + "/probe", tok)
    assert got == b"ready", got
    call("DELETE", c + "/probe", tok)
    call("DELETE", c, tok)

last = None
while True:
    try:
        probe()
        sys.exit(0)
    except Exception as e:  # not ready yet: keep the reason for the timeout message
        last = "%s: %s" % (type(e).__name__, e)
    gone = dead()
    if gone:
        print("start-saio: %s exited; last probe error: %s" % (gone, last), file=sys.stderr)
        sys.exit(1)
    if time.monotonic() > deadline:
        print("start-saio: not ready after %ss; last probe error: %s" % (timeout, last), file=sys.stderr)
        sys.exit(1)
    time.sleep(0.1)
EOF

# Record each server's listening sockets ("NAME PORT INODE"), for stop-saio.sh to wait until
# they are really closed (a socket outlives its process if anything else still holds it).
declare -A ours=()
for p in $PORTS; do ours[$p]=1; done
listeners=$(listening)
for f in "$RUN"/*.pid; do
  read -r pid _ <"$f"
  for fd in /proc/"$pid"/fd/*; do
    link=$(readlink "$fd" 2>/dev/null) || continue
    case $link in socket:\[*\]) ino=${link#socket:\[}; ino=${ino%]};; *) continue;; esac
    while read -r port lino; do
      if [ "$lino" = "$ino" ] && [ -n "${ours[$port]:-}" ]; then echo "$(basename "$f" .pid) $port $ino"; fi
    done <<<"$listeners"
  done
done >"$RUN/listeners"
[ "$(wc -l <"$RUN/listeners")" -ge 5 ] || die "expected 5 listeners, found: $(tr '\n' ' ' <"$RUN/listeners")"

trap - EXIT INT TERM
ms=$(( $(date +%s%3N) - T0 ))
say "Swift is ready on 127.0.0.1:$PROXY_PORT after $((ms / 1000)).$(printf '%03d' $((ms % 1000)))s (data: $DATA, logs: $LOG)"
printf 'export SWIFT_AUTH_URL=%q\n' "http://127.0.0.1:$PROXY_PORT/auth/v1.0"
printf 'export SWIFT_USER=%q\n' "test:tester"
printf 'export SWIFT_KEY=%q\n' "testing"
printf 'export S3_ENDPOINT_URL=%q\n' "http://127.0.0.1:$PROXY_PORT"
printf 'export S3_ACCESS_KEY_ID=%q\n' "test:tester"
printf 'export S3_SECRET_ACCESS_KEY=%q\n' "testing"
printf 'export S3_REGION=%q\n' "us-east-1"
printf 'export SAIO_DIR=%q\n' "$DIR"
