#!/bin/sh
# devpod-backup-guard: the sidecar Dokploy's volume backup stops (turnOff) to back a
# machine's home up. Its stop is the signal that a backup starts: on SIGTERM it copies
# the home into the snapshot volume — with the machine's writers frozen when the machine
# runs, as it is when the machine is stopped — and exits. Dokploy then tars the snapshot
# volume, which nothing writes while this container is stopped, so the tar never sees a
# file change, and starts this container again, which frees the snapshot's space.
# POSIX sh (bash, dash, busybox ash); runs without network and without privileges.
set -u
SNAP=${DEVPOD_SNAPSHOT_DIR:-/snapshot}
SRC=${DEVPOD_HOME_DIR:-/home/devpod}
CTL=${DEVPOD_BACKUP_CTL:-/ctl}
MANIFEST=.devpod-backup.json

log() { printf '[devpod-backup-guard] %s\n' "$*"; }
nap() { sleep "$1" 2>/dev/null || sleep 1; }

# The snapshot was uploaded (or never made): its space goes back to the server.
wipe() { find "$SNAP" -mindepth 1 -maxdepth 1 -exec rm -rf {} + 2>/dev/null; }

# The machine's responder rewrites $CTL/alive every second while it runs: fresh (at most
# 3 s old by the shared kernel clock) means running; without stat (or before the first
# count), watch it change.
machine_alive() {
  if written=$(stat -c %Y "$CTL/alive" 2>/dev/null); then
    [ $(($(date +%s) - written)) -le 3 ]
    return
  fi
  a=$(cat "$CTL/alive" 2>/dev/null)
  nap 2.5
  b=$(cat "$CTL/alive" 2>/dev/null)
  [ -n "$b" ] && [ "$a" != "$b" ]
}

snapshot() {
  taken=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  consistency=stopped
  wipe # before any freeze: the machine waits only for the copy
  if machine_alive; then
    : >"$CTL/freeze"
    i=0
    while [ ! -e "$CTL/frozen" ] && [ "$i" -lt 50 ]; do
      i=$((i + 1))
      nap 0.2
    done
    if [ -e "$CTL/frozen" ]; then consistency=frozen; else
      consistency=live
      log "the machine did not freeze its writers within 10 s; copying its home live"
    fi
  fi
  started=$(date +%s)
  # tar, not cp: keeps hard links, owners and modes the same way everywhere, skips sockets.
  (cd "$SRC" && tar cf - . 2>"$CTL/copy.err"; echo $? >"$CTL/copy.rc") |
    (cd "$SNAP" && tar xpf -)
  rm -f "$CTL/freeze"
  [ ! -e "$CTL/thawed-early" ] || consistency=live
  rc=$(cat "$CTL/copy.rc" 2>/dev/null || echo 1)
  [ "$rc" = 0 ] || log "copying the home ended with status $rc: $(head -c 300 "$CTL/copy.err")"
  files=$(find "$SNAP" | wc -l | tr -d ' ')
  printf '{"machineId":"%s","takenAt":"%s","consistency":"%s","files":%s,"copyStatus":%s}\n' \
    "${DEVPOD_MACHINE_ID:-}" "$taken" "$consistency" "$files" "$rc" >"$SNAP/$MANIFEST"
  log "snapshot of $files entries ($consistency) in $(($(date +%s) - started)) s"
}

# A guard that died mid-backup may have left a request behind: the machine must not freeze.
rm -f "$CTL/freeze" "$CTL/copy.rc" "$CTL/copy.err"
wipe
# $! (not a variable set after the fork): a TERM right after `sleep &` still ends it.
# (${!:-}: under set -u, $! is unset until the first `sleep &`.)
trap '[ -z "${!:-}" ] || kill "$!" 2>/dev/null; snapshot; exit 0' TERM INT
log "ready: a stop of this container snapshots $SRC for Dokploy's backup"
# The sleeper holds none of our output open, whatever happens to it.
while :; do
  sleep 3600 >/dev/null 2>&1 &
  wait "$!"
done
