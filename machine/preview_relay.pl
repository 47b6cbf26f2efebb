# devpod preview relay (issue 19): the two ends of a preview URL, in one perl file that
# any Debian/Ubuntu image runs (perl-base is essential there; nothing to install).
#
#   forwarder   in the machine's unprivileged `preview` service, the only one of ours on
#               dokploy-network: accepts Traefik's connections on each previewed port
#               (DEVPOD_PREVIEW_PORTS) and hands each to the machine's relay
#               (DEVPOD_PREVIEW_MACHINE:DEVPOD_PREVIEW_RELAY_PORT) behind a one-line header
#               naming the port. It forwards nothing else.
#   machine     started by the machine's bootstrap: accepts connections from the
#               machine's own forwarder only, reads the header and connects to that port of the devcontainer (the
#               running container labelled dev.containers.id in the machine's engine), or
#               of the machine itself when there is none; then relays both ways.
#   probe       run by `doctor` over SSH inside the machine: one request through the
#               forwarder per previewed port, one line each saying where it got.
#
# Each end finds the other by its compose service name on the machine's own network,
# `<service>.<network>` (Docker's DNS resolves a name in the network named after the
# dot): every compose sets the service name as an alias on each network a service
# joins, whatever it names the containers; and on dokploy-network, which the forwarder
# also joins, `machine` or `preview` alone could be another project's.
#
# A target that does not answer, or a peer refused, gets a plain HTTP 502 saying why, so
# a stopped machine's URL shows an error page, never anything else, and nothing fails
# silently.
use strict;
use warnings;
use IO::Socket::INET;
use Socket qw(inet_ntoa);
use IO::Select;
use POSIX ();

$SIG{CHLD} = 'IGNORE';    # children are reaped by the kernel
$SIG{PIPE} = 'IGNORE';
# As the forwarder's PID 1 a signal without a handler is ignored: docker stop would wait
# its 10 s grace and kill.
$SIG{TERM} = $SIG{INT} = sub { POSIX::_exit(0) };
my $HEADER = 'DEVPOD-PREVIEW';
my $role = shift @ARGV // '';

sub note { print STDERR "[devpod-preview] @_\n" }

sub listener {
  my ($port) = @_;
  return IO::Socket::INET->new(
    LocalAddr => '0.0.0.0', LocalPort => $port, Listen => 128, ReuseAddr => 1,
    Proto => 'tcp',
  ) || die "[devpod-preview] cannot listen on port $port: $!\n";
}

sub connect_to {
  my ($host, $port, $timeout) = @_;
  return IO::Socket::INET->new(
    PeerAddr => $host, PeerPort => $port, Proto => 'tcp', Timeout => $timeout // 10,
  );
}

# Docker's embedded DNS server, in every container on a user-defined network (ours all
# are). Asked directly: only it knows `<service>.<network>`, and the system resolver
# would first walk the search list out to the world's DNS and wait on it unbounded.
my $DOCKER_DNS = '127.0.0.11';

# The IPv4 addresses of $name in Docker's DNS; () when it has none or does not answer
# within 2 s (two tries of 1 s: UDP).
sub resolve {
  my ($name) = @_;
  return ($name) if $name =~ /^\d+\.\d+\.\d+\.\d+$/;
  my $id = int(rand(65536));
  my $query = pack('n6', $id, 0x0100, 1, 0, 0, 0)
    . join('', map { chr(length) . $_ } split /\./, $name) . "\0" . pack('n2', 1, 1);
  my $sock = IO::Socket::INET->new(PeerAddr => $DOCKER_DNS, PeerPort => 53, Proto => 'udp')
    or return ();
  my $sel = IO::Select->new($sock);
  for my $try (1, 2) {
    send($sock, $query, 0) or return ();
    for (1 .. 8) {    # a stray datagram is skipped, a flood cannot hold us
      $sel->can_read(1) or last;
      defined(recv($sock, my $answer, 1500, 0)) or return ();
      my @found = a_records($answer, $id);
      return @found if @found && $found[0] ne 'none';
      return () if @found;
    }
  }
  return ();
}

# The A records of DNS answer $msg to query $id; ('none') for an answer without any;
# () when $msg is not that answer.
sub a_records {
  my ($msg, $id) = @_;
  return () if length($msg) < 12;
  my ($got, $flags, $qd, $an) = unpack('n4', $msg);
  return () if $got != $id || !($flags & 0x8000);
  return ('none') if $flags & 0x000f;    # NXDOMAIN, SERVFAIL…
  my $off = 12;
  for (1 .. $qd) {
    $off = skip_name($msg, $off) // return ('none');
    $off += 4;
  }
  my @addrs;
  for (1 .. $an) {
    $off = skip_name($msg, $off) // last;
    last if $off + 10 > length $msg;
    my ($type, undef, undef, $len) = unpack('n n N n', substr($msg, $off, 10));
    $off += 10;
    push @addrs, inet_ntoa(substr($msg, $off, 4)) if $type == 1 && $len == 4;
    $off += $len;
  }
  return @addrs ? @addrs : ('none');
}

sub skip_name {
  my ($msg, $off) = @_;
  while ($off < length $msg) {
    my $len = ord substr($msg, $off, 1);
    return $off + 2 if $len >= 0xc0;    # a pointer ends the name
    return $off + 1 if $len == 0;
    $off += $len + 1;
  }
  return undef;
}

sub http_error {
  my ($sock, $text) = @_;
  my $body = "$text\n";
  syswrite($sock, "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain; charset=utf-8\r\n"
    . "Content-Length: " . length($body) . "\r\nConnection: close\r\n\r\n$body");
}

# Copies both ways until both sides have ended (half-closes are passed on), or an hour
# without a byte either way.
sub relay {
  my ($a, $b) = @_;
  my %peer = ($a => $b, $b => $a);
  my $sel = IO::Select->new($a, $b);
  while ($sel->count) {
    my @ready = $sel->can_read(3600) or return;
    for my $from (@ready) {
      my $to = $peer{$from};
      my $n = sysread($from, my $buf, 65536);
      if (!$n) {
        $sel->remove($from);
        shutdown($to, 1);
        next;
      }
      for (my $off = 0; $off < $n;) {
        my $w = syswrite($to, $buf, $n - $off, $off);
        return unless defined $w;
        $off += $w;
      }
    }
  }
}

# Runs `serve` for each accepted connection in a child of its own.
sub accept_loop {
  my ($serve, @listeners) = @_;
  my $sel = IO::Select->new(@listeners);
  while (1) {
    for my $l ($sel->can_read) {
      my $client = $l->accept or next;
      my $pid = fork;
      if (!defined $pid || $pid) {
        close $client;
        next;
      }
      my $port = $l->sockport;
      close $_ for @listeners;
      $serve->($client, $port);
      POSIX::_exit(0);
    }
  }
}

sub forwarder {
  my $machine = $ENV{DEVPOD_PREVIEW_MACHINE} || die "[devpod-preview] DEVPOD_PREVIEW_MACHINE is empty\n";
  my $relay_port = $ENV{DEVPOD_PREVIEW_RELAY_PORT} || die "[devpod-preview] DEVPOD_PREVIEW_RELAY_PORT is empty\n";
  my @ports = grep { /^\d+$/ } split /[\s,]+/, ($ENV{DEVPOD_PREVIEW_PORTS} // '');
  die "[devpod-preview] DEVPOD_PREVIEW_PORTS names no port\n" unless @ports;
  my @listeners = map { listener($_) } @ports;
  note("forwarding ports @ports to the machine's relay at $machine:$relay_port");
  accept_loop(sub {
    my ($client, $port) = @_;
    my ($ip) = resolve($machine);
    my $up = $ip && connect_to($ip, $relay_port);
    if (!$up) {
      my $why = $ip ? "$ip:$relay_port: $!" : "$machine: no address";
      http_error($client, "devpod preview: the machine is not running (devpod up <workspace> starts it)"
        . " [$why]");
      return;
    }
    syswrite($up, "$HEADER $port\n");
    relay($client, $up);
  }, @listeners);
}

# The devcontainer's address in the machine's engine; 127.0.0.1 (the machine itself)
# when no devcontainer runs or it shares the machine's network.
sub app_host {
  my @ids = read_lines('docker', 'ps', '-q', '--filter', 'label=dev.containers.id',
    '--filter', 'status=running');
  return '127.0.0.1' unless @ids;
  my ($ips) = read_lines('docker', 'inspect', '-f',
    '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}', $ids[0]);
  my ($ip) = grep { /^[0-9.]+$/ } split ' ', ($ips // '');
  return $ip // '127.0.0.1';
}

sub read_lines {
  my @cmd = @_;
  my $pid = open(my $out, '-|');
  return () unless defined $pid;
  if (!$pid) {
    open(STDERR, '>', '/dev/null');
    exec { $cmd[0] } @cmd or POSIX::_exit(127);
  }
  my @lines = grep { length } map { s/\s+$//r } <$out>;
  close $out;
  return @lines;
}

# At most 32 bytes, within 10 s: `DEVPOD-PREVIEW <port>\n`.
sub read_header {
  my ($sock) = @_;
  my $line = '';
  my $sel = IO::Select->new($sock);
  my $deadline = time + 10;
  while (length($line) < 32) {
    my $left = $deadline - time;
    return undef if $left <= 0 || !$sel->can_read($left);
    my $n = sysread($sock, my $c, 1);
    return undef unless $n;
    return $line if $c eq "\n";
    $line .= $c;
  }
  return undef;
}

# Root is not needed past the bind: the relay runs as the machine's user (docker group,
# to find the devcontainer).
sub drop_privileges {
  return if $> != 0;
  my (undef, undef, $uid, $gid) = getpwnam('devpod') or return note('no user devpod: relay stays root');
  my $docker = (getgrnam('docker'))[2];
  $) = join(' ', $gid, $gid, defined $docker ? $docker : ());
  $( = $gid;
  ($<, $>) = ($uid, $uid);
  die "[devpod-preview] could not drop root\n" if $> == 0 || $< == 0;
}

# Whether the peer is the machine's own forwarder: its service name on the machine's
# network (`preview.<network>`) resolves to the peer's address. Nothing else that shares
# a network with the machine (another machine on the image cache's network, say)
# reaches the devcontainer through the relay.
sub from_forwarder {
  my ($sock, $forwarder) = @_;
  my $peer = $sock->peerhost // return 0;
  return scalar grep { $_ eq $peer } resolve($forwarder);
}

sub machine {
  my $relay_port = shift @ARGV || die "[devpod-preview] usage: machine <relay port> <forwarder>\n";
  my $forwarder = shift @ARGV || die "[devpod-preview] usage: machine <relay port> <forwarder>\n";
  my $l = listener($relay_port);
  drop_privileges();
  note("relay on port $relay_port: previewed ports reach the devcontainer");
  accept_loop(sub {
    my ($client) = @_;
    if (!from_forwarder($client, $forwarder)) {
      my $peer = $client->peerhost // '?';
      note("refused $peer: not $forwarder");
      # Said to the peer too: a forwarder the relay does not recognise shows why.
      http_error($client, "devpod preview: the machine's relay refused $peer: it is not $forwarder"
        . " (devpod stop, then devpod up <workspace>, deploys both again)");
      return;
    }
    my $line = read_header($client) // return;
    my ($port) = $line =~ /^\Q$HEADER\E (\d{1,5})$/ or return;
    return if $port < 1 || $port > 65535;
    my $host = app_host();
    my $app = connect_to($host, $port);
    if (!$app) {
      http_error($client, "devpod preview: nothing answers on port $port of the devcontainer ($host)."
        . " The app must listen on 0.0.0.0, not 127.0.0.1.");
      return;
    }
    relay($client, $app);
  }, $l);
}

# One request through the forwarder per port: `<port> <outcome> <detail>` on stdout, where
# outcome is one of unresolved (the forwarder's name has no address on the machine's
# network), closed (nothing listens there), devpod (a 502 of ours, its text the detail),
# http (anything else that answers HTTP; the status the detail) or silent.
sub probe {
  my $forwarder = shift @ARGV || die "[devpod-preview] usage: probe <forwarder> <port>…\n";
  $| = 1;
  for my $port (grep { /^\d{1,5}$/ } @ARGV) {
    my ($ip) = resolve($forwarder);
    if (!$ip) {
      print "$port unresolved $forwarder\n";
      next;
    }
    my $s = connect_to($ip, $port, 5);
    if (!$s) {
      print "$port closed $ip:$port: $!\n";
      next;
    }
    syswrite($s, "HEAD / HTTP/1.0\r\nUser-Agent: devpod-provider-dokploy doctor\r\n\r\n");
    my ($reply, $sel, $deadline) = ('', IO::Select->new($s), time + 10);
    while (length($reply) < 4096 && $sel->can_read(1 + $deadline - time)) {
      sysread($s, my $buf, 4096) or last;
      $reply .= $buf;
      last if time > $deadline;
    }
    close $s;
    if ($reply =~ /^HTTP\/1\.1 502 .*?\r\n\r\n(devpod preview: [^\n]*)/s) { print "$port devpod $1\n" }
    elsif ($reply =~ /^HTTP\/\d(?:\.\d)? (\d{3})/) { print "$port http $1\n" }
    else { print "$port silent\n" }
  }
}

if ($role eq 'forwarder') { forwarder() }
elsif ($role eq 'machine') { machine() }
elsif ($role eq 'probe') { probe() }
else { die "[devpod-preview] usage: perl preview_relay.pl forwarder|machine|probe …\n" }
