# Shared by start-saio.sh and stop-saio.sh (sourced, not run).

# alive PIDFILE: the recorded PID ("PID STARTTIME") still runs the process we started and
# is not a zombie (servers stay <defunct> until PID 1 reaps them, ~2 s; they count as
# stopped).
alive() {
  local pid start stat rest
  read -r pid start <"$1" 2>/dev/null || return 1
  { stat=$(< "/proc/$pid/stat"); } 2>/dev/null || return 1
  rest=${stat##*) }
  set -- $rest
  [ "$1" != Z ] && [ "${20}" = "$start" ]
}
