#!/usr/bin/env bash
# Local infrastructure for Sous without Docker: one Apache Kafka broker
# (KRaft, combined broker+controller) and one PostgreSQL server, both bound to
# 127.0.0.1 on free ports, with all state under one run folder.
#
#   infra.sh up [--secure]  start whatever is not running, wait until ready,
#                           print the env lines (the ONLY output on stdout);
#                           --secure: Kafka with SASL/SCRAM and ACLs (see below)
#   infra.sh down [--purge] stop both (data kept unless --purge)
#   infra.sh status         show state and ports; exit 0 if both run, else 3
#   infra.sh env            print the env lines if both run, else exit 3
#
# Run folder: ${SOUS_RUN_DIR:-<repo root>/.run}/local
# Progress and errors go to stderr so that `eval "$(infra.sh up)"` works.
set -euo pipefail
shopt -s inherit_errexit 2>/dev/null || true   # let set -e reach into $(...)

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
POM="$SCRIPT_DIR/pom.xml"

RUN_BASE="${SOUS_RUN_DIR:-$REPO_ROOT/.run}"
[[ "$RUN_BASE" == /* ]] || RUN_BASE="$PWD/$RUN_BASE"   # servers run elsewhere: absolute paths only
RUN_DIR="$RUN_BASE/local"
ENV_FILE="$RUN_DIR/env"
PORTS_FILE="$RUN_DIR/ports"

KAFKA_DIR="$RUN_DIR/kafka"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_LOGS="$KAFKA_DIR/logs"
KAFKA_PROPS="$KAFKA_DIR/server.properties"
KAFKA_LOG4J="$KAFKA_DIR/log4j2.properties"
KAFKA_PID="$KAFKA_DIR/kafka.pid"
KAFKA_OUT="$KAFKA_DIR/kafka.out"          # JVM stdout/stderr (crashes, JVM warnings)
KAFKA_LOG="$KAFKA_LOGS/server.log"        # broker log written by log4j2
KAFKA_CLUSTER_ID_FILE="$KAFKA_DIR/cluster.id"
KAFKA_SECURITY_FILE="$KAFKA_DIR/security"  # present once storage is formatted with SASL/SCRAM
KAFKA_USERS="$KAFKA_DIR/users"            # <principal>.env per SASL user, mode 0600
KAFKA_ADMIN="sous-admin"                  # super user; same name as sous/kafka_access.py ADMIN
KAFKA_SECURE=0                            # set by kafka_choose_security
KAFKA_HEAP_OPTS="${SOUS_KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}"

# PG_DIR may be redirected by pg_prepare_dir (see there); everything else in
# the Postgres section derives from it.
PG_DIR="$RUN_DIR/postgres"
PG_USER_OS="postgres"        # OS account used to run Postgres when we are root
PG_SUPERUSER="postgres"      # bootstrap superuser created by initdb
DB_USER="sous"
DB_NAME="sous"

READY_TIMEOUT="${SOUS_INFRA_TIMEOUT:-90}"   # seconds, per service
STOP_TIMEOUT=30

log() { printf 'infra: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------
# Small python3 helpers (bash has no portable way to bind a socket).
# ---------------------------------------------------------------------------

# free_ports N -> N distinct free TCP ports on 127.0.0.1, one per line.
# All sockets are held open until every port is chosen so they are distinct.
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
    s.close()
PY
}

# port_is_free PORT -> exit 0 if a server could listen on 127.0.0.1:PORT.
# SO_REUSEADDR mirrors what Kafka and Postgres do, so a port that only has
# TIME_WAIT leftovers from our previous run still counts as free.
port_is_free() {
  python3 - "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
    s.listen(1)
except OSError:
    sys.exit(1)
finally:
    s.close()
PY
}

# kafka_probe PORT -> exit 0 if a Kafka broker on 127.0.0.1:PORT answers an
# ApiVersions request (proves the request path works, not just the listener).
kafka_probe() {
  python3 - "$1" <<'PY'
import socket, struct, sys
client_id = b"sous-infra"
# Request header v1 (api_key=18 ApiVersions, version 0, correlation id, client id), empty v0 body.
body = struct.pack(">hhih", 18, 0, 4242, len(client_id)) + client_id
try:
    with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        buf = b""
        while len(buf) < 10:
            chunk = s.recv(4096)
            if not chunk:
                sys.exit(1)
            buf += chunk
except OSError:
    sys.exit(1)
_size, corr, err = struct.unpack(">iih", buf[:10])
# 0 = OK, 35 = UNSUPPORTED_VERSION: either way the broker is serving requests.
sys.exit(0 if corr == 4242 and err in (0, 35) else 1)
PY
}

# kafka_cluster_id -> a random Kafka cluster id (base64url of 16 random bytes,
# what `kafka-storage random-uuid` prints), without spending a JVM start on it.
kafka_cluster_id() {
  python3 - <<'PY'
import base64, uuid
while True:
    cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not cid.startswith("-"):   # Kafka avoids ids that look like CLI flags
        print(cid)
        break
PY
}

sha256_of() {
  if command -v sha256sum >/dev/null; then sha256sum "$1" | cut -c1-16
  else shasum -a 256 "$1" | cut -c1-16; fi
}

# pid_alive PID -> exit 0 if PID runs. A zombie (exited, not yet reaped by
# its parent) counts as gone: it holds no ports or files any more.
pid_alive() {
  [[ "$1" =~ ^[0-9]+$ ]] && kill -0 "$1" 2>/dev/null || return 1
  local state=""
  if [[ -r "/proc/$1/stat" ]]; then
    # /proc/PID/stat is "pid (comm) state ..."; comm may contain spaces.
    state="$(cat "/proc/$1/stat" 2>/dev/null || true)"
    state="${state##*) }"
  else
    state="$(ps -o stat= -p "$1" 2>/dev/null || true)"
  fi
  [[ "$state" != Z* ]]
}

# process_cmdline PID -> the command line of a process, or nothing.
process_cmdline() {
  if [[ -r "/proc/$1/cmdline" ]]; then tr '\0' ' ' <"/proc/$1/cmdline"
  else ps -p "$1" -o args= 2>/dev/null || true; fi
}

# ---------------------------------------------------------------------------
# Ports: remembered in $PORTS_FILE so a restart after `down` reuses them.
# ---------------------------------------------------------------------------
KAFKA_PORT="" KAFKA_CONTROLLER_PORT="" PG_PORT=""

load_ports() {
  if [[ -f "$PORTS_FILE" ]]; then
    # shellcheck disable=SC1090
    source "$PORTS_FILE"
  fi
}

save_ports() {
  cat >"$PORTS_FILE.tmp" <<EOF
KAFKA_PORT=$KAFKA_PORT
KAFKA_CONTROLLER_PORT=$KAFKA_CONTROLLER_PORT
PG_PORT=$PG_PORT
EOF
  mv "$PORTS_FILE.tmp" "$PORTS_FILE"
}

# choose_ports: keep ports of services that are running; for the others keep
# the remembered port if it is still free, otherwise take a new free one.
choose_ports() {
  local kafka_up=$1 pg_up=$2 var port taken=" "
  local -a fresh
  mapfile -t fresh < <(free_ports 3)
  for var in KAFKA_PORT KAFKA_CONTROLLER_PORT PG_PORT; do
    port="${!var}"
    if [[ $var == KAFKA_* && $kafka_up == 1 ]] || [[ $var == PG_PORT && $pg_up == 1 ]]; then
      : # running: its port is in use by itself
    elif [[ -z "$port" || "$taken" == *" $port "* ]] || ! port_is_free "$port"; then
      [[ -n "$port" ]] && log "port $port (${var}) is busy, picking another"
      port="${fresh[0]}"; fresh=("${fresh[@]:1}")
    fi
    printf -v "$var" '%s' "$port"
    taken+="$port "
  done
  save_ports
}

write_env() {
  # A secured broker's env carries the super user's password: readable by us only.
  if [[ $KAFKA_SECURE == 1 ]]; then (umask 077 && : >"$ENV_FILE.tmp"); fi
  cat >"$ENV_FILE.tmp" <<EOF
SOUS_KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT
SOUS_DATABASE_URL=postgresql://$DB_USER@127.0.0.1:$PG_PORT/$DB_NAME
EOF
  if [[ $KAFKA_SECURE == 1 ]]; then kafka_security_env >>"$ENV_FILE.tmp"; fi
  mv "$ENV_FILE.tmp" "$ENV_FILE"
}

# ---------------------------------------------------------------------------
# Kafka
# ---------------------------------------------------------------------------

# kafka_pid -> pid of our broker if it is alive, else nothing (and a stale
# pid file is removed). The command line must mention our server.properties
# so a recycled pid or another broker on the machine is never mistaken for it.
kafka_pid() {
  local pid
  [[ -f "$KAFKA_PID" ]] || return 0
  pid="$(<"$KAFKA_PID")"
  if pid_alive "$pid" && [[ "$(process_cmdline "$pid")" == *"kafka.Kafka $KAFKA_PROPS"* ]]; then
    echo "$pid"
  else
    rm -f "$KAFKA_PID"
  fi
}

# kafka_classpath -> the broker classpath, resolved by Maven once per pom.xml
# version and cached in the run folder (the jars themselves live in ~/.m2).
kafka_classpath() {
  local cp_file="$KAFKA_DIR/classpath-$(sha256_of "$POM").txt" cp jar ok=1 mvn_log="$KAFKA_DIR/mvn.log"
  if [[ -s "$cp_file" ]]; then
    cp="$(<"$cp_file")"
    # ~/.m2 may have been cleaned since: every jar must still exist.
    local -a jars
    IFS=':' read -ra jars <<<"$cp"
    for jar in "${jars[@]}"; do [[ -f "$jar" ]] || { ok=0; break; }; done
    if [[ $ok == 1 ]]; then echo "$cp"; return; fi
  fi
  command -v mvn >/dev/null || die "mvn not found (needed once to resolve the Kafka jars)"
  log "resolving Kafka classpath with Maven"
  rm -f "$KAFKA_DIR"/classpath-*.txt
  local args=(-B -q -f "$POM" dependency:build-classpath
              -Dmdep.includeScope=runtime "-Dmdep.outputFile=$cp_file.tmp")
  # Offline first: no network round trips when ~/.m2 already has everything.
  if ! mvn -o "${args[@]}" >"$mvn_log" 2>&1; then
    mvn "${args[@]}" >"$mvn_log" 2>&1 || { tail -n 50 "$mvn_log" >&2; die "maven could not resolve $POM"; }
  fi
  mv "$cp_file.tmp" "$cp_file"
  cat "$cp_file"
}

kafka_write_config() {
  local listeners
  if [[ $KAFKA_SECURE == 1 ]]; then
    listeners="$(kafka_secure_listeners)"
    (umask 077 && : >>"$KAFKA_PROPS")   # the file holds passwords
  else
    listeners="$(kafka_plain_listeners)"
  fi
  cat >"$KAFKA_PROPS" <<EOF
# Generated by deploy/local/infra.sh on every start; edits are overwritten.
# Single node in KRaft combined mode: this process is broker and controller.
process.roles=broker,controller
node.id=1
# Static one-voter quorum: the voter comes from this file on every start, so
# the controller port may change between runs without touching the log.
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
$listeners

log.dirs=$KAFKA_DATA

# One broker: internal topics cannot have more than one replica.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
default.replication.factor=1
min.insync.replicas=1

# Test-friendly behaviour: no rebalance grace period, topics are created
# explicitly by the application, small default partition count.
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
num.partitions=3
# Fewer coordinator partitions than the default 50: the first consumer group
# and the first transactional producer become ready faster on a fresh broker.
offsets.topic.num.partitions=10
transaction.state.log.num.partitions=10
EOF

  cat >"$KAFKA_LOG4J" <<EOF
# Generated by deploy/local/infra.sh. Everything goes to one file; infra.sh
# moves it to server.log.1 before each start, log4j2 rolls it when large.
status = warn
name = sous-local-kafka

appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = $KAFKA_LOG
appender.file.filePattern = $KAFKA_LOG.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 50MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.fileIndex = min
appender.file.strategy.max = 3

rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE

# Per-request and state-change chatter is too noisy for a test broker.
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
EOF
}

kafka_plain_listeners() {
  cat <<EOF
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
EOF
}

kafka_start() {
  local cp cluster_id scram_args
  local -a scram=()
  mkdir -p "$KAFKA_DATA" "$KAFKA_LOGS"
  cp="$(kafka_classpath)"
  if [[ $KAFKA_SECURE == 1 ]]; then
    scram_args="$(kafka_scram_format_args)"   # also writes the passwords the config needs
    mapfile -t scram <<<"$scram_args"
  fi
  kafka_write_config

  # Format the log dir only once; later starts reuse it (and its topics).
  if [[ ! -f "$KAFKA_DATA/meta.properties" ]]; then
    [[ -s "$KAFKA_CLUSTER_ID_FILE" ]] || kafka_cluster_id >"$KAFKA_CLUSTER_ID_FILE"
    cluster_id="$(<"$KAFKA_CLUSTER_ID_FILE")"
    log "formatting Kafka storage (cluster id $cluster_id)"
    java -cp "$cp" kafka.tools.StorageTool format --config "$KAFKA_PROPS" --cluster-id "$cluster_id" \
      "${scram[@]}" >"$KAFKA_DIR/format.log" 2>&1 \
      || { cat "$KAFKA_DIR/format.log" >&2; die "kafka storage format failed"; }
    if [[ $KAFKA_SECURE == 1 ]]; then echo "SASL_PLAINTEXT SCRAM-SHA-512" >"$KAFKA_SECURITY_FILE"; fi
  fi

  # Fresh log per start: the readiness check greps it, and a failed start
  # must not show the previous run's lines.
  local i
  for i in 2 1; do
    if [[ -f "$KAFKA_LOG.$i" ]]; then mv -f "$KAFKA_LOG.$i" "$KAFKA_LOG.$((i + 1))"; fi
  done
  if [[ -f "$KAFKA_LOG" ]]; then mv -f "$KAFKA_LOG" "$KAFKA_LOG.1"; fi

  log "starting Kafka on 127.0.0.1:$KAFKA_PORT (controller $KAFKA_CONTROLLER_PORT)"
  # Every partition holds several open files, and a test suite makes thousands of
  # partitions: lift the soft limit to the hard one (as high as this user may go).
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  # setsid + nohup: the broker outlives this script and is not killed by a
  # Ctrl-C aimed at whatever called us. All output goes to files, never to our
  # stdout, so callers capturing stdout do not wait for the broker to exit;
  # 9>&- keeps the broker from inheriting (and so holding) our lock.
  # shellcheck disable=SC2086
  setsid nohup java $KAFKA_HEAP_OPTS \
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_LOG4J" \
    -Dkafka.logs.dir="$KAFKA_LOGS" \
    -cp "$cp" kafka.Kafka "$KAFKA_PROPS" \
    </dev/null >"$KAFKA_OUT" 2>&1 9>&- &
  echo $! >"$KAFKA_PID"
}

# kafka_wait -> wait until the broker logged its start and answers requests.
kafka_wait() {
  local deadline=$((SECONDS + READY_TIMEOUT))
  while :; do
    if [[ -z "$(kafka_pid)" ]]; then
      kafka_fail "Kafka exited during startup"
    fi
    if grep -qs "Kafka Server started" "$KAFKA_LOG" && kafka_probe "$KAFKA_PORT"; then
      return 0
    fi
    ((SECONDS < deadline)) || kafka_fail "Kafka not ready after ${READY_TIMEOUT}s"
    sleep 0.3
  done
}

kafka_fail() {
  log "$1; last lines of $KAFKA_LOG and $KAFKA_OUT:"
  tail -n 50 "$KAFKA_LOG" >&2 2>/dev/null || true
  tail -n 20 "$KAFKA_OUT" >&2 2>/dev/null || true
  kafka_stop
  exit 1
}

kafka_stop() {
  local pid deadline
  pid="$(kafka_pid)"
  if [[ -z "$pid" ]]; then rm -f "$KAFKA_PID"; return 0; fi
  log "stopping Kafka (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + STOP_TIMEOUT))
  while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
  if pid_alive "$pid"; then
    log "Kafka did not stop within ${STOP_TIMEOUT}s, killing it"
    kill -KILL "$pid" 2>/dev/null || true
    while pid_alive "$pid"; do sleep 0.1; done
  fi
  rm -f "$KAFKA_PID"
}

# ---------------------------------------------------------------------------
# Kafka security (`up --secure`): a SASL_PLAINTEXT listener with SCRAM-SHA-512
# for clients, the KRaft StandardAuthorizer, and ACLs from the model in
# sous/kafka_access.py, applied by sous/kafka_security.py. A run folder keeps
# the choice made when its storage was formatted ($KAFKA_SECURITY_FILE).
# ---------------------------------------------------------------------------

# kafka_choose_security WANT -> set KAFKA_SECURE (WANT=1: `up --secure`).
kafka_choose_security() {
  if [[ -f "$KAFKA_SECURITY_FILE" ]]; then
    KAFKA_SECURE=1
  elif [[ $1 == 1 ]]; then
    if [[ -f "$KAFKA_DATA/meta.properties" ]]; then
      die "Kafka in $RUN_DIR was formatted without SASL; 'infra.sh down --purge' it or set SOUS_RUN_DIR"
    fi
    KAFKA_SECURE=1
  fi
}

# kafka_security_py ARGS... -> python -m sous.kafka_security ARGS, with the
# workspace's interpreter: the ACL model is built from the topic catalog.
kafka_security_py() {
  local py="${SOUS_PYTHON:-$REPO_ROOT/.venv/bin/python}"
  [[ -x "$py" ]] || die "up --secure needs the workspace installed ('make sync') or SOUS_PYTHON"
  "$py" -m sous.kafka_security "$@"
}

# kafka_scram_format_args -> ensure every principal has a password in
# $KAFKA_USERS and print the StorageTool arguments that store them.
kafka_scram_format_args() {
  local value values
  values="$(kafka_security_py credentials "$KAFKA_USERS")"
  while IFS= read -r value; do printf -- '--add-scram\n%s\n' "$value"; done <<<"$values"
}

kafka_password() { sed -n 's/^SOUS_KAFKA_SASL_PASSWORD=//p' "$KAFKA_USERS/$1.env"; }

# kafka_secure_listeners -> the server.properties lines of a secured broker.
# Clients and the broker itself use SCRAM. The controller listener uses PLAIN
# with a user written here: it must authenticate without the metadata log,
# which is where SCRAM credentials live and what the controller serves.
kafka_secure_listeners() {
  local pw
  pw="$(kafka_password "$KAFKA_ADMIN")"
  [[ -n "$pw" ]] || die "no password for $KAFKA_ADMIN in $KAFKA_USERS"
  cat <<EOF
listeners=SASL_PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=SASL_PLAINTEXT://127.0.0.1:$KAFKA_PORT
inter.broker.listener.name=SASL_PLAINTEXT
listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$KAFKA_ADMIN" password="$pw";
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="$KAFKA_ADMIN" password="$pw" user_$KAFKA_ADMIN="$pw";
# Only what sous/kafka_access.py grants; the super user (the broker itself,
# topic and ACL administration) needs no ACLs.
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:$KAFKA_ADMIN
allow.everyone.if.no.acl.found=false
EOF
}

# kafka_security_env -> the env lines a client of the secured broker needs
# (as the super user), and where every principal's own lines are.
kafka_security_env() {
  cat "$KAFKA_USERS/$KAFKA_ADMIN.env"
  echo "SOUS_LOCAL_KAFKA_USERS=$KAFKA_USERS"
}

# kafka_apply_acls -> make the broker's ACLs equal the model (idempotent).
kafka_apply_acls() {
  log "applying Kafka ACLs"
  (
    set -a
    # shellcheck disable=SC1090
    source "$KAFKA_USERS/$KAFKA_ADMIN.env"
    SOUS_KAFKA_BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
    kafka_security_py apply-acls >&2
  ) || kafka_fail "applying Kafka ACLs failed"
}

# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------
PG_BINDIR=""

pg_find_bindir() {
  local d
  if [[ -n "${SOUS_PG_BINDIR:-}" ]]; then echo "$SOUS_PG_BINDIR"; return; fi
  if command -v pg_config >/dev/null; then
    d="$(pg_config --bindir 2>/dev/null || true)"
    if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then echo "$d"; return; fi
  fi
  # Debian/Ubuntu keep server binaries off PATH, one folder per major version.
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [[ -n "$d" && -x "$d/initdb" ]]; then echo "$d"; return; fi
  if command -v initdb >/dev/null; then
    d="$(dirname "$(readlink -f "$(command -v initdb)")")"
    if [[ -x "$d/pg_ctl" ]]; then echo "$d"; return; fi
  fi
}

pg_ensure_binaries() {
  [[ -n "$PG_BINDIR" ]] && return 0
  PG_BINDIR="$(pg_find_bindir)"
  if [[ -z "$PG_BINDIR" ]]; then
    if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
      log "PostgreSQL server not found, installing it with apt-get"
      # Only the binaries are used; Debian's own cluster is not touched.
      { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; } >&2 \
        || die "apt-get install postgresql failed"
      PG_BINDIR="$(pg_find_bindir)"
    fi
  fi
  [[ -n "$PG_BINDIR" ]] || die "PostgreSQL server binaries not found (set SOUS_PG_BINDIR)"
}

# as_pg CMD... -> run CMD as the account that owns the Postgres data.
# Postgres refuses to run as root, so root delegates to the postgres account.
as_pg() {
  if [[ $EUID -eq 0 ]]; then runuser -u "$PG_USER_OS" -- "$@"; else "$@"; fi
}

# pg_prepare_dir: create the Postgres folder, owned by the account that runs
# the server. When root runs us from a folder the postgres account cannot
# reach (say, a clone inside a home folder of mode 0700), the Postgres files go to a
# folder under /tmp instead and $RUN_DIR/postgres becomes a link to it.
pg_prepare_dir() {
  [[ $EUID -eq 0 ]] || { mkdir -p "$PG_DIR"; return; }
  if ! id "$PG_USER_OS" >/dev/null 2>&1; then
    log "creating system user $PG_USER_OS"
    useradd --system --user-group --no-create-home --shell /usr/sbin/nologin "$PG_USER_OS" >&2
  fi
  # A link into /tmp (see below) whose target vanished, e.g. after a reboot.
  if [[ -L "$PG_DIR" && ! -e "$PG_DIR" ]]; then rm -f "$PG_DIR"; fi
  if [[ ! -e "$PG_DIR" ]]; then
    mkdir -p "$PG_DIR"
    chown "$PG_USER_OS:" "$PG_DIR"
    chmod 0700 "$PG_DIR"
  fi
  if ! runuser -u "$PG_USER_OS" -- test -w "$PG_DIR/." 2>/dev/null; then
    local alt
    alt="${TMPDIR:-/tmp}/sous-local-pg-$(printf '%s' "$RUN_DIR" | cksum | cut -d' ' -f1)"
    [[ -L "$PG_DIR" ]] || log "$PG_USER_OS cannot reach $PG_DIR; keeping Postgres files in $alt"
    mkdir -p "$alt"
    chown "$PG_USER_OS:" "$alt"
    chmod 0700 "$alt"
    [[ -L "$PG_DIR" ]] || rmdir "$PG_DIR" 2>/dev/null || true
    [[ -L "$PG_DIR" ]] || ln -s "$alt" "$PG_DIR"
    PG_DIR="$alt"
  fi
}

# pg_resolve_dir: follow the /tmp link set up by pg_prepare_dir, if any.
pg_resolve_dir() {
  if [[ -L "$PG_DIR" ]]; then PG_DIR="$(readlink "$PG_DIR")"; fi
  PG_DATA="$PG_DIR/data"
  PG_LOG="$PG_DIR/postgres.log"
}

# pg_pid -> pid of our postmaster if it is alive (postmaster.pid is the pid
# file Postgres itself keeps in the data folder).
pg_pid() {
  local pid
  [[ -f "$PG_DATA/postmaster.pid" ]] || return 0
  pid="$(head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null || true)"
  if pid_alive "$pid" && [[ "$(process_cmdline "$pid")" == *postgres* ]]; then
    echo "$pid"
  fi
}

# pg_clear_stale_locks: Postgres removes its own stale lock files when their
# pid is gone (and then checks that no old backend still uses the shared
# memory, so those files are never deleted blindly here). It refuses to start
# in two cases that we can fix: the old postmaster is a zombie not yet reaped
# (wait for it), or its pid was recycled by an unrelated process (remove).
pg_clear_stale_locks() {
  local f pid waited
  for f in "$PG_DATA/postmaster.pid" "$PG_DIR/.s.PGSQL.$PG_PORT.lock"; do
    [[ -f "$f" ]] || continue
    pid="$(head -n 1 "$f" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || continue
    waited=0
    while kill -0 "$pid" 2>/dev/null && ! pid_alive "$pid" && ((waited < 100)); do
      sleep 0.1; waited=$((waited + 1))
    done
    if pid_alive "$pid" && [[ "$(process_cmdline "$pid")" != *postgres* ]]; then
      log "removing stale $(basename "$f") (pid $pid is not Postgres)"
      rm -f "$f"
    fi
  done
}

pg_init() {
  log "initializing PostgreSQL data folder"
  as_pg "$PG_BINDIR/initdb" --pgdata="$PG_DATA" --username="$PG_SUPERUSER" \
    --auth=trust --encoding=UTF8 --locale=C >"$PG_DIR/initdb.log" 2>&1 \
    || { cat "$PG_DIR/initdb.log" >&2; die "initdb failed"; }
  # Trust, but only over the private socket folder and 127.0.0.1.
  as_pg tee "$PG_DATA/pg_hba.conf" >/dev/null <<'EOF'
# Local development/test server: no passwords, loopback only.
local all all              trust
host  all all 127.0.0.1/32 trust
EOF
  # Settings that change between runs (port) live in an included file that
  # is rewritten on every start.
  printf "\ninclude_if_exists = 'sous_local.conf'\n" | as_pg tee -a "$PG_DATA/postgresql.conf" >/dev/null
}

pg_start() {
  local socket_dir="$PG_DIR"
  # A Unix socket path is limited to ~107 bytes; deep checkouts fall back to TCP only.
  ((${#socket_dir} + 20 < 107)) || socket_dir=""
  if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then pg_init; fi
  as_pg tee "$PG_DATA/sous_local.conf" >/dev/null <<EOF
# Generated by deploy/local/infra.sh on every start; edits are overwritten.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$socket_dir'
unix_socket_permissions = 0700
max_connections = 200
shared_buffers = 128MB
EOF
  pg_clear_stale_locks
  log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
  # -w -t: pg_ctl waits for readiness with our deadline and returns early if
  # the server dies. Kafka, started before, boots meanwhile.
  # 9>&-: the server must not inherit (and so keep holding) our lock.
  as_pg "$PG_BINDIR/pg_ctl" start -w -t "$READY_TIMEOUT" -D "$PG_DATA" -l "$PG_LOG" \
    </dev/null >&2 9>&- || pg_fail "PostgreSQL did not start"
}

# pg_wait -> the server accepts connections over TCP (what clients use).
pg_wait() {
  local deadline=$((SECONDS + READY_TIMEOUT))
  until "$PG_BINDIR/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -d postgres -U "$PG_SUPERUSER"; do
    [[ -n "$(pg_pid)" ]] || pg_fail "PostgreSQL exited during startup"
    ((SECONDS < deadline)) || pg_fail "PostgreSQL not ready after ${READY_TIMEOUT}s"
    sleep 0.2
  done
}

pg_fail() {
  log "$1; last lines of $PG_LOG:"
  tail -n 50 "$PG_LOG" >&2 2>/dev/null || true
  pg_stop
  exit 1
}

psql_admin() {
  "$PG_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 \
    -h 127.0.0.1 -p "$PG_PORT" -U "$PG_SUPERUSER" -d postgres "$@"
}

# pg_bootstrap: role and database for the application (idempotent).
pg_bootstrap() {
  if [[ -z "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$DB_USER'")" ]]; then
    psql_admin -c "CREATE ROLE $DB_USER LOGIN SUPERUSER" >&2
  fi
  if [[ -z "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" ]]; then
    log "creating database $DB_NAME"
    psql_admin -c "CREATE DATABASE $DB_NAME OWNER $DB_USER" >&2
  fi
}

pg_stop() {
  [[ -n "$(pg_pid)" ]] || return 0
  log "stopping PostgreSQL"
  as_pg "$PG_BINDIR/pg_ctl" stop -D "$PG_DATA" -m fast -w -t 60 </dev/null >&2 \
    || as_pg "$PG_BINDIR/pg_ctl" stop -D "$PG_DATA" -m immediate -w </dev/null >&2 \
    || true
}

# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------

# Serialize up/down: two `make test` runs starting at once must not both
# initdb or format the same folders.
take_lock() {
  command -v flock >/dev/null || return 0
  exec 9>"$RUN_DIR/.lock"
  flock -w 300 9 || die "another infra.sh is still running (lock $RUN_DIR/.lock)"
}

make_run_dir() {
  if [[ ! -d "$RUN_BASE" ]]; then
    mkdir -p "$RUN_BASE"
    chmod 0755 "$RUN_BASE"
    # The default run folder sits inside the repository; keep it out of git.
    [[ -n "${SOUS_RUN_DIR:-}" ]] || printf '*\n' >"$RUN_BASE/.gitignore"
  fi
  # 0755: the postgres account (when we are root) must be able to pass through.
  mkdir -p "$RUN_DIR" "$KAFKA_DIR"
  chmod 0755 "$RUN_DIR"
}

cmd_up() {
  local kpid ppid kafka_up=0 pg_up=0 secure=0
  case "${1:-}" in
    "") ;;
    --secure) secure=1 ;;
    *) die "usage: infra.sh up [--secure]" ;;
  esac
  make_run_dir
  take_lock
  pg_ensure_binaries
  pg_prepare_dir
  pg_resolve_dir
  load_ports
  kafka_choose_security "$secure"

  kpid="$(kafka_pid)"
  ppid="$(pg_pid)"
  [[ -n "$kpid" && -n "$KAFKA_PORT" ]] && kafka_up=1
  [[ -n "$ppid" && -n "$PG_PORT" ]] && pg_up=1

  # Fast path: both already running and answering.
  if [[ $kafka_up == 1 && $pg_up == 1 ]] && kafka_probe "$KAFKA_PORT" \
     && "$PG_BINDIR/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then
    write_env
    cat "$ENV_FILE"
    return 0
  fi

  choose_ports "$kafka_up" "$pg_up"
  # Start both before waiting for either: the JVM boots while initdb runs.
  # (`if`, not `||`: bash ignores set -e inside a function called from `||`.)
  if [[ $kafka_up != 1 ]]; then kafka_start; fi
  if [[ $pg_up != 1 ]]; then pg_start; fi
  pg_wait
  pg_bootstrap
  kafka_wait
  if [[ $KAFKA_SECURE == 1 ]]; then kafka_apply_acls; fi
  log "ready"
  write_env
  cat "$ENV_FILE"
}

cmd_down() {
  local purge=0
  case "${1:-}" in
    "") ;;
    --purge) purge=1 ;;
    *) die "usage: infra.sh down [--purge]" ;;
  esac
  if [[ ! -d "$RUN_DIR" ]]; then log "nothing to stop"; return 0; fi
  take_lock
  pg_resolve_dir
  kafka_stop
  if [[ -n "$(pg_pid)" ]]; then
    pg_ensure_binaries
    pg_stop
  fi
  # The env lines name servers that no longer answer: a client must not find them.
  rm -f "$ENV_FILE"
  if [[ $purge == 1 ]]; then
    log "removing $RUN_DIR"
    # The Postgres files may live in /tmp (see pg_prepare_dir).
    [[ -L "$RUN_DIR/postgres" ]] && rm -rf "$(readlink "$RUN_DIR/postgres")"
    rm -rf "$RUN_DIR"
  fi
}

cmd_status() {
  local kpid ppid rc=0 secured=""
  [[ -f "$KAFKA_SECURITY_FILE" ]] && secured=" (SASL/SCRAM, ACLs)"
  pg_resolve_dir
  load_ports
  kpid="$(kafka_pid)"
  ppid="$(pg_pid)"
  if [[ -n "$kpid" ]]; then
    echo "kafka:    running (pid $kpid) bootstrap 127.0.0.1:$KAFKA_PORT controller 127.0.0.1:$KAFKA_CONTROLLER_PORT${secured}"
  else
    echo "kafka:    stopped${KAFKA_PORT:+ (last port $KAFKA_PORT)}"; rc=3
  fi
  if [[ -n "$ppid" ]]; then
    echo "postgres: running (pid $ppid) 127.0.0.1:$PG_PORT"
  else
    echo "postgres: stopped${PG_PORT:+ (last port $PG_PORT)}"; rc=3
  fi
  echo "run dir:  $RUN_DIR"
  return $rc
}

cmd_env() {
  pg_resolve_dir
  if [[ -n "$(kafka_pid)" && -n "$(pg_pid)" && -f "$ENV_FILE" ]]; then
    cat "$ENV_FILE"
  else
    log "not running (use: infra.sh up)"
    return 3
  fi
}

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    status) cmd_status "$@" ;;
    env) cmd_env "$@" ;;
    *) echo "usage: $(basename "$0") up [--secure] | down [--purge] | status | env" >&2; exit 2 ;;
  esac
}

main "$@"
