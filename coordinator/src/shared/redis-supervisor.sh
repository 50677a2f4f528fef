# The embedded redis-server's parent: `/bin/sh redis-supervisor.sh <redis-server arguments…>`.
#
# Node cannot ask the kernel to signal a child when its parent dies (no prctl(PR_SET_PDEATHSIG)),
# so a Flotilla process that crashes or is SIGKILLed would leave its private redis-server
# running. This process sits between them instead: Flotilla holds the write end of its stdin
# pipe and never writes to it. When Flotilla exits in any way, including SIGKILL, the kernel
# closes that pipe, stdin reaches end-of-file here, and redis-server is stopped by its pid
# (SIGTERM, so the AOF is flushed; SIGKILL after a grace period).
#
# POSIX sh rather than a node script: it waits all its life, and a node process that only waits
# still holds about 43 MB resident (the node binary's pages and V8's start-up heap; no V8 flag
# makes it smaller), where the shell holds one or two.
#
# Protocol: one JSON line `{"pid":<redis-server pid>}` on stdout once redis-server is spawned;
# redis-server's stderr passes through; the exit code is redis-server's (1 if it was signalled,
# 127 if it could not be started). SIGTERM, SIGINT or SIGHUP here also stop redis-server.

# How long redis-server gets to shut down after SIGTERM before SIGKILL, in seconds.
STOP_GRACE_S=10

if ! command -v redis-server >/dev/null 2>&1; then
  echo 'redis-supervisor: cannot start redis-server: not found on PATH' >&2
  exit 127
fi

redis-server "$@" </dev/null >/dev/null &
redis=$!

# A parent that is already gone makes the writes below fail (EPIPE): that must not end this
# process before redis-server is stopped.
trap '' PIPE
echo "{\"pid\":$redis}"

killer=
stop_redis() {
  [ -n "$killer" ] && return
  kill -TERM "$redis" 2>/dev/null
  # The grace period's end, in the background; stopped below once redis-server is gone, so it
  # never signals a pid that was reused.
  (
    trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
    sleep "$STOP_GRACE_S" &
    sleeper=$!
    wait "$sleeper" && kill -KILL "$redis" 2>/dev/null
  ) &
  killer=$!
}
trap stop_redis TERM INT HUP

# The stdin watcher: reads (and drops) until end-of-file, then signals this shell. A background
# list reads /dev/null unless told otherwise, hence stdin through descriptor 3.
exec 3<&0
(
  while read -r _ignored; do :; done
  kill -TERM $$ 2>/dev/null
) <&3 &
watcher=$!
exec 3<&-

# `wait` returns early when a trapped signal arrives; redis-server is waited for until it is gone.
while :; do
  wait "$redis"
  status=$?
  kill -0 "$redis" 2>/dev/null || break
done
kill "$watcher" 2>/dev/null
[ -n "$killer" ] && kill "$killer" 2>/dev/null
# A status above 128 is the shell's report of a signal.
[ "$status" -gt 128 ] && status=1
exit "$status"
