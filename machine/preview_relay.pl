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
#
# A target that does not answer gets a plain HTTP 502 saying why, so a stopped machine's
# URL shows an error page, never anything else.
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
  my ($host, $port) = @_;
  return IO::Socket::INET->new(
    PeerAddr => $host, PeerPort => $port, Proto => 'tcp', Timeout => 10,
  );
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
    my $up = connect_to($machine, $relay_port);
    if (!$up) {
      http_error($client, "devpod preview: the machine is not running (devpod up <workspace> starts it)");
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

# Whether the peer is the machine's own forwarder: its container name (unique on the
# engine) resolves, on the networks the machine shares with it, to the peer's address.
# Nothing else that shares a network with the machine (another machine on the image
# cache's network, say) reaches the devcontainer through the relay.
sub from_forwarder {
  my ($sock, $forwarder) = @_;
  my $peer = $sock->peerhost // return 0;
  my (undef, undef, undef, undef, @addrs) = gethostbyname($forwarder);
  return scalar grep { length($_) == 4 && inet_ntoa($_) eq $peer } @addrs;
}

sub machine {
  my $relay_port = shift @ARGV || die "[devpod-preview] usage: machine <relay port> <forwarder>\n";
  my $forwarder = shift @ARGV || die "[devpod-preview] usage: machine <relay port> <forwarder>\n";
  my $l = listener($relay_port);
  drop_privileges();
  note("relay on port $relay_port: previewed ports reach the devcontainer");
  accept_loop(sub {
    my ($client) = @_;
    return note('refused ' . ($client->peerhost // '?') . ": not $forwarder")
      unless from_forwarder($client, $forwarder);
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

if ($role eq 'forwarder') { forwarder() }
elsif ($role eq 'machine') { machine() }
else { die "[devpod-preview] usage: perl preview_relay.pl forwarder|machine …\n" }
