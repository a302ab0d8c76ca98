#!/bin/bash
# NBD over TLS (x509, client certificate required) between qemu-nbd and
# nbdcopy / qemu-img, patched and unpatched, with /proc/net/tls_stat deltas.
#
# Usage: test-nbd.sh [CASE...]   (default: all cases below)
#   Environment: PATCHED_BIN (dir with the patched qemu-nbd, qemu-img;
#   default /work/qemu-work/build-tools), PKI (default /work/qemu-work/pki),
#   SIZE_MB (default 64).  Run with LD_LIBRARY_PATH=<our libgnutls>
#   and GNUTLS_SYSTEM_PRIORITY_FILE=<file with "[global]\nktls = true">.
# A case is SERVER-CLIENT: server p|d (patched / Debian qemu-nbd), client
# nbdcopy|pimg|dimg (nbdcopy, patched / Debian qemu-img convert).
# Prints one line per case: tls_stat deltas (TlsTxSw, TlsRxSw, max
# TlsCurrTxSw/TlsCurrRxSw seen during the copy), sha256 match, the ktls:
# debug lines of each side.  Exit 1 if any copy fails or differs.
set -u
PB=${PATCHED_BIN:-/work/qemu-work/build-tools}
PKI=${PKI:-/work/qemu-work/pki}
SIZE_MB=${SIZE_MB:-64}
CASES=("$@")
[ ${#CASES[@]} -gt 0 ] || CASES=(p-nbdcopy d-nbdcopy p-pimg d-dimg p-dimg d-pimg)
T=$(mktemp -d /tmp/qemu-nbd-test.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT

stat_get() { # NAME -> value (0 without /proc/net/tls_stat)
	awk -v k="$1" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }' /proc/net/tls_stat 2>/dev/null || echo 0
}
wait_listen() { # PORT PID
	local hex i
	hex=$(printf '%04X' "$1")
	for i in $(seq 1 600); do
		grep -q ":$hex [0-9A-F:]* 0A " /proc/net/tcp /proc/net/tcp6 2>/dev/null && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

echo "kernel $(uname -r); runner ${KTLS_RUNNER:-host}; tls module: $( [ -r /proc/net/tls_stat ] && echo yes || echo no)"
echo "libgnutls: LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-} GNUTLS_SYSTEM_PRIORITY_FILE=${GNUTLS_SYSTEM_PRIORITY_FILE:-} ($(tr '\n' ' ' < "${GNUTLS_SYSTEM_PRIORITY_FILE:-/dev/null}"))"
[ -r /proc/net/tls_stat ] && { echo "tls_stat before:"; sed 's/^/  /' /proc/net/tls_stat; }
head -c $((SIZE_MB << 20)) /dev/urandom > "$T/src.img"
want=$(sha256sum < "$T/src.img" | cut -d' ' -f1)
echo "source: $SIZE_MB MiB, sha256 $want"

fail=0 port=10900
for c in "${CASES[@]}"; do
	port=$((port + 1))
	case ${c%%-*} in p) nbd=$PB/qemu-nbd ;; d) nbd=/usr/bin/qemu-nbd ;; *) echo "bad case $c"; exit 2 ;; esac
	rm -f "$T/out.img"
	tx0=$(stat_get TlsTxSw) rx0=$(stat_get TlsRxSw)
	GNUTLS_DEBUG_LEVEL=2 "$nbd" --object "tls-creds-x509,id=tls0,endpoint=server,dir=$PKI/server" \
		--tls-creds tls0 -f raw -r -x disk -b 127.0.0.1 -p $port "$T/src.img" 2>"$T/srv.log" &
	spid=$!
	if ! wait_listen $port $spid; then
		echo "$c: server did not start"; sed 's/^/  srv: /' "$T/srv.log" | grep -v '^  srv: gnutls\[' | head; fail=1; continue
	fi
	# sample the current counters while the copy runs
	( m=0 n=0; while :; do a=$(stat_get TlsCurrTxSw) b=$(stat_get TlsCurrRxSw)
	  [ "$a" -gt $m ] && m=$a; [ "$b" -gt $n ] && n=$b; echo "$m $n" > "$T/curr"; sleep 0.05; done ) &
	mpid=$!
	start=$(date +%s.%N)
	case ${c#*-} in
	nbdcopy) GNUTLS_DEBUG_LEVEL=2 nbdcopy "nbds://localhost:$port/disk?tls-certificates=$PKI/client" "$T/out.img" 2>"$T/cli.log" ;;
	pimg | dimg)
		[ ${c#*-} = pimg ] && img=$PB/qemu-img || img=/usr/bin/qemu-img
		GNUTLS_DEBUG_LEVEL=2 "$img" convert --object "tls-creds-x509,id=tls1,endpoint=client,dir=$PKI/client" \
			--image-opts "driver=nbd,server.type=inet,server.host=localhost,server.port=$port,export=disk,tls-creds=tls1" \
			-O raw "$T/out.img" 2>"$T/cli.log" ;;
	*) echo "bad case $c"; exit 2 ;;
	esac
	rc=$?
	end=$(date +%s.%N)
	sleep 0.2; kill $mpid 2>/dev/null; wait $mpid 2>/dev/null
	kill $spid 2>/dev/null; wait $spid 2>/dev/null
	tx1=$(stat_get TlsTxSw) rx1=$(stat_get TlsRxSw)
	got=$(sha256sum < "$T/out.img" 2>/dev/null | cut -d' ' -f1)
	ok=OK; [ $rc = 0 ] && [ "$got" = "$want" ] || { ok=FAIL; fail=1; }
	printf '%s: %s rc=%s %.1fs TlsTxSw +%s TlsRxSw +%s max(TlsCurrTxSw,TlsCurrRxSw)=(%s) sha256 %s\n' \
		"$c" $ok $rc "$(echo "$end - $start" | bc)" $((tx1 - tx0)) $((rx1 - rx0)) "$(cat "$T/curr" 2>/dev/null)" "${got:-none}"
	grep -h 'ktls:' "$T/srv.log" | sed 's/^/  srv: /' | sort | uniq -c | head -8
	grep -h 'ktls:' "$T/cli.log" | sed 's/^/  cli: /' | sort | uniq -c | head -8
	if [ $ok = FAIL ]; then grep -v 'gnutls\[' "$T/srv.log" | sed 's/^/  srv: /' | tail -5; grep -v 'gnutls\[' "$T/cli.log" | sed 's/^/  cli: /' | tail -5; fi
done
[ -r /proc/net/tls_stat ] && { echo "tls_stat after:"; sed 's/^/  /' /proc/net/tls_stat; }
exit $fail
