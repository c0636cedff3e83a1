#!/bin/sh
# Starts coturn with infra/coturn/turnserver.conf: fills in the realm, the TURN REST secret and the TLS
# paths, writes the result (mode 0600, it holds the secret) to the runtime dir, then
#   exec turnserver -c <rendered conf> "$@"
# Extra arguments go to turnserver and apply on top of the conf (e.g. --external-ip=..., --listening-ip=...,
# --relay-ip=..., and in tests --allowed-peer-ip=<lab range>).
# Used by docker-compose.yml (entrypoint), coturn.service (ExecStart) and the project's tests.
#
# Environment:
#   TURN_SECRET_FILE    file holding the shared secret (preferred: docker secret /run/secrets/turn_secret,
#                       systemd LoadCredential $CREDENTIALS_DIRECTORY/turn_secret)
#   TURN_SECRET         the secret itself (when no file; avoid: environments show in docker inspect etc.)
#                       At least 16 characters of A-Za-z0-9+/=_- (e.g. `openssl rand -base64 32`).
#   TURN_REALM          required; the TURN realm, e.g. turn.example.com
#   TURN_TLS_CERT       default /etc/coturn/tls/fullchain.pem  } either missing/unreadable → no TLS listener
#   TURN_TLS_KEY        default /etc/coturn/tls/privkey.pem    } (warning, not an error)
#   TURN_CONF_TEMPLATE  default: turnserver.conf next to this script
#   TURN_RUNTIME_DIR    where the rendered conf goes; default $RUNTIME_DIRECTORY, else /run/coturn
#   TURNSERVER_BIN      default turnserver
#   TURNADMIN_BIN       default turnadmin (creates the user DB schema before start)
# Exit 2 on a configuration error (message on stderr). Never prints the secret.
set -eu
# Byte-wise character classes in the checks below, whatever the caller's locale.
LC_ALL=C
export LC_ALL

prog=run-coturn
die() {
  printf '%s: error: %s\n' "$prog" "$*" >&2
  exit 2
}
warn() {
  printf '%s: warning: %s\n' "$prog" "$*" >&2
}

# --- secret ----------------------------------------------------------------------------------------
secret=
if [ -n "${TURN_SECRET_FILE:-}" ]; then
  if [ ! -f "$TURN_SECRET_FILE" ] || [ ! -r "$TURN_SECRET_FILE" ]; then
    die "TURN_SECRET_FILE=$TURN_SECRET_FILE is missing or not readable by uid $(id -u)"
  fi
  # $(...) strips trailing newlines; a CRLF file would leave \r, which the character check rejects.
  secret=$(cat -- "$TURN_SECRET_FILE")
elif [ -n "${TURN_SECRET:-}" ]; then
  secret=$TURN_SECRET
else
  die "no TURN secret: set TURN_SECRET_FILE (preferred) or TURN_SECRET"
fi
# Keep it out of the environment of turnserver (it reads the secret from the rendered conf).
unset TURN_SECRET 2>/dev/null || true

case $secret in
  *[!A-Za-z0-9+/=_-]*) die "the TURN secret contains characters other than A-Za-z0-9+/=_- (use: openssl rand -base64 32)" ;;
esac
[ "${#secret}" -ge 16 ] || die "the TURN secret is shorter than 16 characters (use: openssl rand -base64 32)"

# --- realm -----------------------------------------------------------------------------------------
realm=${TURN_REALM:-}
[ -n "$realm" ] || die "TURN_REALM is not set (e.g. TURN_REALM=turn.example.com)"
case $realm in
  *[!A-Za-z0-9.-]* | .* | -*) die "TURN_REALM=$realm is not a host name (letters, digits, '.', '-')" ;;
esac
[ "${#realm}" -le 253 ] || die "TURN_REALM is longer than 253 characters"

# --- template --------------------------------------------------------------------------------------
script_dir=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
template=${TURN_CONF_TEMPLATE:-$script_dir/turnserver.conf}
[ -r "$template" ] || die "config template $template not found"

# --- TLS -------------------------------------------------------------------------------------------
cert=${TURN_TLS_CERT:-/etc/coturn/tls/fullchain.pem}
key=${TURN_TLS_KEY:-/etc/coturn/tls/privkey.pem}
for path in "$cert" "$key"; do
  case $path in
    *[!A-Za-z0-9._/@+-]*) die "TLS path '$path' contains unsupported characters" ;;
  esac
done
tls=yes
if [ ! -r "$cert" ] || [ ! -r "$key" ]; then
  warn "TLS certificate ($cert) or key ($key) missing or unreadable: starting WITHOUT the TLS listener (turns: on 5349 unavailable)"
  tls=no
fi

# --- render the conf into the runtime dir ---------------------------------------------------------
runtime_dir=${TURN_RUNTIME_DIR:-${RUNTIME_DIRECTORY:-/run/coturn}}
# systemd may pass several runtime dirs separated by ':'; use the first.
runtime_dir=${runtime_dir%%:*}
case $runtime_dir in
  /*) ;;
  *) die "runtime dir '$runtime_dir' must be an absolute path" ;;
esac
case $runtime_dir in
  *[!A-Za-z0-9._/@+-]*) die "runtime dir '$runtime_dir' contains unsupported characters" ;;
esac

umask 077
mkdir -p -- "$runtime_dir" || die "cannot create runtime dir $runtime_dir"
conf=$runtime_dir/turnserver.conf
tmp=$conf.tmp.$$
# awk gets the values through its environment, not argv: a command line is world-readable in
# /proc/<pid>/cmdline, the environment is not. The character checks above keep gsub()'s special
# characters (& and \) out of the values, so the substitution is literal.
if ! {
  RC_SECRET=$secret RC_REALM=$realm RC_CERT=$cert RC_KEY=$key awk '{
    gsub(/@TURN_SECRET@/, ENVIRON["RC_SECRET"])
    gsub(/@TURN_REALM@/, ENVIRON["RC_REALM"])
    gsub(/@TURN_TLS_CERT@/, ENVIRON["RC_CERT"])
    gsub(/@TURN_TLS_KEY@/, ENVIRON["RC_KEY"])
    print
  }' "$template" &&
    printf '\n# Added by run-coturn.sh: state in the runtime dir, so a read-only root file system works.\n' &&
    printf '# (coturn always opens an SQLite user DB; with the REST secret it stays empty.)\n' &&
    printf 'pidfile=%s\nuserdb=%s\n' "$runtime_dir/turnserver.pid" "$runtime_dir/turndb"
} >"$tmp"; then
  rm -f -- "$tmp"
  die "cannot write $conf"
fi
chmod 600 -- "$tmp"
mv -f -- "$tmp" "$conf"
secret=

if grep -q '@TURN_[A-Z_]*@' "$conf"; then
  die "unreplaced @TURN_…@ placeholder in $conf (template and script out of sync)"
fi

# --- user DB ---------------------------------------------------------------------------------------
# coturn opens an SQLite user DB even with the REST secret, and its auth threads race to create the
# schema on the first request after start: one gets "database is locked" and that client is refused
# (seen in this project's NAT lab). Creating the schema first with turnadmin removes the race.
db=$runtime_dir/turndb
if [ ! -s "$db" ] && command -v "${TURNADMIN_BIN:-turnadmin}" >/dev/null 2>&1; then
  "${TURNADMIN_BIN:-turnadmin}" -l -b "$db" >/dev/null 2>&1 &
  admin_pid=$!
  wait "$admin_pid" || warn "could not initialise $db with turnadmin; the first request after start may be refused"
  # turnadmin has no log option and leaves turn_<pid>_<date>.log in the first writable of these.
  rm -f /var/log/turn_"$admin_pid"_*.log /var/tmp/turn_"$admin_pid"_*.log /tmp/turn_"$admin_pid"_*.log 2>/dev/null || true
fi

# --- start -----------------------------------------------------------------------------------------
if [ "$tls" = no ]; then
  set -- "$@" --no-tls --no-dtls
fi
bin=${TURNSERVER_BIN:-turnserver}
printf '%s: starting %s -c %s (realm %s, TLS %s)\n' "$prog" "$bin" "$conf" "$realm" "$tls" >&2
exec "$bin" -c "$conf" "$@"
