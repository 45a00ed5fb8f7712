# benches/sip/locus.sh - `locus proxy` profile for ../shared/bench/run.sh.
#
#   cargo build --release -p locus
#   RUNTIME=/tmp/locus-bench.XXXXXX \
#   RESULTS_DIR=$PWD/target/sip-bench/$(date -u +%Y%m%dT%H%M%SZ) \
#     ../shared/bench/run.sh kamailio benches/sip/locus.sh
#
# RUNTIME (a mktemp template) and an absolute RESULTS_DIR work around two
# quirks of run.sh (docs/performance.md, "SIP proxy"). Knobs: LOCUS_BIN,
# LOCUS_ALGORITHM, LOCUS_HTTP (move it with the SIP ports), REDIS_PORT,
# LOCUS_PROBE_INTERVAL, LOCUS_WORKERS (proxy.core.workers). The routing decision time of every step lands in
# <results>/locus/route-decision.tsv.
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
	# UDP only (absent, TCP would listen where UDP does)
	echo "tcp = []"
	echo "[proxy.core]"
	# 0 = one thread and receive queue per CPU
	echo "workers = ${LOCUS_WORKERS:-0}"
	echo "[proxy.health]"
	# Probe every 5 s like the Kamailio profile's dispatcher (new nodes are
	# probed at once, so the functional check finds them up).
	echo "interval = \"${LOCUS_PROBE_INTERVAL:-5s}\""
	echo "[proxy.policy]"
	# run.sh puts the sipp UAC and the backends on 127.0.0.1: match nodes
	# by exact ip:port, or the UAC would count as a farm node.
	echo "node_match = \"address\""
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

# proxy_stats FILE: the whole /metrics page, then the routing decision time
# of this step (issue 3: p99 < 50 us, measured inside the proxy) from the
# delta of the locus_proxy_route_decision_seconds histogram since the
# previous call; one row per step also goes to $PDIR/route-decision.tsv.
# Quantiles are bucket upper bounds (the histogram's resolution).
proxy_stats() {
	local out=$1 prev="$PROXY_RUNTIME_DIR/route-prev.txt" cur="$PROXY_RUNTIME_DIR/route-cur.txt"
	curl -s --max-time 2 "http://$LOCUS_HTTP/metrics" >"$out" 2>&1 || true
	grep -E '^locus_proxy_route_decision_seconds_(bucket|sum|count)' "$out" >"$cur" 2>/dev/null || true
	[[ -f $prev ]] || : >"$prev"
	local step
	step=$(basename "$(dirname "$out")")
	[[ $out == *final* ]] && step=final
	local row
	row=$(awk '
		FILENAME == ARGV[1] { p[$1] = $2; next }
		{ c[$1] = $2; order[++n] = $1 }
		END {
			cnt = c["locus_proxy_route_decision_seconds_count"] - p["locus_proxy_route_decision_seconds_count"]
			sum = c["locus_proxy_route_decision_seconds_sum"] - p["locus_proxy_route_decision_seconds_sum"]
			# a restarted proxy starts from zero
			if (cnt < 0) { for (k in p) p[k] = 0; cnt = c["locus_proxy_route_decision_seconds_count"]; sum = c["locus_proxy_route_decision_seconds_sum"] }
			if (cnt <= 0) { print "0\tNA\tNA\tNA\tNA"; exit }
			split("0.5 0.9 0.99", qs, " ")
			for (qi = 1; qi <= 3; qi++) {
				want = qs[qi] * cnt; res[qi] = "inf"
				for (i = 1; i <= n; i++) {
					k = order[i]
					if (k !~ /_bucket/) continue
					if (c[k] - p[k] >= want) {
						le = k; sub(/.*le="/, "", le); sub(/".*/, "", le)
						res[qi] = (le == "+Inf" ? "inf" : sprintf("%g", le * 1e6)); break
					}
				}
			}
			printf "%d\t%.2f\t%s\t%s\t%s\n", cnt, sum / cnt * 1e6, res[1], res[2], res[3]
		}' "$prev" "$cur")
	cp "$cur" "$prev"
	local tsv="$PDIR/route-decision.tsv"
	[[ -s $tsv ]] || printf 'step\tdecisions\tmean_us\tp50_le_us\tp90_le_us\tp99_le_us\n' >"$tsv"
	printf '%s\t%s\n' "$step" "$row" >>"$tsv"
	printf '# route decision this step: decisions mean_us p50<= p90<= p99<= (us): %s\n' "$row" >>"$out"
}
