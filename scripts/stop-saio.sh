#!/usr/bin/env bash
# Stop the Swift that `scripts/start-saio.sh DIR` started: exactly the processes named by the
# pid files in DIR/run (a PID whose start time no longer matches is someone else's and is left
# alone). Safe to run twice, or on a DIR where nothing runs.
#
#   SAIO_WIPE=1       also remove the object data (SAIO_DATA_DIR or DIR/data) and DIR/cache
#   SAIO_STOP_TIMEOUT seconds to wait after SIGTERM before SIGKILL (default 10)
set -uo pipefail

say() { printf 'stop-saio: %s\n' "$*" >&2; }
[ $# -eq 1 ] && [ -n "$1" ] || { say "usage: $0 DIR"; exit 2; }
if [ ! -d "$1" ]; then say "nothing to stop: $1 does not exist"; exit 0; fi
DIR=$(cd "$1" && pwd)
RUN=$DIR/run
DATA=${SAIO_DATA_DIR:-$DIR/data}

# shellcheck source=saio-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/saio-lib.sh"   # alive PIDFILE

pidfiles=()
for f in "$RUN"/*.pid; do
  [ -e "$f" ] && pidfiles+=("$f")
done

signal() {  # signal SIG: send SIG to every live process we own; print how many
  local n=0 f
  for f in "${pidfiles[@]}"; do
    if alive "$f"; then
      kill "-$1" "$(cut -d' ' -f1 "$f")" 2>/dev/null && n=$((n + 1))
    fi
  done
  echo "$n"
}

if [ ${#pidfiles[@]} -gt 0 ]; then
  n=$(signal TERM)
  [ "$n" -gt 0 ] && say "stopping $n process(es) of $DIR"
  deadline=$(( $(date +%s) + ${SAIO_STOP_TIMEOUT:-10} ))
  while [ "$n" -gt 0 ]; do
    n=0
    for f in "${pidfiles[@]}"; do alive "$f" && n=$((n + 1)); done
    [ "$n" -eq 0 ] && break
    if [ "$(date +%s)" -ge "$deadline" ]; then
      say "$n process(es) ignored SIGTERM; sending SIGKILL"
      signal KILL >/dev/null
      sleep 0.2
      break
    fi
    sleep 0.05
  done
  rm -f "${pidfiles[@]}"
fi

if [ "${SAIO_WIPE:-0}" = 1 ]; then
  rm -rf "$DATA/d1" "$DIR/cache"
  rmdir "$DATA" 2>/dev/null || true
  say "wiped data in $DATA"
fi
exit 0
