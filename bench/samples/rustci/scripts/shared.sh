# shellcheck shell=bash
# Helpers shared by the build scripts (as rust-lang/rust's src/ci/docker/scripts/shared.sh).
hide_output() {
  set +x
  on_err="
echo ERROR: An error was encountered with the build.
cat /tmp/build.log
exit 1
"
  # shellcheck disable=SC2064  # on_err is a fixed text set just above: expanding it now is the intent
  trap "$on_err" ERR
  bash -c "while true; do sleep 30; echo \$(date) - building ...; done" &
  PING_LOOP_PID=$!
  "$@" &> /tmp/build.log
  trap - ERR
  kill $PING_LOOP_PID
  set -x
}
