/*
 * Copyright (C) 2026 gnutls-ktls contributors
 *
 * This file is part of GnuTLS.
 *
 * GnuTLS is free software: you can redistribute it and/or modify it
 * under the terms of the GNU General Public License as published by
 * the Free Software Foundation, either version 3 of the License, or
 * (at your option) any later version.
 *
 * GnuTLS is distributed in the hope that it will be useful, but
 * WITHOUT ANY WARRANTY; without even the implied warranty of
 * MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the GNU
 * General Public License for more details.
 *
 * You should have received a copy of the GNU General Public License
 * along with this program.  If not, see <https://www.gnu.org/licenses/>
 */

/* Self-test for tests/vm/run-in-kernel: proves that the kernel's TLS ULP
 * works, without GnuTLS. On a connected loopback TCP pair it attaches the
 * "tls" ULP (setsockopt TCP_ULP), installs the same TLS 1.3 key as TX on one
 * end and RX on the other, for each cipher, and checks that a message sent
 * through the kernel's record layer arrives decrypted.
 * Exit status: 0 ok, 1 failure. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef TCP_ULP
#define TCP_ULP 31
#endif
#ifndef SOL_TLS
#define SOL_TLS 282
#endif

static int fail(const char *what)
{
	fprintf(stderr, "ulp-check: %s: %s\n", what, strerror(errno));
	return -1;
}

/* A connected loopback pair: fds[0] client, fds[1] accepted server end. */
static int tcp_pair(int fds[2])
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(l, 1) < 0 || getsockname(l, (struct sockaddr *)&sa, &len) < 0)
		return fail("listen on 127.0.0.1");
	fds[0] = socket(AF_INET, SOCK_STREAM, 0);
	if (fds[0] < 0 || connect(fds[0], (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return fail("connect");
	fds[1] = accept(l, NULL, NULL);
	close(l);
	return fds[1] < 0 ? fail("accept") : 0;
}

union crypto_info {
	struct tls_crypto_info info;
	struct tls12_crypto_info_aes_gcm_128 aes128;
	struct tls12_crypto_info_aes_gcm_256 aes256;
	struct tls12_crypto_info_chacha20_poly1305 chacha;
};

static int check_cipher(const char *name, unsigned short type, size_t size)
{
	static const char msg[] = "hello from the kernel's TLS record layer";
	union crypto_info ci;
	char buf[sizeof(msg)];
	int fds[2] = { -1, -1 };
	ssize_t n;

	memset(&ci, 0x42, sizeof(ci)); /* key, iv, salt: any fixed bytes */
	ci.info.version = TLS_1_3_VERSION;
	ci.info.cipher_type = type;
	if (tcp_pair(fds) < 0)
		return -1;
	if (setsockopt(fds[0], SOL_TCP, TCP_ULP, "tls", sizeof("tls")) < 0 ||
	    setsockopt(fds[1], SOL_TCP, TCP_ULP, "tls", sizeof("tls")) < 0)
		return fail("setsockopt(TCP_ULP, \"tls\")");
	if (setsockopt(fds[0], SOL_TLS, TLS_TX, &ci, size) < 0)
		return fail("setsockopt(TLS_TX)");
	if (setsockopt(fds[1], SOL_TLS, TLS_RX, &ci, size) < 0)
		return fail("setsockopt(TLS_RX)");
	if (send(fds[0], msg, sizeof(msg), 0) != (ssize_t)sizeof(msg))
		return fail("send");
	n = recv(fds[1], buf, sizeof(buf), MSG_WAITALL);
	if (n != (ssize_t)sizeof(msg) || memcmp(buf, msg, sizeof(msg)) != 0) {
		fprintf(stderr, "ulp-check: %s: recv returned %zd bytes, not the message\n",
			name, n);
		return -1;
	}
	close(fds[0]);
	close(fds[1]);
	printf("ulp-check: TLS 1.3 %s: ok\n", name);
	return 0;
}

int main(void)
{
	int rc = 0;

	rc |= check_cipher("AES-128-GCM", TLS_CIPHER_AES_GCM_128,
			   sizeof(struct tls12_crypto_info_aes_gcm_128));
	rc |= check_cipher("AES-256-GCM", TLS_CIPHER_AES_GCM_256,
			   sizeof(struct tls12_crypto_info_aes_gcm_256));
	rc |= check_cipher("CHACHA20-POLY1305", TLS_CIPHER_CHACHA20_POLY1305,
			   sizeof(struct tls12_crypto_info_chacha20_poly1305));
	return rc ? 1 : 0;
}
