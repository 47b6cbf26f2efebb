#!/bin/sh
# curl, as the DevPod agent's inject script calls it on a machine with the server's agent
# cache (issue 24; installed first on sshd's PATH by devpod-bootstrap). DevPod's script
# downloads its agent with `curl -fsSL <url> -o <file>`, the URL being the CLI's own
# GitHub release when AGENT_URL is empty. Such a download is asked of the server's agent
# cache first (DEVPOD_AGENT_CACHE, host:port, same path); while the cache fetches it
# (503) we wait as long as its fetch makes progress. Anything else, and any failure of
# the cache, runs the real curl with the very same arguments: the download DevPod made.
#
# What the cache serves was verified there (agent_cache.sh); an explicit AGENT_URL (a
# mirror, file://) is never a github.com release URL, so it always passes through.
real=
for dir in /usr/local/bin /usr/bin /bin; do
  if [ -x "$dir/curl" ] && [ "$dir/curl" != "$0" ]; then
    real=$dir/curl
    break
  fi
done
[ -n "$real" ] || {
  echo "curl: not found (devpod-dokploy wrapper)" >&2
  exit 127
}

# Filled in when the provider renders the machine (lib/agent/spec.ts: agentCurl).
cache=${DEVPOD_AGENT_CACHE:-@CACHE@}
patterns=${DEVPOD_AGENT_PATHS:-'@PATHS@'}
url=
out=
prev=
for arg in "$@"; do
  case $prev in -o | --output) out=$arg ;; esac
  case $arg in https://github.com/*/releases/download/*) url=$arg ;; esac
  prev=$arg
done
path=$(printf '%s' "${url#https://github.com}" | sed 's://*:/:g')
if [ -z "$cache" ] || [ -z "$out" ] || [ -z "$url" ] || [ -z "$patterns" ] ||
  ! printf '%s\n' "$path" | grep -Eq "$patterns"; then
  exec "$real" "$@"
fi

# Content-Length of the cache's part file of this path (how far its fetch got), or "".
part_size() {
  "$real" -sSI --connect-timeout 3 --max-time 5 "http://$cache/_part$path" 2>/dev/null |
    tr -d '\r' | sed -n 's/^[Cc]ontent-[Ll]ength: *\([0-9][0-9]*\)$/\1/p'
}

# 0 once $out holds the agent from the cache.
from_cache() {
  last=
  still=0
  while :; do
    code=$("$real" -sS --connect-timeout 3 -o "$out" -w '%{http_code}' "http://$cache$path" 2>/dev/null) ||
      return 1
    case $code in
      200) return 0 ;;
      503) ;;
      *) return 1 ;;
    esac
    size=$(part_size)
    if [ -n "$size" ] && [ "$size" != "$last" ]; then
      last=$size
      still=0
    else
      still=$((still + 1))
      # 20 s without progress (0.1 s apart): its upstream stalled, do without it.
      [ "$still" -lt 200 ] || return 1
    fi
    sleep 0.1
  done
}

if from_cache; then
  exit 0
fi
rm -f "$out"
echo "devpod-dokploy: the server's agent cache could not serve $path; downloading $url as DevPod would" >&2
exec "$real" "$@"
