#!/bin/sh
# Make a CA, a server cert (CN/SAN localhost, 127.0.0.1) and a client cert
# in QEMU's tls-creds-x509 layout: DIR/server/{ca-cert,server-cert,server-key}.pem
# and DIR/client/{ca-cert,client-cert,client-key}.pem.
# CERTTOOL: the certtool to use (default: certtool in PATH).
set -eu
d=${1:?usage: make-certs.sh DIR}
certtool=${CERTTOOL:-certtool}
mkdir -p "$d/server" "$d/client" && cd "$d"
"$certtool" --generate-privkey --key-type=ecdsa --outfile ca-key.pem 2>/dev/null
printf 'cn = test CA\nca\ncert_signing_key\nexpiration_days = 3650\n' > ca.info
"$certtool" --generate-self-signed --load-privkey ca-key.pem --template ca.info --outfile ca-cert.pem 2>/dev/null
for who in server client; do
	"$certtool" --generate-privkey --key-type=ecdsa --outfile "$who/$who-key.pem" 2>/dev/null
	{
		echo "cn = localhost"; echo "dns_name = localhost"; echo "ip_address = 127.0.0.1"
		echo "expiration_days = 3650"; echo "signing_key"; echo "encryption_key"
		[ $who = server ] && echo "tls_www_server" || echo "tls_www_client"
	} > $who.info
	"$certtool" --generate-certificate --load-privkey "$who/$who-key.pem" --load-ca-certificate ca-cert.pem \
		--load-ca-privkey ca-key.pem --template $who.info --outfile "$who/$who-cert.pem" 2>/dev/null
	cp ca-cert.pem "$who/ca-cert.pem"
done
# libnbd (nbdcopy) wants ca-cert.pem client-cert.pem client-key.pem in one dir: client/ has them
chmod -R a+rX "$d"
