#!/usr/bin/env bash
# The container test, run by CI (.ci/run) as root: builds the base image (when missing) and the
# OpenDPS image, starts Redis, three OpenDPS containers and HAProxy on loopback (host networking,
# distinct free ports), registers OPENDPS_DOCKER_DEVICES (default 1000) devices through HAProxy,
# SIGKILLs one node's container mid-run, and checks that every device is assigned with its record
# readable through HAProxy and that the nodes' assignment counters agree. Exits non-zero on any
# failure, including a machine where podman cannot run containers. Cleans up what it started.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
devices=${OPENDPS_DOCKER_DEVICES:-1000}
concurrency=${OPENDPS_DOCKER_CONCURRENCY:-20}
image=localhost/opendps:docker-test
run_id=opendps-test-$$
started=$(date +%s)
phase_started=$started

say() { echo "docker-test: $*"; }
fail() { echo "docker-test: FAIL: $*" >&2; exit 1; }
phase() { local now; now=$(date +%s); say "$1 ($((now - phase_started)) s)"; phase_started=$now; }

# What the test needs, from Debian.
missing=()
for tool in podman:podman runc:runc debootstrap:debootstrap haproxy:haproxy redis-server:redis-server curl:curl; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || fail "missing ${missing[*]} and not root to install them"
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# crun fails on this host's cgroups and the default ulimits are refused (docker/README.md).
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}

work=$(mktemp -d /var/tmp/opendps-docker-test.XXXXXX)
chmod 0755 "$work"
haproxy_pid=''
redis_pid=''
cleanup() {
  local rc=$?
  set +e
  if [ "$rc" != 0 ]; then
    for node in 1 2 3; do
      podman container exists "$run_id-node$node" 2>/dev/null || continue
      echo "--- last log lines of $run_id-node$node" >&2
      podman logs --tail 15 "$run_id-node$node" >&2 2>&1
    done
    [ -f "$work/haproxy.log" ] && { echo '--- haproxy' >&2; tail -15 "$work/haproxy.log" >&2; }
  fi
  for node in 1 2 3; do podman rm --force --time 0 "$run_id-node$node" >/dev/null 2>&1; done
  [ -n "$haproxy_pid" ] && kill "$haproxy_pid" 2>/dev/null && wait "$haproxy_pid" 2>/dev/null
  [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
  podman image rm --force "$image" >/dev/null 2>&1
  # The untagged images earlier builds and this one's build stage left behind.
  for label in org.opendps.stage=build org.opencontainers.image.title=OpenDPS; do
    podman image prune --force --filter "label=$label" >/dev/null 2>&1
  done
  rm -rf "$work"
  say "cleaned up; $([ "$rc" = 0 ] && echo passed || echo "FAILED (exit $rc)") in $(($(date +%s) - started)) s"
}
trap cleanup EXIT

# 1. Images. The base image is cached in podman's storage between runs.
"$here/base-image.sh"
podman run --rm --network none node:20-bookworm-slim node -e 'process.exit(0)' >"$work/podman-probe.log" 2>&1 \
  || { cat "$work/podman-probe.log" >&2; fail "podman cannot run a container on this machine (see above)"; }
phase "base image ready; podman runs containers"
"$here/build.sh" --tag "$image" >"$work/build.log" 2>&1 || { tail -30 "$work/build.log" >&2; fail "image build failed"; }
phase "built $image ($(podman image inspect --format '{{.Size}}' "$image") bytes)"
user=$(podman image inspect --format '{{.Config.User}}' "$image")
[ -n "$user" ] && [ "$user" != root ] && [ "$user" != 0 ] || fail "the image runs as '$user', not a non-root user"
healthcheck=$(podman image inspect --format '{{.Config.Healthcheck.Test}}' "$image")
[ -n "$healthcheck" ] && [ "$healthcheck" != '[]' ] || fail "the image has no HEALTHCHECK"

# What this build of OpenDPS offers (other parts of issue 11 may not have landed yet).
help=$(podman run --rm --network none "$image" start --help 2>&1)
has() { grep -q -- "--$1" <<<"$help"; }
has metrics-port && metrics=yes || metrics=no
has bind && bind=yes || bind=no
# The build that added --tls-cert also shares the dev CA and server certificate through the store.
has tls-cert && shared_pki=yes || shared_pki=no
say "this build: --metrics-port: $metrics, --bind: $bind, dev PKI shared through Redis: $shared_pki"
[ "$bind" = yes ] || say "note: no --bind in this build: nodes listen on every interface (host networking), the test still talks to 127.0.0.1 only"

# 2. Free loopback ports: Redis, five per node (one spare), four for HAProxy. No node gets a hub port:
# the built-in hub is served on the MQTT and HTTPS listeners, so any node serves it behind HAProxy.
mapfile -t ports < <(node -e '
  const net = require("node:net");
  const servers = Array.from({ length: 20 }, () => net.createServer());
  Promise.all(servers.map((s) => new Promise((r) => s.listen(0, "127.0.0.1", () => r(s.address().port)))))
    .then((ports) => { console.log(ports.join("\n")); servers.forEach((s) => s.close()); });')
[ ${#ports[@]} = 20 ] || fail "could not reserve 20 free ports"
redis_port=${ports[0]}
node_port() { echo "${ports[$((1 + ($1 - 1) * 5 + $2))]}"; } # node 1..3, slot 0 https, 1 mqtt, 2 amqp, 4 metrics
lb_https=${ports[16]}; lb_mqtt=${ports[17]}; lb_amqp=${ports[18]}; lb_stats=${ports[19]}

# 3. Redis on the host, loopback only.
mkdir -p "$work/redis"
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work/redis" --save '' --appendonly no --loglevel warning >"$work/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$redis_port" ping >/dev/null || fail "redis-server did not start: $(cat "$work/redis.log")"

# 4. Three nodes. Node 1 starts alone and creates the development CA and server certificate; nodes
# 2 and 3 load them from Redis (or, in a build that cannot, get copies in their data directories),
# so a device trusts one CA whichever node it reaches.
start_node() {
  local n=$1 dir="$work/node$1"
  mkdir -p "$dir"
  chown 1000:1000 "$dir"
  local env=(-e "OPENDPS_REDIS_URL=redis://127.0.0.1:$redis_port" -e OPENDPS_HOST=localhost -e OPENDPS_BIND=127.0.0.1
    -e "OPENDPS_HTTPS_PORT=$(node_port "$n" 0)" -e "OPENDPS_MQTT_PORT=$(node_port "$n" 1)"
    -e "OPENDPS_AMQP_PORT=$(node_port "$n" 2)")
  [ "$metrics" = yes ] && env+=(-e "OPENDPS_METRICS_PORT=$(node_port "$n" 4)")
  # No systemd here to run health-check timers: the test runs the HEALTHCHECK itself (podman healthcheck run).
  podman run --detach --name "$run_id-node$n" --network host --health-interval disable --volume "$dir:/data" "${env[@]}" "$image" \
    2> >(grep -v 'unable to get systemd connection' >&2) >/dev/null
}
wait_ready() {
  local n=$1
  for _ in $(seq 600); do
    [ -s "$work/node$n/connection.json" ] && podman logs "$run_id-node$n" 2>&1 | grep -q 'OpenDPS ready' && return 0
    [ "$(podman inspect --format '{{.State.Running}}' "$run_id-node$n")" = true ] || break
    sleep 0.1
  done
  fail "node $n did not become ready"
}
start_node 1
wait_ready 1
for n in 2 3; do
  if [ "$shared_pki" = no ]; then
    mkdir -p "$work/node$n"
    cp -p "$work/node1/ca.pem" "$work/node1/ca-key.pem" "$work/node1/server.pem" "$work/node1/server-key.pem" "$work/node$n/"
  fi
  start_node "$n"
done
[ "$shared_pki" = yes ] || say "note: this build does not share the dev PKI through Redis: nodes 2 and 3 got node 1's CA files"

wait_ready 2
wait_ready 3
for n in 2 3; do
  cmp -s "$work/node1/ca.pem" "$work/node$n/ca.pem" || fail "node $n does not use node 1's CA"
  cmp -s "$work/node1/server.pem" "$work/node$n/server.pem" || fail "node $n does not use node 1's server certificate"
done
scope() { node -p "require('$work/node$1/connection.json').idScope"; }
[ "$(scope 1)" = "$(scope 2)" ] && [ "$(scope 1)" = "$(scope 3)" ] || fail "the nodes disagree on the ID scope"
phase "three nodes ready on one Redis, one CA, ID scope $(scope 1)"

# The image's own HEALTHCHECK (node asking /readyz). Without /readyz in this build, HAProxy falls
# back to TCP checks, and says so.
for _ in $(seq 30); do podman healthcheck run "$run_id-node1" >/dev/null 2>&1 && break; sleep 0.5; done
if podman healthcheck run "$run_id-node1" >/dev/null 2>&1; then
  readyz=yes
  for n in 2 3; do podman healthcheck run "$run_id-node$n" >/dev/null 2>&1 || fail "node $n is not healthy"; done
  say "HEALTHCHECK: all three nodes healthy (/readyz 200)"
elif [ "$metrics" = yes ]; then
  fail "this build has --metrics-port but /readyz does not answer 200 (HEALTHCHECK unhealthy)"
else
  readyz=no
  say "note: /readyz is not in this build: the image's HEALTHCHECK reports unhealthy and HAProxy uses TCP checks"
fi

# 5. HAProxy on the host, TCP mode, health-checking each node's /readyz over TLS.
check_opts() { # node n
  if [ "$readyz" = yes ]; then echo "check port $(node_port "$1" 0) check-ssl verify none"; else echo check; fi
}
{
  printf 'global\n  maxconn 4096\n  stats socket %s mode 600 level admin\n' "$work/haproxy.sock"
  printf 'defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 120s\n  timeout server 120s\n  retries 3\n  option redispatch\n'
  printf '  default-server inter 500ms fall 2 rise 2\n'
  for listener in https:0:$lb_https mqtt:1:$lb_mqtt amqp:2:$lb_amqp; do
    IFS=: read -r name slot port <<<"$listener"
    printf 'frontend %s\n  bind 127.0.0.1:%s\n  default_backend %s_nodes\n' "$name" "$port" "$name"
    printf 'backend %s_nodes\n  balance roundrobin\n' "$name"
    [ "$readyz" = yes ] && printf '  option httpchk GET /readyz\n  http-check expect status 200\n'
    for n in 1 2 3; do printf '  server node%s 127.0.0.1:%s %s\n' "$n" "$(node_port "$n" "$slot")" "$(check_opts "$n")"; done
  done
  printf 'frontend stats\n  mode http\n  bind 127.0.0.1:%s\n  stats enable\n  stats uri /stats\n' "$lb_stats"
} >"$work/haproxy.cfg"
haproxy -c -f "$work/haproxy.cfg" >/dev/null || fail "haproxy rejected its configuration: $(haproxy -c -f "$work/haproxy.cfg" 2>&1)"
haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
haproxy_pid=$!
backends_up() { curl -s "http://127.0.0.1:$lb_stats/stats;csv" | awk -F, '$2 ~ /^node/ && $18 == "UP"' | wc -l; }
for _ in $(seq 100); do [ "$(backends_up)" = 9 ] && break; sleep 0.1; done
[ "$(backends_up)" = 9 ] || fail "HAProxy does not see all nine backends up: $(curl -s "http://127.0.0.1:$lb_stats/stats;csv")"
phase "HAProxy up: https :$lb_https, mqtt :$lb_mqtt, amqp :$lb_amqp, 9/9 backends up ($([ "$readyz" = yes ] && echo '/readyz over TLS' || echo 'TCP') checks)"
console_status=$(curl -s --cacert "$work/node1/ca.pem" -o "$work/console.html" -w '%{http_code}' "https://127.0.0.1:$lb_https/console/" || true)
[ "$console_status" = 200 ] && grep -q 'id="app"' "$work/console.html" || fail "the image does not serve the web console: /console/ answered HTTP $console_status"
say "the web console is served from the image: /console/ 200 through HAProxy"

# 6. The devices, through HAProxy, with node 2 killed a third of the way in.
group_id=docker-test-$$
group_key=$(node -p "require('node:crypto').randomBytes(32).toString('base64')")
metrics_url() { [ "$metrics" = yes ] && echo "\"http://127.0.0.1:$(node_port "$1" 4)/metrics\"" || echo null; }
config=$(cat <<EOF
{ "host": "127.0.0.1", "ports": { "https": $lb_https, "mqtt": $lb_mqtt },
  "caFile": "$work/node1/ca.pem", "idScope": "$(scope 1)",
  "serviceConnectionString": $(node -p "JSON.stringify(require('$work/node1/connection.json').serviceConnectionString)"),
  "groupId": "$group_id", "groupKey": "$group_key",
  "count": $devices, "concurrency": $concurrency, "killAfter": $((devices / 3)),
  "victim": { "container": "$run_id-node2", "metricsUrl": $(metrics_url 2) },
  "nodes": [ { "container": "$run_id-node1", "metricsUrl": $(metrics_url 1) },
             { "container": "$run_id-node2", "metricsUrl": $(metrics_url 2) },
             { "container": "$run_id-node3", "metricsUrl": $(metrics_url 3) } ] }
EOF
)
set +e
node "$here/cluster-check.js" "$config"
check_rc=$?
set -e
phase "devices done"

# 7. After the kill: the victim is gone, HAProxy took it out, the others are still healthy.
[ "$(podman inspect --format '{{.State.Status}}' "$run_id-node2")" = exited ] || fail "node 2 is still running after its kill"
say "node 2: $(podman inspect --format 'exited, code {{.State.ExitCode}}' "$run_id-node2")"
for _ in $(seq 50); do [ "$(backends_up)" = 6 ] && break; sleep 0.1; done
say "HAProxy backends up after the kill: $(backends_up)/9 ($(curl -s "http://127.0.0.1:$lb_stats/stats;csv" | awk -F, '$2 ~ /^node/ {print $1 "/" $2 "=" $18}' | tr '\n' ' '))"
[ "$(backends_up)" = 6 ] || fail "HAProxy should see exactly node 1 and node 3 up (6 backends)"
if [ "$readyz" = yes ]; then
  for n in 1 3; do podman healthcheck run "$run_id-node$n" >/dev/null 2>&1 || fail "node $n is unhealthy after the run"; done
  say "HEALTHCHECK: nodes 1 and 3 still healthy"
fi
[ "$check_rc" = 0 ] || fail "the device checks failed (above)"

# 8. With node 2 still down: `opendps loadgen` from the image itself, over AMQP through HAProxy.
after=${OPENDPS_DOCKER_AFTER_DEVICES:-200}
if podman run --rm --network none "$image" loadgen --help >/dev/null 2>&1; then
  podman run --rm --network host --health-interval disable --volume "$work/node1/ca.pem:/tmp/ca.pem:ro" "$image" \
    loadgen --id-scope "$(scope 1)" --host 127.0.0.1 --transport amqp --port "$lb_amqp" --ca /tmp/ca.pem \
    --group-key "$group_key" --prefix "$group_id-after-" --count "$after" --concurrency "$concurrency" \
    >"$work/loadgen.out" 2> >(grep -v 'unable to get systemd connection' >&2) || { tail -5 "$work/loadgen.out" >&2; fail "opendps loadgen over AMQP failed"; }
  summary=$(grep '"type":"summary"' "$work/loadgen.out" | tail -1)
  assigned=$(node -p "const s = JSON.parse(process.argv[1]); s.succeeded + '/' + s.started + ' in ' + (s.elapsedMs / 1000).toFixed(1) + ' s, ' + s.failed + ' failed'" "$summary")
  [ "${assigned%%/*}" = "$after" ] || fail "opendps loadgen: $assigned"
  phase "opendps loadgen (in the image) over AMQP through HAProxy, node 2 down: $assigned"
else
  say "note: no 'opendps loadgen' in this build: the AMQP pass is skipped"
fi
# 9. A graceful stop: SIGTERM (podman stop) drains node 3, which exits 0 well within the bound.
if has drain-timeout-ms; then
  stop_started=$(date +%s%N)
  podman stop --time 15 "$run_id-node3" >/dev/null
  stop_ms=$((($(date +%s%N) - stop_started) / 1000000))
  code=$(podman inspect --format '{{.State.ExitCode}}' "$run_id-node3")
  [ "$code" = 0 ] || fail "node 3 exited $code on SIGTERM (expected a drain and exit 0)"
  [ "$stop_ms" -lt 12000 ] || fail "node 3 took ${stop_ms} ms to stop (drain bound 10 s)"
  say "node 3: SIGTERM drained and exited 0 in ${stop_ms} ms"
else
  say "note: no --drain-timeout-ms in this build: the graceful stop is not checked"
fi
say "passed: $devices devices through HAProxy, node 2 killed mid-run, none lost"
