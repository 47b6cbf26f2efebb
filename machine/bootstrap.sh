#!/bin/sh
# devpod-bootstrap: entrypoint (PID 1) of a DevPod machine on Dokploy.
#
# Full mode prepares any Debian/Ubuntu, Alpine or Fedora/RHEL image for DevPod (packages,
# user `devpod`, pinned host key, hardened sshd, optional dockerd), then supervises sshd
# and an idle watchdog. It is shipped inline in the compose file, so it is one POSIX sh
# file (bash, dash, busybox ash) and fetches nothing of ours over the network.
# Environment contract: machine/README.md.

PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin${PATH:+:$PATH}"
export PATH
set -u

log() { printf '[devpod-bootstrap] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# Centiseconds since boot: /proc/uptime needs no `date +%N` (busybox lacks it).
now_cs() {
  read -r up _ </proc/uptime
  up=${up%.*}${up#*.}
  echo $((${up#"${up%%[!0]*}"} + 0))
}
since() {
  t=$(($(now_cs) - $1))
  printf '%d.%02ds' $((t / 100)) $((t % 100))
}
BOOT_START=$(now_cs)

MODE=${DEVPOD_BOOTSTRAP_MODE:-}
TIMEOUT=${DEVPOD_INACTIVITY_TIMEOUT:-1800}
DOCKER_MODE=${DEVPOD_DOCKER_MODE:-none}
SSHD_PORT=${DEVPOD_SSHD_PORT:-22}
SSHD_LISTEN=${DEVPOD_SSHD_LISTEN:-0.0.0.0}
SSH_PORT=${DEVPOD_SSH_PORT:-$SSHD_PORT}
STATE_DIR=${DEVPOD_STATE_DIR:-/run/devpod}
# The volume this machine shares with its backup guard (machine/backup_guard.sh); empty: no backups.
BACKUP_CTL=${DEVPOD_BACKUP_CTL:-}
SSHD_CONFIG=${DEVPOD_SSHD_CONFIG:-/etc/ssh/devpod_sshd_config}
DISABLE_TELEMETRY=${DEVPOD_DISABLE_TELEMETRY:-}
MIRROR=${DEVPOD_REGISTRY_MIRROR:-}
# The machine's end of preview URLs (machine/preview_relay.pl) and its port; empty: none.
PREVIEW_RELAY=${DEVPOD_PREVIEW_RELAY:-}
PREVIEW_RELAY_PORT=${DEVPOD_PREVIEW_RELAY_PORT:-}
# The forwarder's name on the machine's network (preview.<network>): the only peer the relay serves.
PREVIEW_FORWARDER=${DEVPOD_PREVIEW_FORWARDER:-}
# The server's prebuild registry (host:port on the cache's network) and the local port
# that forwards to it; empty: no prebuilds.
PREBUILD_REGISTRY=${DEVPOD_PREBUILD_REGISTRY:-}
PREBUILD_PORT=${DEVPOD_PREBUILD_PORT:-5151}
# The curl wrapper that gets DevPod's agent from the server's agent cache (the provider's
# machine/agent_curl.sh, filled in); empty: none, DevPod downloads it itself.
AGENT_CURL=${DEVPOD_AGENT_CURL:-}
AGENT_CURL_DIR=/usr/local/lib/devpod-dokploy/bin
# Test-only: lets tests feed the interface lookup a route table of their own.
ROUTE_FILE=${DEVPOD_PROC_NET_ROUTE:-/proc/net/route}
HOST_KEY=/etc/ssh/devpod_host_ed25519_key
USER_NAME=devpod
USER_UID=1000
USER_HOME=/home/devpod

is_uint() { case $1 in '' | *[!0-9]*) return 1 ;; esac }
# From /proc, not `id`: the tool may be missing from a minimal image.
effective_uid() {
  while read -r key _ euid _; do
    [ "$key" = Uid: ] && echo "$euid" && return 0
  done </proc/self/status
}
is_uint "$TIMEOUT" || die "DEVPOD_INACTIVITY_TIMEOUT must be whole seconds (0 = off), got '$TIMEOUT'"
is_uint "$SSHD_PORT" || die "DEVPOD_SSHD_PORT must be a port number, got '$SSHD_PORT'"
is_uint "$SSH_PORT" || die "DEVPOD_SSH_PORT must be a port number, got '$SSH_PORT'"
case $DOCKER_MODE in dind | none) ;; *) die "DEVPOD_DOCKER_MODE must be dind or none, got '$DOCKER_MODE'" ;; esac
case $MODE in '' | full | supervise) ;; *) die "DEVPOD_BOOTSTRAP_MODE must be empty or supervise, got '$MODE'" ;; esac
case $DISABLE_TELEMETRY in '' | true | false) ;; *) die "DEVPOD_DISABLE_TELEMETRY must be true, false or empty, got '$DISABLE_TELEMETRY'" ;; esac

# Writes stdin to $1 with mode $2 only when content or mode differ, so a second boot
# changes nothing. Text files only (command substitution drops trailing newlines).
put_file() {
  new=$(cat)
  if [ -f "$1" ] && [ ! -L "$1" ] && [ "$(cat "$1")" = "$new" ]; then
    [ "$(stat -c %a "$1")" = "$2" ] || chmod "$2" "$1"
    return 0
  fi
  rm -f "$1" # never write through a symlink planted in a user-writable directory
  (umask 077 && printf '%s\n' "$new" >"$1") && chmod "$2" "$1"
}

# ---------------------------------------------------------------- packages

pkg_family() {
  if command -v apt-get >/dev/null 2>&1; then echo debian
  elif command -v apk >/dev/null 2>&1; then echo alpine
  elif command -v dnf >/dev/null 2>&1; then echo fedora
  elif command -v yum >/dev/null 2>&1; then echo rhel
  else echo unknown; fi
}

# Prints the packages this image lacks; prints nothing when all is present.
missing_packages() {
  command -v sshd >/dev/null 2>&1 || printf '%s\n' openssh-server
  command -v sudo >/dev/null 2>&1 || printf '%s\n' sudo
  # The DevPod agent is downloaded with curl or wget, over TLS.
  command -v curl >/dev/null 2>&1 || command -v wget >/dev/null 2>&1 || printf '%s\n' curl
  [ -s /etc/ssl/certs/ca-certificates.crt ] || [ -s /etc/pki/tls/certs/ca-bundle.crt ] ||
    printf '%s\n' ca-certificates
  # Forwards localhost:$PREBUILD_PORT to the prebuild registry (same name everywhere).
  if [ "$DOCKER_MODE" = dind ] && [ -n "$PREBUILD_REGISTRY" ] &&
    ! command -v socat >/dev/null 2>&1; then
    printf '%s\n' socat
  fi
  if [ "$DOCKER_MODE" = dind ] && ! command -v dockerd >/dev/null 2>&1; then
    case $1 in
      debian) printf '%s\n' docker.io ;;
      alpine) printf '%s\n' docker ;;
      fedora) printf '%s\n' moby-engine ;;
      *) printf '%s\n' docker ;;
    esac
  fi
}

apt_install() {
  # Keep maintainer scripts from starting daemons (sshd on port 22) during the install.
  policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -q &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
  status=$?
  [ -z "$policy" ] || rm -f "$policy"
  rm -rf /var/lib/apt/lists/*
  return "$status"
}

# pm_install FAMILY PACKAGE...
pm_install() {
  family=$1
  shift
  case $family in
    debian) apt_install "$@" ;;
    alpine) apk add --no-cache "$@" ;;
    fedora) dnf install -y "$@" && dnf clean all ;;
    rhel) yum install -y "$@" && yum clean all ;;
    *) false ;;
  esac
}

install_packages() {
  t0=$(now_cs)
  family=$(pkg_family)
  pkgs=$(missing_packages "$family" | tr '\n' ' ')
  if [ -z "$pkgs" ]; then
    log "packages: nothing to install"
    return 0
  fi
  log "packages: installing ${pkgs}with the $family package manager"
  # Its output goes to a file (shown on failure), keeping the container log readable.
  # shellcheck disable=SC2086 # $pkgs is a word list
  if ! pm_install "$family" $pkgs >"$STATE_DIR/packages.log" 2>&1; then
    tail -n 20 "$STATE_DIR/packages.log" >&2
    command -v sshd >/dev/null 2>&1 || die "cannot install $pkgs(package manager: $family)"
    log "warning: could not install $pkgs; going on without them"
  fi
  log "packages: done in $(since "$t0")"
}

# ---------------------------------------------------------------- user

# Name of the passwd/group entry whose id (3rd field) is $2, from file $1.
name_by_id() {
  while IFS=: read -r n _ id _ || [ -n "$n" ]; do # || : a last line without newline
    [ "$id" = "$2" ] && printf '%s\n' "$n" && return 0
  done <"$1"
  return 1
}
has_entry() { grep -q "^$2:" "$1"; }

ensure_user() {
  t0=$(now_cs)
  if ! has_entry /etc/passwd "$USER_NAME"; then
    other=$(name_by_id /etc/passwd "$USER_UID") || other=
    if [ -n "$other" ] && command -v usermod >/dev/null 2>&1; then
      # E.g. ubuntu images' `ubuntu` (uid 1000): rename it so uid 1000 is devpod, as DevPod
      # and devcontainer images expect. Its old home stays where it is, untouched.
      log "user: renaming '$other' (uid $USER_UID) to $USER_NAME"
      usermod -l "$USER_NAME" -d "$USER_HOME" "$other" || die "usermod failed"
      if has_entry /etc/group "$other" && ! has_entry /etc/group "$USER_NAME"; then
        groupmod -n "$USER_NAME" "$other" || die "groupmod failed"
      fi
    else
      uid=$USER_UID
      [ -z "$other" ] || uid= # taken and not renamable (busybox): let the tool choose
      [ -n "$uid" ] || log "warning: uid $USER_UID is '$other'; $USER_NAME gets another uid"
      shell=/bin/sh
      [ -x /bin/bash ] && shell=/bin/bash
      gid=$USER_UID
      name_by_id /etc/group "$gid" >/dev/null && gid=
      if command -v useradd >/dev/null 2>&1; then
        has_entry /etc/group "$USER_NAME" || groupadd ${gid:+-g "$gid"} "$USER_NAME" ||
          die "groupadd failed"
        useradd ${uid:+-u "$uid"} -g "$USER_NAME" -M -d "$USER_HOME" -s "$shell" \
          "$USER_NAME" || die "useradd failed"
      else
        has_entry /etc/group "$USER_NAME" || addgroup ${gid:+-g "$gid"} "$USER_NAME" ||
          die "addgroup failed"
        adduser -D -H ${uid:+-u "$uid"} -G "$USER_NAME" -h "$USER_HOME" -s "$shell" \
          "$USER_NAME" || die "adduser failed"
      fi
      log "user: created $USER_NAME"
    fi
  fi
  # `!` (locked, what useradd/adduser leave) is refused by sshd without PAM; `*` is not.
  if [ -f /etc/shadow ] && grep -q "^$USER_NAME:!" /etc/shadow; then
    sed -i "s/^$USER_NAME:![^:]*:/$USER_NAME:*:/" /etc/shadow
  fi

  # The home is a volume: keep its content, only fix what sshd's StrictModes checks.
  ids="$(id -u "$USER_NAME"):$(id -g "$USER_NAME")"
  mkdir -p "$USER_HOME"
  [ "$(stat -c %u:%g "$USER_HOME")" = "$ids" ] || chown "$ids" "$USER_HOME"
  case $(stat -c %a "$USER_HOME") in *[2367]? | *[2367]) chmod go-w "$USER_HOME" ;; esac

  ssh_dir=$USER_HOME/.ssh
  [ ! -L "$ssh_dir" ] || rm -f "$ssh_dir"
  mkdir -p "$ssh_dir"
  printf '%s\n' "$DEVPOD_AUTHORIZED_KEY" | put_file "$ssh_dir/authorized_keys" 600
  [ "$(stat -c %a "$ssh_dir")" = 700 ] || chmod 700 "$ssh_dir"
  for f in "$ssh_dir" "$ssh_dir/authorized_keys"; do
    [ "$(stat -c %u:%g "$f")" = "$ids" ] || chown -h "$ids" "$f"
  done

  mkdir -p /etc/sudoers.d
  echo "$USER_NAME ALL=(ALL) NOPASSWD:ALL" | put_file /etc/sudoers.d/$USER_NAME 440
  if [ -f /etc/sudoers ] && ! grep -Eq '^[@#]includedir[[:space:]]+/etc/sudoers.d' /etc/sudoers; then
    echo '@includedir /etc/sudoers.d' >>/etc/sudoers
  fi

  if [ "$DOCKER_MODE" = dind ] && has_entry /etc/group docker; then
    case " $(id -nG "$USER_NAME") " in
      *" docker "*) ;;
      *) if command -v usermod >/dev/null 2>&1; then usermod -aG docker "$USER_NAME"
        else addgroup "$USER_NAME" docker; fi ;;
    esac
  fi
  log "user: $USER_NAME (uid $(id -u "$USER_NAME")) done in $(since "$t0")"
}

# ---------------------------------------------------------------- agent cache

# Puts the wrapper first on SSH sessions' PATH, where DevPod's inject script finds curl;
# removes it when this machine has no agent cache (any more). Prints the SetEnv words.
install_agent_curl() {
  if [ -z "$AGENT_CURL" ] || ! command -v curl >/dev/null 2>&1; then
    rm -f "$AGENT_CURL_DIR/curl"
    return 0
  fi
  if ! { mkdir -p "$AGENT_CURL_DIR" &&
    printf '%s\n' "$AGENT_CURL" | put_file "$AGENT_CURL_DIR/curl" 755; }; then
    log "warning: cannot write $AGENT_CURL_DIR/curl: DevPod downloads its agent itself"
    return 0
  fi
  log "agent cache: DevPod's agent download goes to the server's agent cache first (DevPod's download if it cannot serve it)"
  echo "PATH=$AGENT_CURL_DIR:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
}

# ---------------------------------------------------------------- sshd

configure_sshd() {
  t0=$(now_cs)
  mkdir -p /etc/ssh /run/sshd # /run/sshd: privilege separation dir sshd insists on
  printf '%s' "$DEVPOD_HOST_KEY_B64" | base64 -d 2>/dev/null | put_file "$HOST_KEY" 600
  fingerprint=
  if command -v ssh-keygen >/dev/null 2>&1; then # absent from some minimal images
    pub=$(ssh-keygen -y -f "$HOST_KEY" 2>/dev/null) ||
      die "DEVPOD_HOST_KEY_B64 is not a base64 OpenSSH private key"
    printf '%s\n' "$pub" | put_file "$HOST_KEY.pub" 644
    fingerprint=$(ssh-keygen -l -f "$HOST_KEY.pub" | cut -d' ' -f2)
  fi
  # SSH sessions get sshd's environment, not the container's: without internet the agent
  # waits ~3 s per call for telemetry unless this is set. DevPod's agent reads the first
  # name, Devsy's the second (it renamed every variable). SetEnv needs no PAM.
  # One SetEnv line: sshd takes the first of repeated directives only.
  session_env=
  [ "$DISABLE_TELEMETRY" != true ] ||
    session_env="DEVPOD_DISABLE_TELEMETRY=true DEVSY_DISABLE_TELEMETRY=true"
  agent_path=$(install_agent_curl)
  [ -z "$agent_path" ] || session_env="${session_env:+$session_env }$agent_path"
  [ -z "$session_env" ] || session_env="SetEnv $session_env"
  # Last line of the file, so when empty it is dropped with the trailing newlines.
  put_file "$SSHD_CONFIG" 644 <<EOF
# Written by devpod-bootstrap on every start: edits here are overwritten.
Port $SSHD_PORT
ListenAddress $SSHD_LISTEN
# Only the provider's key, so the host key DevPod pins is the one presented.
HostKey $HOST_KEY
PermitRootLogin no
AllowUsers $USER_NAME
PubkeyAuthentication yes
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile .ssh/authorized_keys
UsePAM no
# DevPod forwards ports and opens many parallel connections and sessions.
AllowTcpForwarding yes
AllowAgentForwarding yes
X11Forwarding no
MaxSessions 100
MaxStartups 100:30:200
ClientAliveInterval 30
ClientAliveCountMax 4
PrintMotd no
PrintLastLog no
Subsystem sftp internal-sftp
$session_env
EOF
  out=$(sshd -t -f "$SSHD_CONFIG" 2>&1) || die "sshd -t rejected $SSHD_CONFIG: $out"
  log "sshd: host key ${fingerprint:-(ssh-keygen missing)}${session_env:+, $session_env}, config ok in $(since "$t0")"
}

# ---------------------------------------------------------------- docker (dind)

# DNS name or IPv4 address as dockerd's --insecure-registry accepts it (labels of letters,
# digits and inner hyphens), so a value we pass on can never stop dockerd from starting.
valid_host() {
  case $1 in '' | *[!A-Za-z0-9.-]* | .* | *. | *..* | -* | *- | *.-* | *-.*) return 1 ;; esac
}
# No leading zero: $((08)) is octal, and an error there would end the script.
valid_port() {
  case $1 in '' | 0* | *[!0-9]*) return 1 ;; esac
  [ ${#1} -le 5 ] && [ "$1" -le 65535 ]
}
is_ipv4() {
  case $1 in *[!0-9.]* | .* | *. | *..*) return 1 ;; esac
  old_ifs=$IFS
  IFS=.
  # shellcheck disable=SC2086 # split on dots
  set -- $1
  IFS=$old_ifs
  [ $# -eq 4 ] || return 1
  for o in "$@"; do
    case $o in 0?* | ????*) return 1 ;; esac
    [ "$o" -le 255 ] || return 1
  done
}

# Checks $MIRROR (http(s)://host[:port][/]) and sets MIRROR_HOST and MIRROR_ADDR (host[:port]
# as written: what dockerd contacts). A bad value costs the cache, never the machine.
parse_mirror() {
  MIRROR_HOST=
  MIRROR_ADDR=
  [ -n "$MIRROR" ] || return 0
  case $MIRROR in
    http://*) MIRROR_ADDR=${MIRROR#http://} ;;
    https://*) MIRROR_ADDR=${MIRROR#https://} ;;
  esac
  MIRROR_ADDR=${MIRROR_ADDR%/}
  MIRROR_HOST=${MIRROR_ADDR%%:*}
  if valid_host "$MIRROR_HOST" &&
    { [ "$MIRROR_ADDR" = "$MIRROR_HOST" ] || valid_port "${MIRROR_ADDR#*:}"; }; then
    return 0
  fi
  log "warning: DEVPOD_REGISTRY_MIRROR must be http(s)://host[:port], got '$MIRROR'; pulling without a mirror"
  MIRROR=
  MIRROR_HOST=
  MIRROR_ADDR=
}

# Prints an IPv4 address of host $1 (itself when it is one).
resolve_ipv4() {
  if is_ipv4 "$1"; then
    echo "$1"
    return 0
  fi
  # ahostsv4 (glibc) skips IPv6 answers; musl's getent only knows `hosts`. Bounded: a
  # stopped cache's name goes to the outside resolver, which may never answer.
  bound=
  command -v timeout >/dev/null 2>&1 && bound="timeout 3"
  for db in ahostsv4 hosts; do
    # shellcheck disable=SC2086 # $bound is a word list
    found=$($bound getent "$db" "$1" 2>/dev/null)
    case $? in
      0) ;;
      2 | 124) return 1 ;; # not found, or no answer: the other database would say the same
      *) continue ;;
    esac
    for a in $found; do
      is_ipv4 "$a" && echo "$a" && return 0
    done
  done
  return 1
}

is_hex() { case $1 in '' | ?????????* | *[!0-9A-Fa-f]*) return 1 ;; esac } # 1 to 8 digits

# Prints the interface whose connected (gateway-less, non-default) route in $ROUTE_FILE
# holds IPv4 $1, the most specific one if several do. The file prints addresses and masks
# as hex of the kernel's little-endian words: 172.20.0.0/16 is 000014AC/0000FFFF.
route_iface() {
  is_ipv4 "$1" && [ -r "$ROUTE_FILE" ] || return 1
  old_ifs=$IFS
  IFS=.
  # shellcheck disable=SC2086 # split on dots
  set -- $1
  IFS=$old_ifs
  addr=$(($1 + ($2 << 8) + ($3 << 16) + ($4 << 24)))
  best=
  best_bits=-1
  while read -r iface dest gw flags _ _ _ mask _; do
    # The header and anything odd are skipped before any arithmetic sees them.
    if ! is_hex "$dest" || ! is_hex "$gw" || ! is_hex "$flags" || ! is_hex "$mask"; then
      continue
    fi
    # Connected: no gateway; not the default route; RTF_UP.
    if [ $((0x$dest)) -eq 0 ] || [ $((0x$gw)) -ne 0 ] || [ $((0x$flags & 1)) -eq 0 ] ||
      [ $((addr & 0x$mask)) -ne $((0x$dest)) ]; then
      continue
    fi
    m=$((0x$mask))
    bits=0
    while [ "$m" -ne 0 ]; do
      bits=$((bits + (m & 1)))
      m=$((m >> 1))
    done
    [ "$bits" -gt "$best_bits" ] || continue
    best=$iface
    best_bits=$bits
  done <"$ROUTE_FILE"
  [ -n "$best" ] && echo "$best"
}

# The cache's network is shared by every machine of the server: over it, the others may
# reach this machine's sshd (as they can through Dokploy anyway) and nothing else of it or
# its containers. mangle PREROUTING sees packets before dockerd's DNAT and filter rules;
# replies to our own connections (the pulls) are not NEW and pass.
mirror_firewall() {
  [ -n "$MIRROR_HOST" ] || return 0
  t0=$(now_cs)
  missing=
  command -v iptables >/dev/null 2>&1 || missing=iptables
  is_ipv4 "$MIRROR_HOST" || command -v getent >/dev/null 2>&1 || missing=${missing:-getent}
  if [ -n "$missing" ]; then
    log "warning: $missing not found: no firewall on the registry mirror's network"
    return 0
  fi
  if ! ip=$(resolve_ipv4 "$MIRROR_HOST"); then
    log "warning: cannot resolve $MIRROR_HOST: no firewall on the registry mirror's network"
    return 0
  fi
  if ! iface=$(route_iface "$ip"); then
    log "warning: no interface has a route to $ip ($MIRROR_HOST): no firewall on the registry mirror's network"
    return 0
  fi
  # ACCEPT goes first, DROP last, whichever of them a previous boot left.
  for rule in "-p tcp --dport $SSHD_PORT -j ACCEPT" "-m conntrack --ctstate NEW -j DROP"; do
    add="-I PREROUTING 1"
    [ "${rule##* }" = DROP ] && add="-A PREROUTING"
    # shellcheck disable=SC2086 # word lists
    iptables -t mangle -C PREROUTING -i "$iface" $rule >/dev/null 2>&1 ||
      out=$(iptables -t mangle $add -i "$iface" $rule 2>&1) || {
      log "warning: iptables failed ($out): no firewall on the registry mirror's network"
      return 0
    }
  done
  log "firewall: on $iface ($MIRROR_HOST $ip) only tcp port $SSHD_PORT accepts new connections, in $(since "$t0")"
}

# ---------------------------------------------------------------- prebuilds

# Checks $PREBUILD_REGISTRY (host:port) and $PREBUILD_PORT; a bad value costs the
# prebuilds, never the machine.
parse_prebuilds() {
  [ -n "$PREBUILD_REGISTRY" ] || return 0
  host=${PREBUILD_REGISTRY%:*}
  if [ "$host" != "$PREBUILD_REGISTRY" ] && valid_host "$host" &&
    valid_port "${PREBUILD_REGISTRY##*:}" && valid_port "$PREBUILD_PORT"; then
    return 0
  fi
  log "warning: DEVPOD_PREBUILD_REGISTRY must be host:port and DEVPOD_PREBUILD_PORT a port, got '$PREBUILD_REGISTRY' and '$PREBUILD_PORT'; no prebuilds"
  PREBUILD_REGISTRY=
}

# Whether the prebuild registry has manifest $2 of repository $1 (a HEAD, as DevPod's
# client asks with a GET): what is there already is never pushed again.
prebuild_exists() {
  url="http://127.0.0.1:$PREBUILD_PORT/v2/$1/manifests/$2"
  accept="Accept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"
  if command -v curl >/dev/null 2>&1; then
    curl -fsI --max-time 15 -H "$accept" "$url" >/dev/null 2>&1
  else
    wget -q --spider -T 15 --header "$accept" "$url" >/dev/null 2>&1
  fi
}

# Whether $1 is a prebuild: localhost:PORT/REPO:devpod-HASH as DevPod tags what it builds
# for --prebuild-repository (devsy-HASH as Devsy does).
is_prebuild() {
  case $1 in
    localhost:"$PREBUILD_PORT"/*:* | 127.0.0.1:"$PREBUILD_PORT"/*:*) ;;
    *) return 1 ;;
  esac
  case ${1##*:} in devpod-* | devsy-*) ;; *) return 1 ;; esac
  case ${1##*:} in *[!A-Za-z0-9_.-]*) return 1 ;; esac
}

# Pushes image $1 when it is a prebuild the registry does not have yet. Status: 0 pushed,
# present or no prebuild; 1 the push failed (logged); 2 another push of it is under way.
push_prebuild() {
  is_prebuild "$1" || return 0
  ref=${1#*/}
  # One push per tag at a time (a build may tag twice); the registry refuses a second.
  lock="$STATE_DIR/prebuild-push.${ref##*:}"
  mkdir "$lock" 2>/dev/null || return 2
  pushed=0
  if prebuild_exists "${ref%:*}" "${ref##*:}"; then
    :
  elif docker push "$1" >>"$STATE_DIR/prebuild-push.log" 2>&1; then
    log "prebuilds: pushed $1"
  else
    log "prebuilds: push of $1 failed (last lines of $STATE_DIR/prebuild-push.log):"
    tail -n 3 "$STATE_DIR/prebuild-push.log" >&2
    pushed=1
  fi
  rmdir "$lock"
  return "$pushed"
}

# Pushes every prebuild the engine holds that this watcher has not settled yet: one that
# was pushed, or found in the registry, is never asked about again (PREBUILDS_DONE); one
# whose push failed waits in PREBUILDS_FAILED until the caller empties it, so a registry
# that is down costs one log line per prebuild per retry period, not one per listing.
push_new_prebuilds() {
  names=$(docker images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null) || return 0
  for name in $names; do
    is_prebuild "$name" || continue
    case $PREBUILDS_DONE$PREBUILDS_FAILED in *" $name "*) continue ;; esac
    push_prebuild "$name"
    case $? in
      0) PREBUILDS_DONE="$PREBUILDS_DONE$name " ;;
      1) PREBUILDS_FAILED="$PREBUILDS_FAILED$name " ;;
    esac
  done
}

# The file in which dockerd keeps its tags (its reference store); empty where there is
# none to watch (an image store in containerd, say). Every tag is written there, however
# it was made, events or not.
reference_store() {
  where=$(docker info --format '{{.DockerRootDir}}/image/{{.Driver}}' 2>/dev/null) || return 0
  [ -d "$where" ] && echo "$where/repositories.json"
}

# Whether file $1 was written since stamp $2 was touched, or at the same time: busybox
# compares whole seconds, and one listing too many is cheap where a missed tag is not.
# -ot is in dash, bash and busybox ash alike (and POSIX.1-2024).
changed_since() {
  # shellcheck disable=SC3013
  [ -e "$1" ] && [ ! "$1" -ot "$2" ]
}

# Polls for prebuilds no event announced: DevPod's agent builds with its own BuildKit
# client, whose exporter tags the image in dockerd's embedded BuildKit without any event
# on docker 20.10 (no `tag`, no `load`). Cost: every PREBUILD_POLL_S one `sleep` (a fork:
# about 5 ms of CPU measured on a loaded 2-core host, less when idle) and a builtin test
# of the reference store's mtime (under 0.5 ms): at most 0.25% of one core at 2 s. The
# engine is listed (`docker images`, about 60 ms there) only when that file changed, and
# every PREBUILD_LIST_EVERY polls anyway (every PREBUILD_BLIND_EVERY where there is no
# such file to watch). Failed pushes are tried again every PREBUILD_RETRY_EVERY polls.
PREBUILD_POLL_S=2
PREBUILD_LIST_EVERY=150   # 5 min
PREBUILD_BLIND_EVERY=15   # 30 s
PREBUILD_RETRY_EVERY=300  # 10 min
PREBUILDS_DONE=" "
PREBUILDS_FAILED=" "
prebuild_poller() {
  refs=$(reference_store)
  stamp="$STATE_DIR/prebuild-push.stamp"
  touch "$stamp"
  push_new_prebuilds # those tagged while no watcher ran
  n=0
  while alive "$DOCKERD_PID" && sleep "$PREBUILD_POLL_S"; do
    n=$((n + 1))
    [ $((n % PREBUILD_RETRY_EVERY)) -ne 0 ] || PREBUILDS_FAILED=" "
    if [ -n "$refs" ]; then
      changed_since "$refs" "$stamp" || [ $((n % PREBUILD_LIST_EVERY)) -eq 0 ] || continue
    else
      [ $((n % PREBUILD_BLIND_EVERY)) -eq 0 ] || continue
    fi
    touch "$stamp" # before the listing: a tag written during it is seen at the next poll
    push_new_prebuilds
  done
}

# The fast path: follows the engine's tag events (a classic build's -t, `docker tag`,
# `docker build` with BuildKit) and pushes each new prebuild beside the next event.
prebuild_events() {
  while alive "$DOCKERD_PID"; do
    docker events --filter type=image --filter event=tag \
      --format '{{.Actor.Attributes.name}}' 2>/dev/null | while read -r name; do
      push_prebuild "$name" &
    done
    sleep 2
  done
}

FORWARD_PID=
POLLER_PID=
EVENTS_PID=
start_prebuilds() {
  [ -n "$PREBUILD_REGISTRY" ] && [ -n "$DOCKERD_PID" ] || return 0
  if ! command -v socat >/dev/null 2>&1; then
    log "warning: socat not found: no prebuilds (localhost:$PREBUILD_PORT is not forwarded)"
    return 0
  fi
  # Only on loopback: DevPod's client and dockerd speak plain HTTP to localhost alone.
  rm -rf "$STATE_DIR"/prebuild-push.* # locks of a previous boot
  # Neither needs the secrets the boot still holds.
  (
    unset DEVPOD_HOST_KEY_B64 DEVPOD_AUTHORIZED_KEY
    exec socat "TCP-LISTEN:$PREBUILD_PORT,bind=127.0.0.1,reuseaddr,fork" \
      "TCP:$PREBUILD_REGISTRY,connect-timeout=10" >"$STATE_DIR/prebuild-forward.log" 2>&1
  ) &
  FORWARD_PID=$!
  (
    unset DEVPOD_HOST_KEY_B64 DEVPOD_AUTHORIZED_KEY
    prebuild_poller
  ) &
  POLLER_PID=$!
  (
    unset DEVPOD_HOST_KEY_B64 DEVPOD_AUTHORIZED_KEY
    prebuild_events
  ) &
  EVENTS_PID=$!
  log "prebuilds: localhost:$PREBUILD_PORT forwards to $PREBUILD_REGISTRY; images DevPod (Devsy) tags localhost:$PREBUILD_PORT/<repo>:devpod-<hash> (devsy-<hash>) are pushed there"
}

DOCKERD_PID=
start_dockerd() {
  t0=$(now_cs)
  if docker info >/dev/null 2>&1; then
    log "docker: already running"
    return 0
  fi
  # Nested containers on cgroup v2: move ourselves out of the root cgroup so its
  # controllers can be delegated (what moby's hack/dind does). Needs --privileged, and
  # only ever in our own cgroup namespace ("0::/"), never in a host's hierarchy.
  if [ -f /sys/fs/cgroup/cgroup.controllers ] && [ -w /sys/fs/cgroup ] &&
    [ "$(cat /proc/self/cgroup)" = "0::/" ]; then
    mkdir -p /sys/fs/cgroup/init 2>/dev/null &&
      while read -r p; do echo "$p" >/sys/fs/cgroup/init/cgroup.procs; done \
        </sys/fs/cgroup/cgroup.procs 2>/dev/null
    sed -e 's/ / +/g' -e 's/^/+/' </sys/fs/cgroup/cgroup.controllers \
      >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
  fi
  # The container's /run survives a restart: a stale pid file would stop dockerd.
  rm -f /var/run/docker.pid /run/docker.pid /var/run/docker/containerd/containerd.pid
  # dockerd refuses to start when a flag repeats a daemon.json setting.
  set --
  daemon_json=/etc/docker/daemon.json
  if [ -z "$MIRROR" ]; then
    :
  elif [ -f "$daemon_json" ] && grep -q '"registry-mirrors"' "$daemon_json"; then
    log "docker: $daemon_json sets registry-mirrors; not adding $MIRROR"
  else
    set -- --registry-mirror "$MIRROR"
    note=
    case $MIRROR in
      http://*)
        if [ -f "$daemon_json" ] && grep -q '"insecure-registries"' "$daemon_json"; then
          note=" (insecure-registries from $daemon_json)"
        else
          set -- "$@" --insecure-registry "$MIRROR_ADDR"
          note=" (plain HTTP allowed for $MIRROR_ADDR)"
        fi
        ;;
    esac
    log "docker: registry mirror $MIRROR$note"
  fi
  dockerd "$@" >"$STATE_DIR/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  i=0
  until docker info >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -gt 120 ] || ! alive "$DOCKERD_PID"; then
      # Stay reachable over ssh so the failure can be inspected; DevPod reports it too.
      log "warning: dockerd not ready after $(since "$t0"); last lines of $STATE_DIR/dockerd.log:"
      tail -n 20 "$STATE_DIR/dockerd.log" >&2
      return 0
    fi
    sleep 0.5 2>/dev/null || sleep 1
  done
  log "docker: ready in $(since "$t0") (log: $STATE_DIR/dockerd.log)"
}

# ---------------------------------------------------------------- supervise

# Whether /proc/net/tcp{,6} has a socket in state $2 (01 established, 0A listen) on
# local port $1. Reading /proc needs no procps/ss and sees every tunnel, IDE and shell.
tcp_socket() {
  hex=$(printf '%04X' "$1")
  for f in /proc/net/tcp /proc/net/tcp6; do
    [ -r "$f" ] || continue
    while read -r _ local _ st _; do
      [ "$st" = "$2" ] && [ "${local##*:}" = "$hex" ] && return 0
    done <"$f"
  done
  return 1
}

# Stops the machine (sshd, hence PID 1) after $TIMEOUT s without an SSH connection.
# Token-free by design: the machine stops itself; no Dokploy credential lives here.
watchdog() {
  interval=$((TIMEOUT / 4))
  [ "$interval" -ge 1 ] || interval=1
  [ "$interval" -le 10 ] || interval=10
  last_seen=$(now_cs)
  while sleep "$interval"; do
    if tcp_socket "$SSH_PORT" 01; then
      last_seen=$(now_cs)
    elif [ $(($(now_cs) - last_seen)) -ge $((TIMEOUT * 100)) ]; then
      echo "$TIMEOUT" >"$STATE_DIR/idle-stop"
      kill -TERM "$SSHD_PID" 2>/dev/null
      return 0
    fi
  done
}

# ---------------------------------------------------------------- backups

# Answers the backup guard through $BACKUP_CTL: `alive` counts while the machine runs;
# `freeze` asks for the writers to be frozen while the guard copies the home; a file in
# `requests/` (writable by the devpod user, as over SSH) asks for a stop that leaves the
# guard running, so that backups of a stopped machine still find it.
backup_responder() {
  mkdir -p "$BACKUP_CTL/requests" && chmod 1733 "$BACKUP_CTL/requests" || return 0
  rm -f "$BACKUP_CTL/frozen" "$BACKUP_CTL/thawed-early" "$BACKUP_CTL/requests/stop"
  n=0
  while :; do
    n=$((n + 1))
    echo "$n" >"$BACKUP_CTL/alive.new" && mv -f "$BACKUP_CTL/alive.new" "$BACKUP_CTL/alive"
    if [ -e "$BACKUP_CTL/requests/stop" ]; then
      rm -f "$BACKUP_CTL/requests/stop"
      log "stop requested by the provider"
      kill -TERM 1
    fi
    if [ -e "$BACKUP_CTL/freeze" ] && [ ! -e "$BACKUP_CTL/thawed-early" ]; then
      freeze_writers
    elif [ ! -e "$BACKUP_CTL/freeze" ]; then
      rm -f "$BACKUP_CTL/thawed-early"
    fi
    sleep 1
  done
}

# SIGSTOPs every process of the machine but PID 1, this responder and the engine that
# runs the devcontainers (their processes are stopped like any other), until the guard
# removes `freeze` — at most 10 min, then the writers run again whatever the guard does.
# Only builtins inside the scan: a child of ours stopped there would never end.
freeze_writers() {
  me=$(exec sh -c 'echo $PPID')
  frozen=" 1 $me "
  for _ in 1 2; do # the second pass catches what forked during the first
    for d in /proc/[0-9]*; do
      pid=${d#/proc/}
      case $frozen in *" $pid "*) continue ;; esac
      # `read` with its own redirection: a process that ended meanwhile fails only this
      # command (a failed redirection of a loop or group ends the whole shell, POSIX).
      # /proc/PID/stat is "pid (comm) state ppid …"; comm may hold spaces and parentheses.
      stat=''
      read -r stat 2>/dev/null <"$d/stat" || continue
      name=${stat#*\(}
      name=${name%\)*}
      ppid=${stat##*\) }
      ppid=${ppid#* }
      ppid=${ppid%% *}
      [ "$ppid" != "$me" ] || continue
      case $name in '' | dockerd | containerd | containerd-shim* | runc) continue ;; esac
      kill -STOP "$pid" 2>/dev/null && frozen="$frozen$pid "
    done
  done
  : >"$BACKUP_CTL/frozen"
  waited=0
  while [ -e "$BACKUP_CTL/freeze" ] && [ "$waited" -lt 3000 ]; do
    waited=$((waited + 1))
    sleep 0.2 2>/dev/null || { sleep 1 && waited=$((waited + 4)); }
  done
  # shellcheck disable=SC2086 # a list of pids
  kill -CONT $frozen 2>/dev/null
  [ ! -e "$BACKUP_CTL/freeze" ] || : >"$BACKUP_CTL/thawed-early"
  rm -f "$BACKUP_CTL/frozen"
  log "backup snapshot: writers were frozen for $((waited / 5)) s"
}

# ---------------------------------------------------------------- previews

# Relays connections from the machine's preview forwarder (the only service of ours on
# dokploy-network) to the previewed port of the devcontainer. It serves the forwarder's
# address only (its service name on the machine's network, resolved per connection), whatever network another
# peer comes from. Perl is in every Debian/Ubuntu image (perl-base); without it the
# machine simply has no previews.
RELAY_PID=
start_preview_relay() {
  if ! is_uint "$PREVIEW_RELAY_PORT" || [ -z "$PREVIEW_FORWARDER" ]; then
    log "warning: DEVPOD_PREVIEW_RELAY_PORT or DEVPOD_PREVIEW_FORWARDER is not set right: no preview relay"
    return 0
  fi
  if ! command -v perl >/dev/null 2>&1; then
    log "warning: perl not found: preview URLs cannot reach this machine"
    return 0
  fi
  perl -e "$PREVIEW_RELAY" machine "$PREVIEW_RELAY_PORT" "$PREVIEW_FORWARDER" \
    2>>"$STATE_DIR/preview-relay.log" &
  RELAY_PID=$!
  log "previews: relay on port $PREVIEW_RELAY_PORT (log: $STATE_DIR/preview-relay.log)"
}

# Whether $1 runs (a zombie child does not: `kill -0` would say it does).
alive() {
  [ -r "/proc/$1/stat" ] && read -r _ _ st _ <"/proc/$1/stat" && [ "$st" != Z ]
}

# Sends TERM to the pids given and reaps them; KILL after $1 s (dockerd stops its
# containers first: give the compose service a stop_grace_period above this).
stop_pids() {
  grace=$1
  shift
  [ $# -gt 0 ] || return 0
  for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
  (sleep "$grace" && kill -KILL "$@" 2>/dev/null) &
  killer=$!
  for p in "$@"; do wait "$p" 2>/dev/null; done
  kill "$killer" 2>/dev/null
}

supervise() {
  # sshd re-executes itself, so it must be started by absolute path.
  sshd_bin=$(command -v sshd) || die "sshd not found"
  [ -r "$SSHD_CONFIG" ] || die "sshd config $SSHD_CONFIG not readable"
  mkdir -p "$STATE_DIR" || die "cannot create $STATE_DIR"
  rm -f "$STATE_DIR/idle-stop"
  # Secrets are on disk now; sshd, dockerd and sessions need not inherit them (nor the
  # relay's source).
  unset DEVPOD_HOST_KEY_B64 DEVPOD_AUTHORIZED_KEY DEVPOD_PREVIEW_RELAY DEVPOD_AGENT_CURL

  STOPPING=
  SSHD_PID=
  # Stopping sshd in the trap makes the `wait` below return even if the signal came
  # before it started.
  trap 'STOPPING=1; [ -z "$SSHD_PID" ] || kill -TERM "$SSHD_PID" 2>/dev/null' TERM INT HUP
  "$sshd_bin" -D -e -f "$SSHD_CONFIG" &
  SSHD_PID=$!

  # "Ready" means sshd accepts connections, which is what boot time should measure.
  i=0
  while ! tcp_socket "$SSHD_PORT" 0A && alive "$SSHD_PID" && [ "$i" -lt 100 ]; do
    i=$((i + 1))
    sleep 0.1 2>/dev/null || sleep 1
  done
  # Idle time counts from ready: a slow sshd start must not eat the first session's time.
  WATCHDOG_PID=
  if [ "$TIMEOUT" -gt 0 ]; then
    watchdog &
    WATCHDOG_PID=$!
  fi
  RESPONDER_PID=
  # Only as PID 1 of its own PID namespace: the freeze must never see another's processes.
  if [ -n "$BACKUP_CTL" ] && [ -d "$BACKUP_CTL" ] && [ "$$" = 1 ]; then
    backup_responder &
    RESPONDER_PID=$!
  fi
  # Full mode only: in supervise mode (the emulator's host runtime) machines share a host.
  if [ -n "$PREVIEW_RELAY" ] && [ "$MODE" != supervise ]; then
    start_preview_relay
  fi
  idle=never
  [ "$TIMEOUT" -eq 0 ] || idle="${TIMEOUT}s without SSH"
  alive "$SSHD_PID" &&
    log "ready in $(since "$BOOT_START"): sshd on $SSHD_LISTEN:$SSHD_PORT, idle stop: $idle"

  # Returns when sshd exits, or early when a trapped signal (docker stop) arrives.
  wait "$SSHD_PID"
  status=$?

  if [ -n "$STOPPING" ]; then
    log "signal received: stopping"
    stop_pids 20 "$SSHD_PID" ${WATCHDOG_PID:+"$WATCHDOG_PID"} ${RESPONDER_PID:+"$RESPONDER_PID"} \
      ${RELAY_PID:+"$RELAY_PID"} ${POLLER_PID:+"$POLLER_PID"} ${EVENTS_PID:+"$EVENTS_PID"} \
      ${FORWARD_PID:+"$FORWARD_PID"} ${DOCKERD_PID:+"$DOCKERD_PID"}
    log "stopped"
    exit 0
  fi
  stop_pids 20 ${WATCHDOG_PID:+"$WATCHDOG_PID"} ${RESPONDER_PID:+"$RESPONDER_PID"} \
    ${RELAY_PID:+"$RELAY_PID"} ${POLLER_PID:+"$POLLER_PID"} ${EVENTS_PID:+"$EVENTS_PID"} \
    ${FORWARD_PID:+"$FORWARD_PID"} ${DOCKERD_PID:+"$DOCKERD_PID"}
  if [ -f "$STATE_DIR/idle-stop" ]; then
    log "stopped after $(cat "$STATE_DIR/idle-stop")s without an SSH session (idle timeout)"
    exit 0
  fi
  log "error: sshd exited by itself (status $status)"
  [ "$status" -ne 0 ] || status=1
  exit "$status"
}

# ---------------------------------------------------------------- main

if [ "$MODE" = supervise ]; then
  log "supervise mode: sshd config $SSHD_CONFIG"
  supervise
fi

[ "$(effective_uid)" = 0 ] || die "full mode needs root (or set DEVPOD_BOOTSTRAP_MODE=supervise)"
[ -n "${DEVPOD_HOST_KEY_B64:-}" ] || die "DEVPOD_HOST_KEY_B64 is empty"
DEVPOD_AUTHORIZED_KEY=$(printf '%s' "${DEVPOD_AUTHORIZED_KEY:-}") # drops trailing newlines
case ${DEVPOD_AUTHORIZED_KEY:-} in
  '') die "DEVPOD_AUTHORIZED_KEY is empty" ;;
  *"
"*) die "DEVPOD_AUTHORIZED_KEY must be one line" ;;
esac
# Until supervise() takes over, a docker stop simply ends the boot.
trap 'log "signal received during setup: stopping"; exit 0' TERM INT HUP
log "starting (docker: $DOCKER_MODE)"
mkdir -p "$STATE_DIR" || die "cannot create $STATE_DIR"
install_packages
ensure_user
configure_sshd
if [ "$DOCKER_MODE" = dind ]; then
  parse_mirror
  parse_prebuilds
  mirror_firewall # before dockerd: its containers are reachable as soon as they start
  start_dockerd
  start_prebuilds
fi
supervise
