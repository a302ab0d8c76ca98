#!/bin/bash
# Live migration over TLS (x509) between two paused qemu-system-x86_64
# (-accel qtest -machine none, RAM = a shared memory-backend-file filled
# with random bytes), plain and multifd (2 channels); checks that the
# destination's RAM file equals the source's, with /proc/net/tls_stat deltas.
#
# Usage: test-migrate.sh [CASE...]  CASE = p-plain p-multifd d-plain d-multifd
#   (p: patched QEMU_P, default /work/qemu-work/build-sys/qemu-system-x86_64;
#    d: Debian's /usr/bin/qemu-system-x86_64).  PKI, SIZE_MB (64) as test-nbd.sh.
set -u
QP=${QEMU_P:-/work/qemu-work/build-sys/qemu-system-x86_64}
PKI=${PKI:-/work/qemu-work/pki}
SIZE_MB=${SIZE_MB:-64}
CASES=("$@")
[ ${#CASES[@]} -gt 0 ] || CASES=(p-plain p-multifd d-plain d-multifd)
T=$(mktemp -d /tmp/qemu-mig-test.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT

stat_get() { awk -v k="$1" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }' /proc/net/tls_stat 2>/dev/null || echo 0; }
# qmp SOCKET JSON-COMMAND... : run commands, print each return/error on one line
qmp() {
	python3 - "$@" 2>/dev/null <<'PY'
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX)
for i in range(300):
    try:
        s.connect(sys.argv[1]); break
    except OSError:
        time.sleep(0.1)
f = s.makefile('rw')
def rd():
    while True:
        m = json.loads(f.readline())
        if 'event' not in m:
            return m
rd()
f.write('{"execute":"qmp_capabilities"}\n'); f.flush(); rd()
for c in sys.argv[2:]:
    f.write(c + '\n'); f.flush()
    r = rd()
    print(json.dumps(r.get('return', r)))
PY
}

echo "kernel $(uname -r); runner ${KTLS_RUNNER:-host}; tls module: $( [ -r /proc/net/tls_stat ] && echo yes || echo no)"
head -c $((SIZE_MB << 20)) /dev/urandom > "$T/src.ram"
want=$(sha256sum < "$T/src.ram" | cut -d' ' -f1)
echo "source RAM: $SIZE_MB MiB, sha256 $want"
fail=0 port=11000
for c in "${CASES[@]}"; do
	port=$((port + 1))
	# the patched build has no TCG (qtest accel, built in); Debian's has TCG
	# (its qtest accel is a module that may not be installed).  -S and
	# -machine none (no CPU): no guest code runs either way.
	case ${c%%-*} in p) q=$QP accel=qtest ;; d) q=/usr/bin/qemu-system-x86_64 accel=tcg ;; *) echo "bad case $c"; exit 2 ;; esac
	mode=${c#*-}
	rm -f "$T/dst.ram" "$T"/*.qmp; truncate -s ${SIZE_MB}M "$T/dst.ram"
	common=(-accel $accel -machine none,memory-backend=mem0 -m ${SIZE_MB}M -nodefaults -display none -S)
	GNUTLS_DEBUG_LEVEL=2 "$q" "${common[@]}" \
		-object memory-backend-file,id=mem0,size=${SIZE_MB}M,mem-path="$T/dst.ram",share=on \
		-object tls-creds-x509,id=tls0,endpoint=server,dir="$PKI/server" \
		-qmp unix:"$T/dst.qmp",server=on,wait=off -incoming defer 2>"$T/dst.log" &
	dpid=$!
	GNUTLS_DEBUG_LEVEL=2 "$q" "${common[@]}" \
		-object memory-backend-file,id=mem0,size=${SIZE_MB}M,mem-path="$T/src.ram",share=on \
		-object tls-creds-x509,id=tls0,endpoint=client,dir="$PKI/client" \
		-qmp unix:"$T/src.qmp",server=on,wait=off 2>"$T/src.log" &
	spid=$!
	caps='{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"multifd","state":'$([ $mode = multifd ] && echo true || echo false)'}]}}'
	tx0=$(stat_get TlsTxSw) rx0=$(stat_get TlsRxSw)
	qmp "$T/dst.qmp" "$caps" '{"execute":"migrate-set-parameters","arguments":{"tls-creds":"tls0","multifd-channels":2}}' \
		'{"execute":"migrate-incoming","arguments":{"uri":"tcp:127.0.0.1:'$port'"}}' > "$T/qmp.log"
	start=$(date +%s.%N)
	qmp "$T/src.qmp" "$caps" '{"execute":"migrate-set-parameters","arguments":{"tls-creds":"tls0","tls-hostname":"localhost","multifd-channels":2}}' \
		'{"execute":"migrate","arguments":{"uri":"tcp:localhost:'$port'"}}' >> "$T/qmp.log"
	st=none
	if ! kill -0 $spid 2>/dev/null || ! kill -0 $dpid 2>/dev/null; then
		echo "$c: FAIL qemu did not start"; grep -hv 'gnutls\[' "$T/src.log" "$T/dst.log" | head -5; fail=1; continue
	fi
	for i in $(seq 1 3000); do
		st=$(qmp "$T/src.qmp" '{"execute":"query-migrate"}' | python3 -c 'import json,sys; print(json.load(sys.stdin).get("status","?"))')
		case $st in completed | failed | cancelled | '') break ;; esac
		sleep 0.2
	done
	end=$(date +%s.%N)
	dst_st=$(qmp "$T/dst.qmp" '{"execute":"query-migrate"}' | python3 -c 'import json,sys; print(json.load(sys.stdin).get("status","?"))')
	qmp "$T/src.qmp" '{"execute":"quit"}' >/dev/null; qmp "$T/dst.qmp" '{"execute":"quit"}' >/dev/null
	wait $spid $dpid 2>/dev/null
	tx1=$(stat_get TlsTxSw) rx1=$(stat_get TlsRxSw)
	got=$(sha256sum < "$T/dst.ram" | cut -d' ' -f1)
	ok=OK; [ "$st" = completed ] && [ "$got" = "$want" ] || { ok=FAIL; fail=1; }
	printf '%s: %s src=%s dst=%s %.1fs TlsTxSw +%s TlsRxSw +%s dst RAM sha256 %s\n' "$c" $ok "$st" "$dst_st" \
		"$(echo "$end - $start" | bc)" $((tx1 - tx0)) $((rx1 - rx0)) "$got"
	grep -h 'ktls: session' "$T/src.log" | sed 's/^/  src: /;s/0x[0-9a-f]*/S/' | sort | uniq -c
	grep -h 'ktls: session\|ktls: not' "$T/dst.log" | sed 's/^/  dst: /;s/0x[0-9a-f]*/S/' | sort | uniq -c
	if [ $ok = FAIL ]; then sed 's/^/  qmp: /' "$T/qmp.log"; grep -hv 'gnutls\[' "$T/src.log" "$T/dst.log" | tail -8 | sed 's/^/  log: /'; fi
done
exit $fail
