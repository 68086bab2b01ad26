# Shared by start-saio.sh, stop-saio.sh and scripts/dev (sourced, not run). Safe under
# `set -e`: /proc is read with `read <FILE`, not `$(< FILE)`, whose failure on a gone PID
# exits a `set -e` shell even where the failure is tested (`|| return 1`).

# pidstart PID: print "PID STARTTIME" (the start time, field 22 of /proc/PID/stat, tells the
# process apart from a later one that reuses its PID); this is the format of the pid files.
pidstart() {
  local stat rest
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  rest=${stat##*) }
  set -- "$1" $rest
  echo "$1 ${21}"
}

# alive PIDFILE: the recorded PID ("PID STARTTIME") still runs the process we started and
# is not a zombie (servers stay <defunct> until PID 1 reaps them, ~2 s; they count as
# stopped).
alive() {
  local pid start stat rest
  read -r pid start <"$1" 2>/dev/null || return 1
  { read -r stat <"/proc/$pid/stat"; } 2>/dev/null || return 1
  rest=${stat##*) }
  set -- $rest
  [ "$1" != Z ] && [ "${20}" = "$start" ]
}

# listening: print "PORT INODE" for every TCP socket in LISTEN state (IPv4 and IPv6). The
# inode names the socket itself, so it tells our listener apart from a later one on the port.
listening() {
  local sl local_addr rem st rest
  cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | while read -r sl local_addr rem st rest; do
    [ "$st" = 0A ] || continue
    set -- $rest   # tx:rx tr:when retrnsmt uid timeout inode ...
    echo "$((16#${local_addr##*:})) $6"
  done
}
