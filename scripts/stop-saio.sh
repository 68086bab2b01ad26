#!/usr/bin/env bash
# Stop the Swift that `scripts/start-saio.sh DIR` started: exactly the processes named by the
# pid files in DIR/run (a PID whose start time no longer matches is someone else's and is left
# alone). Returns only once they are gone and so are their listening sockets (DIR/run/listeners,
# matched by inode), so that the ports are free again. Safe to run twice, or on a DIR where
# nothing runs.
#
#   SAIO_WIPE=1       also remove the object data (SAIO_DATA_DIR or DIR/data) and DIR/cache
#   SAIO_STOP_TIMEOUT seconds to wait after SIGTERM before SIGKILL (default 10); the same
#                     again for the listening sockets to close
set -uo pipefail

say() { printf 'stop-saio: %s\n' "$*" >&2; }
[ $# -eq 1 ] && [ -n "$1" ] || { say "usage: $0 DIR"; exit 2; }
if [ ! -d "$1" ]; then say "nothing to stop: $1 does not exist"; exit 0; fi
DIR=$(cd "$1" && pwd)
RUN=$DIR/run
DATA=${SAIO_DATA_DIR:-$DIR/data}
TIMEOUT=${SAIO_STOP_TIMEOUT:-10}

# shellcheck source=saio-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/saio-lib.sh"   # alive PIDFILE, listening

pidfiles=()
for f in "$RUN"/*.pid; do
  [ -e "$f" ] && pidfiles+=("$f")
done

# memcached gets SIGKILL at once: it acts on SIGTERM only at its next once-a-second clock tick
# (up to 1 s), and a test cache holds nothing worth a clean exit.
signal() {  # signal SIG: send SIG to every live process we own; print how many
  local n=0 f sig
  for f in "${pidfiles[@]}"; do
    if alive "$f"; then
      sig=$1
      [ "${f##*/}" = memcached.pid ] && sig=KILL
      kill "-$sig" "$(cut -d' ' -f1 "$f")" 2>/dev/null && n=$((n + 1))
    fi
  done
  echo "$n"
}

if [ ${#pidfiles[@]} -gt 0 ]; then
  n=$(signal TERM)
  [ "$n" -gt 0 ] && say "stopping $n process(es) of $DIR"
  deadline=$(( $(date +%s) + TIMEOUT ))
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

# open_listeners: print "NAME PORT INODE" for each recorded listener that still listens.
open_listeners() {
  local now name port ino
  now=" $(listening | cut -d' ' -f2 | tr '\n' ' ') "
  while read -r name port ino; do
    case $now in *" $ino "*) echo "$name $port $ino";; esac
  done <"$RUN/listeners"
}

# A closed process normally takes its sockets along at once (a zombie holds none). One still
# listening is held by some other process (an inherited descriptor): wait, then kill it.
if [ -f "$RUN/listeners" ]; then
  deadline=$(( $(date +%s) + TIMEOUT ))
  while left=$(open_listeners) && [ -n "$left" ]; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      for ino in $(cut -d' ' -f3 <<<"$left"); do
        for fd in /proc/[0-9]*/fd/*; do
          [ "$(readlink "$fd" 2>/dev/null)" = "socket:[$ino]" ] || continue
          pid=${fd#/proc/}; pid=${pid%%/*}
          say "pid $pid still holds listener $(grep " $ino\$" <<<"$left" | cut -d' ' -f1,2); sending SIGKILL"
          kill -KILL "$pid" 2>/dev/null
        done
      done
      sleep 0.2
      left=$(open_listeners)
      [ -z "$left" ] || say "still listening: $(tr '\n' ' ' <<<"$left")"
      break
    fi
    sleep 0.05
  done
  rm -f "$RUN/listeners"
fi

if [ "${SAIO_WIPE:-0}" = 1 ]; then
  rm -rf "$DATA/d1" "$DIR/cache"
  rmdir "$DATA" 2>/dev/null || true
  say "wiped data in $DATA"
fi
exit 0
