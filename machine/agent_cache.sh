# devpod-agents: the server's DevPod agent cache (issue 24), a service of the image
# cache's compose (lib/agent/spec.ts). nginx serves the agents stored in the volume; a
# request for one it lacks is answered 503 ("being fetched") and logged, and the loop
# below fetches that release binary once from the upstream (GitHub), verifies it and
# stores it. A fetch that fails is answered 502 for FAILED_SECONDS, then tried again.
#
# Only the release's own bytes are served: a binary is stored only when its sha256
# equals the one the release publishes (checksums.txt, or <file>.sha256) and, whether or
# not it publishes one, the size and sha256 of the first fetch recorded in the volume
# (records/). An admin can seed a release for an air-gapped server: a file at
# seed/<same path> is taken instead of the upstream, under the same checks.
#
# POSIX sh with curl, sha256sum, mkfifo and nginx (nginx:alpine has them all).
set -u
UPSTREAM=${DEVPOD_AGENT_UPSTREAM:-https://github.com}
UPSTREAM=${UPSTREAM%/}
STORE=${DEVPOD_AGENT_STORE:-/var/lib/devpod-agents}
PORT=${DEVPOD_AGENT_PORT:-8080}
RUN=${DEVPOD_AGENT_RUN:-/tmp/devpod-agents}
FAILED_SECONDS=${DEVPOD_AGENT_FAILED_SECONDS:-30}
# The paths served, as an extended regular expression (lib/agent/line.ts renders it).
PATHS=${DEVPOD_AGENT_PATHS:-}

log() { echo "devpod-agents $*"; }
[ -n "$PATHS" ] || {
  log "error: DEVPOD_AGENT_PATHS is empty" >&2
  exit 1
}
for tool in nginx sha256sum mkfifo; do
  command -v "$tool" >/dev/null 2>&1 || {
    log "error: no $tool in this image (PREBUILD_PROXY_IMAGE): machines download DevPod's agent themselves" >&2
    exit 1
  }
done
# Without curl only seeded agents can be had: said once here, and in each failure.
command -v curl >/dev/null 2>&1 ||
  log "warning: no curl in this image (PREBUILD_PROXY_IMAGE): only seeded agents are served"

# The sha256 the release publishes for $2 in release directory $1: printed, or nothing
# when it publishes none (404). Fails when the upstream cannot say (no route, 5xx). With
# $3 = seed, only the lists seeded beside it count: a seeded server may have no route.
published_sum() {
  for list in "$1/checksums.txt" "$1/$2.sha256"; do
    if [ -f "$STORE/seed$list" ]; then
      body=$(cat "$STORE/seed$list")
    elif [ "${3:-}" = seed ]; then
      continue
    else
      tmp=$STORE/part$1/.$2.${list##*/}
      code=$(curl -sSL --connect-timeout 10 --max-time 60 -o "$tmp" \
        -w '%{http_code}' "$UPSTREAM$list" 2>/dev/null) || code=000
      body=$(cat "$tmp" 2>/dev/null)
      rm -f "$tmp"
      case $code in
        200) ;;
        404) continue ;;
        *)
          echo "cannot read $UPSTREAM$list (HTTP $code)"
          return 1
          ;;
      esac
    fi
    # checksums.txt: "<hex>  <name>" lines (goreleaser); <file>.sha256: "<hex> [name]".
    sum=$(printf '%s\n' "$body" | while read -r hex name; do
      case $name in "$2" | "*$2" | "") echo "$hex" && break ;; esac
    done)
    case $sum in
      *[!0-9a-f]* | '') [ "$list" != "$1/checksums.txt" ] || continue ;;
      *) [ ${#sum} -eq 64 ] && echo "$sum" && return 0 ;;
    esac
  done
  return 0
}

# Downloads (or takes the seed of) release path $1 into the part file, verifies it and
# stores it; prints why not and fails otherwise.
obtain() {
  path=$1
  part=$STORE/part$path
  rm -f "$part"
  # What the release publishes is asked beside the download, not after it.
  from=upstream
  [ ! -f "$STORE/seed$path" ] || from=seed
  (
    published_sum "${path%/*}" "${path##*/}" "$from" >"$part.sum"
    echo $? >"$part.sumrc"
  ) &
  sums=$!
  if [ "$from" = seed ]; then
    cp "$STORE/seed$path" "$part" || {
      echo "cannot copy the seed $STORE/seed$path"
      return 1
    }
    sum=$(sha256sum "$part" | cut -d' ' -f1)
  elif ! command -v curl >/dev/null 2>&1; then
    echo "no curl in this image to fetch $UPSTREAM$path with (seed it, or use an image with curl)"
    return 1
  else
    from=$UPSTREAM$path
    # Hashed as it arrives: no second pass over ~100 MB before the machine gets it.
    sum=$({
      curl -fsSL --connect-timeout 10 --speed-limit 1024 --speed-time 60 "$from"
      echo $? >"$part.rc"
    } | tee "$part" | sha256sum | cut -d' ' -f1)
    rc=$(cat "$part.rc" 2>/dev/null || echo 1)
    rm -f "$part.rc"
  fi
  wait "$sums"
  published=$(cat "$part.sum" 2>/dev/null)
  sums_rc=$(cat "$part.sumrc" 2>/dev/null || echo 1)
  rm -f "$part.sum" "$part.sumrc"
  [ "${rc:-0}" = 0 ] || {
    echo "download of $from failed (curl exit $rc)"
    return 1
  }
  [ "$sums_rc" = 0 ] || {
    echo "$published"
    return 1
  }
  size=$(wc -c <"$part" | tr -d ' ')
  if [ -n "$published" ] && [ "$published" != "$sum" ]; then
    echo "refused: sha256 $sum of $from is not the $published the release publishes"
    return 1
  fi
  record=$STORE/records$path
  if [ -f "$record" ]; then
    read -r first_sum first_size _ <"$record"
    if [ "$first_sum" != "$sum" ] || [ "$first_size" != "$size" ]; then
      echo "refused: $from ($size bytes, sha256 $sum) differs from the first fetch recorded ($first_size bytes, sha256 $first_sum)"
      return 1
    fi
    how="same as the first fetch recorded"
  else
    how="first fetch recorded: the release publishes no checksum"
    [ "$from" != seed ] || how="seeded: recorded as the first copy"
    mkdir -p "${record%/*}" &&
      printf '%s %s %s\n' "$sum" "$size" "${published:+published}${published:-first-fetch}" >"$record"
  fi
  [ -z "$published" ] || how="matches the release's published sha256"
  mkdir -p "$STORE/files${path%/*}" && chmod 0644 "$part" && mv -f "$part" "$STORE/files$path" || {
    echo "cannot store $path"
    return 1
  }
  log "stored $path from $from sha256=$sum size=$size ($how)"
}

# One fetch per path at a time (a lock directory); requests meanwhile get 503.
fetch() {
  path=$1
  printf '%s\n' "$path" | grep -Eq "$PATHS" || return 0
  [ ! -f "$STORE/files$path" ] && [ ! -f "$STORE/failed$path" ] || return 0
  mkdir -p "$STORE/part${path%/*}" "$STORE/failed${path%/*}" || return 0
  mkdir "$STORE/part$path.lock" 2>/dev/null || return 0
  # Stored (or failed) meanwhile by the fetch whose lock this one just took over.
  if [ -f "$STORE/files$path" ] || [ -f "$STORE/failed$path" ]; then
    rmdir "$STORE/part$path.lock"
    return 0
  fi
  if why=$(obtain "$path"); then
    [ -z "$why" ] || echo "$why"
  else
    rm -f "$STORE/part$path"
    printf '%s\n' "$why" >"$STORE/failed$path"
    log "failed $path: $why; machines download it themselves; tried again in ${FAILED_SECONDS}s"
    (
      sleep "$FAILED_SECONDS"
      rm -f "$STORE/failed$path"
    ) &
  fi
  rmdir "$STORE/part$path.lock"
}

mkdir -p "$STORE/files" "$STORE/records" "$STORE/seed" "$STORE/part" "$STORE/failed" "$RUN" || exit 1
# What a stopped fetch left: parts, locks and failures are of the previous run.
rm -rf "$STORE/part" "$STORE/failed" && mkdir -p "$STORE/part" "$STORE/failed"
# nginx logs each miss into this pipe, the loop reads it at once. Held open read-write
# here, so nginx's writes never block or fail while the loop starts or restarts.
rm -f "$RUN/misses" && mkfifo "$RUN/misses" || exit 1
exec 3<>"$RUN/misses"

user=
if [ "$(id -u)" = 0 ]; then # the workers read only; the fetch loop writes
  group=nobody
  grep -q '^nogroup:' /etc/group 2>/dev/null && group=nogroup
  user="user nobody $group;"
fi
cat >"$RUN/nginx.conf" <<EOF
daemon off;
$user
worker_processes 1;
pid $RUN/nginx.pid;
error_log stderr warn;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path $RUN/body;
  proxy_temp_path $RUN/proxy;
  fastcgi_temp_path $RUN/fastcgi;
  uwsgi_temp_path $RUN/uwsgi;
  scgi_temp_path $RUN/scgi;
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  log_not_found off;
  log_format devpod_miss '\$uri';
  server {
    listen $PORT;
    location ~ "$PATHS" {
      limit_except GET { deny all; }
      root $STORE/files;
      try_files \$uri @miss;
    }
    location @miss {
      if (-f $STORE/failed\$uri) { return 502; }
      access_log $RUN/misses devpod_miss;
      add_header Retry-After 1 always;
      return 503;
    }
    # How far a fetch got (HEAD: Content-Length), so machines wait only while it moves.
    location ^~ /_part/ {
      limit_except GET { deny all; }
      alias $STORE/part/;
    }
    location / { return 404; }
  }
}
EOF

nginx -e stderr -c "$RUN/nginx.conf" &
nginx_pid=$!
# Were the loop to end, nginx would soon block writing misses nobody reads: it goes too,
# and the container restarts.
{
  while IFS= read -r path <&3; do
    fetch "$path" &
  done
  log "error: the fetch loop ended"
  kill "$nginx_pid"
} &
loop_pid=$!
trap 'kill "$nginx_pid" "$loop_pid" 2>/dev/null; exit 0' TERM INT
log "serving $STORE/files on port $PORT; fetching from $UPSTREAM"
wait "$nginx_pid"
log "error: nginx exited"
exit 1
