# benches/sip/locus.sh - `locus proxy` profile for ../shared/bench/run.sh.
#
#   cargo build --release
#   RESULTS_DIR=target/sip-bench/$(date -u +%Y%m%dT%H%M%SZ) \
#     ../shared/bench/run.sh kamailio benches/sip/locus.sh
#
# The proxy runs as in production: the routing engine (default
# `least_calls`), the farm snapshot kept by Redis sync (pub/sub + refresh;
# run.sh starts redis-server because PROXY_NEEDS_REDIS=1), OPTIONS probes of
# every node, Record-Route and stateful forwarding with failover. The sipp
# backends are declared as static farm nodes (no agent beside them), so they
# are routed by their probes alone. REGISTER is skipped: Locus forwards
# REGISTER to a box (FreeSWITCH authenticates) instead of answering it, and
# the harness' backends are not registrars.
# Contract: see ../shared/bench/profiles/TEMPLATE.sh.example.

_locus_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LOCUS_BIN=${LOCUS_BIN:-"$_locus_root/target/release/locus"}
LOCUS_ALGORITHM=${LOCUS_ALGORITHM:-least_calls}
LOCUS_HTTP=${LOCUS_HTTP:-127.0.0.1:19181}

_cfg="$PROXY_RUNTIME_DIR/locus.toml"
{
	echo "[redis]"
	echo "url = \"redis://127.0.0.1:${REDIS_PORT:-6379}\""
	echo "[proxy]"
	echo "http = \"$LOCUS_HTTP\""
	echo "[proxy.sip]"
	echo "udp = [\"$PROXY_ADDR\"]"
	echo "[proxy.routing]"
	echo "algorithm = \"$LOCUS_ALGORITHM\""
	_i=1
	for _p in $BACKEND_PORTS_LIST; do
		echo "[[proxy.routing.static_nodes]]"
		echo "id = \"fs$_i\""
		echo "sip_uri = \"sip:127.0.0.1:$_p\""
		_i=$((_i + 1))
	done
} >"$_cfg"

PROXY_CMD_LB="$LOCUS_BIN --log-format json proxy --config $_cfg"
PROXY_CMD_REG=""
PROXY_NEEDS_REDIS=1

proxy_version() {
	"$LOCUS_BIN" --version 2>&1 | head -1
}

proxy_stats() {
	curl -s --max-time 2 "http://$LOCUS_HTTP/metrics" >"$1" 2>&1 || true
}
