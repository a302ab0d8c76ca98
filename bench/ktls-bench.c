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

/*
 * ktls-bench: one benchmark case, printed as one JSON line.
 *
 * A TLS client (this process) and a TLS server (a forked child) talk over
 * TCP on 127.0.0.1, with GnuTLS (--lib gnutls: whether the kernel does the
 * record layer is decided by the library's configuration file, as for any
 * program; the flags it reports are printed), with OpenSSL (--lib
 * openssl, --ktls on sets SSL_OP_ENABLE_KTLS), or without TLS (--lib
 * plain: send/recv/sendfile(2) in clear, the transport's own cost).  After the handshake each
 * side takes getrusage(RUSAGE_SELF) and CLOCK_MONOTONIC; the data phase is
 * timed from the client's start to the server's end.
 *
 *   bulk      the client sends --size bytes in --chunk writes
 *             (gnutls_record_send / SSL_write); the server reads them
 *             with a buffer of max(--chunk, 16 KiB).  --cork N (GnuTLS):
 *             gnutls_record_cork() around every N writes
 *   sendfile  the client sends a --size file from the page cache
 *             (gnutls_record_send_file; OpenSSL: SSL_sendfile under KTLS,
 *             read()+SSL_write() in --chunk pieces otherwise)
 *   recvfile  as sendfile, and the server writes what it receives to a
 *             file (gnutls_record_recv_file if the library has it, else
 *             recv+write(); OpenSSL: SSL_read+write())
 *   rr        --count request/response transactions of --msg bytes each
 *             way (TCP_NODELAY): latency and transactions/s
 *   mixed     an NBD-like stream of --count commands: the client sends a
 *             64 B request; three commands in four are reads, which the
 *             server answers with a 16 B reply header and then the data
 *             (64 KiB..1 MiB, a fixed pseudo-random sequence) in a second
 *             write; every fourth is a write, the request followed by
 *             its data (64 KiB..1 MiB, one write call), which the server
 *             acknowledges with a 16 B reply.  bytes = data both ways.
 *             --seed N shuffles the lengths of the reads among the reads
 *             and those of the writes among the writes (the same bytes and
 *             commands in another order), to sample other interleavings
 *             of the two ends
 *   afalg     no TLS: the kernel's AEAD (AF_ALG, the algorithm KTLS uses
 *             for --cipher) encrypts --size bytes in 16 KiB records with a
 *             13-byte AAD, as KTLS TX does: the floor for send_file.
 *             The plaintext is copied in by sendmsg, or with --splice
 *             vmspliced+spliced (read in place, as KTLS send_file does);
 *             the ciphertext goes to user memory the kernel maps
 *
 * The received byte count is always checked; --verify also checks every
 * byte (a position-dependent pattern), which costs receiver CPU.
 * --verify-after (bulk, sendfile, recvfile) checks every byte too, but
 * after the timed section: the receiver keeps the whole stream (in a
 * buffer touched before the data phase; recvfile: in the file) and
 * checks it once the clock has stopped, so the figures are not the check's.
 *
 * The kernel TLS flags are those at the end of the data phase (with
 * ktls = auto a direction can move to the kernel during it); the ones
 * right after the handshake are printed as ktls_tx0/ktls_rx0.
 *
 * Exit status: 0 success, 1 failure, 2 usage.
 */

#define _GNU_SOURCE

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/if_alg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/socket.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#ifndef SOL_ALG
#define SOL_ALG 279
#endif

#define MIN_RBUF (16 << 10)
#define RECORD 16384

struct cipher_desc {
	const char *name;
	const char *gnutls;	/* priority keyword */
	const char *ossl13;	/* TLS 1.3 ciphersuite */
	const char *ossl12;	/* TLS 1.2 cipher list */
	const char *alg;	/* AF_ALG aead name (what KTLS uses) */
	unsigned keylen, ivlen;
};

static const struct cipher_desc ciphers[] = {
	{ "aes-128-gcm", "AES-128-GCM", "TLS_AES_128_GCM_SHA256",
	 "ECDHE-ECDSA-AES128-GCM-SHA256", "gcm(aes)", 16, 12 },
	{ "aes-256-gcm", "AES-256-GCM", "TLS_AES_256_GCM_SHA384",
	 "ECDHE-ECDSA-AES256-GCM-SHA384", "gcm(aes)", 32, 12 },
	{ "aes-128-ccm", "AES-128-CCM", "TLS_AES_128_CCM_SHA256",
	 "ECDHE-ECDSA-AES128-CCM", "ccm(aes)", 16, 16 },
	{ "chacha20-poly1305", "CHACHA20-POLY1305",
	 "TLS_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305",
	 "rfc7539(chacha20,poly1305)", 32, 12 },
};

enum mode { M_BULK, M_SENDFILE, M_RECVFILE, M_RR, M_AFALG, M_MIXED };
static const char *const mode_names[] = { "bulk", "sendfile", "recvfile",
	"rr", "afalg", "mixed" };
#define N_MODES 6

static struct {
	int openssl;		/* else gnutls */
	int plain;		/* no TLS at all: the transport's own cost */
	int ktls;		/* OpenSSL: SSL_OP_ENABLE_KTLS */
	int tls12;
	const struct cipher_desc *c;
	enum mode mode;
	uint64_t size;
	size_t chunk, msg;
	unsigned long count;
	const char *cert, *key, *label, *tmpdir;
	int verify;
	int verify_after;	/* check the stream after the timed section */
	int splice;		/* afalg: splice the plaintext in */
	unsigned cork;		/* bulk, GnuTLS: cork this many chunks */
	unsigned long seed;	/* mixed: which sequence of lengths */
} o = {.chunk = 16384, .msg = 64, .count = 2000, .size = 32 << 20 };

/* What each side measured in the data phase. */
struct side {
	double t0, t1;		/* CLOCK_MONOTONIC, after handshake, end */
	double user, sys;
	uint64_t bytes;		/* payload bytes received */
	long calls;		/* send/recv calls made */
	int ktls_tx, ktls_rx;	/* at the end of the data phase */
	int ktls_tx0, ktls_rx0;	/* right after the handshake */
	char path[32];		/* what the data path was */
	int failed;
	char err[200];
};

static struct side me;

static void fail(const char *fmt, ...)
{
	va_list ap;
	if (me.failed)
		return;
	me.failed = 1;
	va_start(ap, fmt);
	vsnprintf(me.err, sizeof(me.err), fmt, ap);
	va_end(ap);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void rusage_now(double *u, double *s)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	*u = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
	*s = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void phase_start(void)
{
	rusage_now(&me.user, &me.sys);
	me.t0 = now();
}

static void phase_end(void)
{
	double u, s;
	me.t1 = now();
	rusage_now(&u, &s);
	me.user = u - me.user;
	me.sys = s - me.sys;
}

/* GnuTLS: what the kernel does now (ktls = auto can move a direction
 * during the data phase) */
static void ktls_flags_now(gnutls_session_t gs)
{
	int f = gnutls_transport_is_ktls_enabled(gs);
	me.ktls_tx = !!(f & GNUTLS_KTLS_SEND);
	me.ktls_rx = !!(f & GNUTLS_KTLS_RECV);
}

/* The payload: byte at stream position p. */
static inline unsigned char pat(uint64_t p)
{
	return (unsigned char)(p * 131 + (p >> 13));
}

static void fill(unsigned char *b, size_t n, uint64_t pos)
{
	for (size_t i = 0; i < n; i++)
		b[i] = pat(pos + i);
}

static void check_bytes(const unsigned char *b, size_t n, uint64_t pos)
{
	if (me.failed)
		return;
	for (size_t i = 0; i < n; i++)
		if (b[i] != pat(pos + i)) {
			fail("wrong byte at %" PRIu64, pos + i);
			return;
		}
}

/* --verify: on the measured path */
static void check(const unsigned char *b, size_t n, uint64_t pos)
{
	if (o.verify)
		check_bytes(b, n, pos);
}

/* mixed: command i's data length (64 KiB..1 MiB) and direction */
#define MIXED_MAX (1 << 20)
#define MIXED_REQ 64
#define MIXED_REPLY 16
static int mixed_is_write(unsigned long i)
{
	return i % 4 == 3;
}

static uint32_t *mixed_lens;

static uint32_t mixed_len0(unsigned long i)
{
	uint32_t x = (uint32_t)(i + 1) * 2654435761u;
	x ^= x >> 13;
	return (64u << 10) << (x % 5);
}

/* the lengths of seed 0; another seed shuffles them among the commands of
 * the same kind (Fisher-Yates, a fixed LCG) */
static int mixed_setup(void)
{
	uint64_t r = o.seed * 6364136223846793005ull + 1442695040888963407ull;

	mixed_lens = malloc((o.count ? o.count : 1) * sizeof(*mixed_lens));
	if (!mixed_lens)
		return -1;
	for (unsigned long i = 0; i < o.count; i++)
		mixed_lens[i] = mixed_len0(i);
	if (!o.seed)
		return 0;
	for (int w = 0; w < 2; w++) {
		for (unsigned long i = o.count; i-- > 0;) {
			if (mixed_is_write(i) != w)
				continue;
			/* pick j among the commands of this kind in [0, i] */
			unsigned long n = 0, j;
			for (j = 0; j <= i; j++)
				n += mixed_is_write(j) == w;
			r = r * 6364136223846793005ull + 1442695040888963407ull;
			unsigned long k = (r >> 33) % n;
			for (j = 0;; j++)
				if (mixed_is_write(j) == w && k-- == 0)
					break;
			uint32_t t = mixed_lens[i];
			mixed_lens[i] = mixed_lens[j];
			mixed_lens[j] = t;
		}
	}
	return 0;
}

static uint32_t mixed_len(unsigned long i)
{
	return mixed_lens[i];
}

static uint64_t mixed_total(void)
{
	uint64_t t = 0;
	for (unsigned long i = 0; i < o.count; i++)
		t += mixed_len(i);
	return t;
}

/* a buffer of n bytes, every page touched (before the timed section) */
static unsigned char *big_buffer(uint64_t n)
{
	unsigned char *b = malloc(n ? n : 1);
	if (b)
		memset(b, 0, n);
	return b;
}

/* ---- the two libraries behind one small interface ---- */

struct conn {
	int fd;
	gnutls_session_t gs;
	SSL *ssl;
};

static gnutls_certificate_credentials_t gcred;
static SSL_CTX *sctx;

static ssize_t (*recv_file_fn)(gnutls_session_t, int, off_t *, size_t);

static int lib_init(int server)
{
	if (o.plain)
		return 0;
	if (!o.openssl) {
		if (gnutls_global_init() < 0 ||
		    gnutls_certificate_allocate_credentials(&gcred) < 0)
			return -1;
		if (server &&
		    gnutls_certificate_set_x509_key_file(gcred, o.cert, o.key,
							 GNUTLS_X509_FMT_PEM)
		    < 0)
			return -1;
		/* KTLS_BENCH_NO_RECV_FILE=1: recv + write() instead, to
		 * compare in the same run */
		if (!getenv("KTLS_BENCH_NO_RECV_FILE"))
			*(void **)&recv_file_fn =
			    dlsym(RTLD_DEFAULT, "gnutls_record_recv_file");
		return 0;
	}
	sctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!sctx)
		return -1;
	int v = o.tls12 ? TLS1_2_VERSION : TLS1_3_VERSION;
	SSL_CTX_set_min_proto_version(sctx, v);
	SSL_CTX_set_max_proto_version(sctx, v);
	if (o.tls12 ? !SSL_CTX_set_cipher_list(sctx, o.c->ossl12)
	    : !SSL_CTX_set_ciphersuites(sctx, o.c->ossl13))
		return -1;
	SSL_CTX_set_num_tickets(sctx, 0);
	if (o.ktls)
		SSL_CTX_set_options(sctx, SSL_OP_ENABLE_KTLS);
	if (server &&
	    (SSL_CTX_use_certificate_chain_file(sctx, o.cert) != 1 ||
	     SSL_CTX_use_PrivateKey_file(sctx, o.key, SSL_FILETYPE_PEM) != 1))
		return -1;
	return 0;
}

static int conn_open(struct conn *c, int server)
{
	if (o.plain)
		return 0;
	if (!o.openssl) {
		char prio[200];
		const char *err;
		int ret;

		snprintf(prio, sizeof(prio),
			 "NORMAL:-VERS-ALL:+VERS-TLS1.%d:-CIPHER-ALL:+%s",
			 o.tls12 ? 2 : 3, o.c->gnutls);
		if (gnutls_init(&c->gs, (server ? GNUTLS_SERVER : GNUTLS_CLIENT)
				| GNUTLS_NO_TICKETS) < 0)
			return -1;
		if (gnutls_priority_set_direct(c->gs, prio, &err) < 0 ||
		    gnutls_credentials_set(c->gs, GNUTLS_CRD_CERTIFICATE,
					   gcred) < 0)
			return -1;
		gnutls_transport_set_int(c->gs, c->fd);
		do
			ret = gnutls_handshake(c->gs);
		while (ret < 0 && !gnutls_error_is_fatal(ret));
		if (ret < 0) {
			fail("handshake: %s", gnutls_strerror(ret));
			return -1;
		}
		if (gnutls_cipher_get(c->gs) == GNUTLS_CIPHER_UNKNOWN)
			return -1;
		ktls_flags_now(c->gs);
		me.ktls_tx0 = me.ktls_tx;
		me.ktls_rx0 = me.ktls_rx;
		return 0;
	}
	c->ssl = SSL_new(sctx);
	if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1)
		return -1;
	if ((server ? SSL_accept(c->ssl) : SSL_connect(c->ssl)) != 1) {
		unsigned long e = ERR_get_error();
		fail("handshake: %s", ERR_error_string(e, NULL));
		return -1;
	}
	me.ktls_tx = me.ktls_tx0 = BIO_get_ktls_send(SSL_get_wbio(c->ssl)) ? 1 : 0;
	me.ktls_rx = me.ktls_rx0 = BIO_get_ktls_recv(SSL_get_rbio(c->ssl)) ? 1 : 0;
	return 0;
}

static ssize_t conn_send(struct conn *c, const void *b, size_t n)
{
	me.calls++;
	if (o.plain) {
		ssize_t r = send(c->fd, b, n, 0);
		if (r < 0)
			fail("send: %s", strerror(errno));
		return r;
	}
	if (!o.openssl) {
		ssize_t r;
		do
			r = gnutls_record_send(c->gs, b, n);
		while (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED);
		if (r < 0)
			fail("send: %s", gnutls_strerror(r));
		return r;
	}
	size_t w = 0;
	if (SSL_write_ex(c->ssl, b, n, &w) != 1) {
		fail("SSL_write failed");
		return -1;
	}
	return w;
}

static ssize_t conn_recv(struct conn *c, void *b, size_t n)
{
	me.calls++;
	if (o.plain) {
		ssize_t r = recv(c->fd, b, n, 0);
		if (r < 0)
			fail("recv: %s", strerror(errno));
		return r;
	}
	if (!o.openssl) {
		ssize_t r;
		do
			r = gnutls_record_recv(c->gs, b, n);
		while (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED);
		if (r < 0)
			fail("recv: %s", gnutls_strerror(r));
		return r;
	}
	size_t got = 0;
	int r = SSL_read_ex(c->ssl, b, n, &got);
	if (r != 1) {
		if (SSL_get_error(c->ssl, r) == SSL_ERROR_ZERO_RETURN)
			return 0;
		fail("SSL_read failed");
		return -1;
	}
	return got;
}

static int send_all(struct conn *c, const unsigned char *b, size_t n)
{
	while (n > 0) {
		ssize_t r = conn_send(c, b, n);
		if (r <= 0)
			return -1;
		b += r;
		n -= r;
	}
	return 0;
}

static int recv_all(struct conn *c, unsigned char *b, size_t n)
{
	while (n > 0) {
		ssize_t r = conn_recv(c, b, n);
		if (r <= 0) {
			if (r == 0)
				fail("early EOF");
			return -1;
		}
		b += r;
		n -= r;
	}
	return 0;
}

/* Sends the whole file (fd at offset 0) to the peer. */
static int conn_send_file(struct conn *c, int fd, unsigned char *buf)
{
	uint64_t left = o.size;
	off_t off = 0;

	if (o.plain) {
		snprintf(me.path, sizeof(me.path), "sendfile");
		while (left > 0) {
			me.calls++;
			ssize_t r = sendfile(c->fd, fd, &off, left);
			if (r <= 0) {
				fail("sendfile: %s", strerror(errno));
				return -1;
			}
			left -= r;
		}
		return 0;
	}
	if (!o.openssl) {
		snprintf(me.path, sizeof(me.path), "send_file");
		while (left > 0) {
			me.calls++;
			ssize_t r = gnutls_record_send_file(c->gs, fd, &off,
							    left);
			if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
				continue;
			if (r <= 0) {
				fail("send_file: %s", gnutls_strerror(r));
				return -1;
			}
			left -= r;
		}
		return 0;
	}
	if (me.ktls_tx) {
		snprintf(me.path, sizeof(me.path), "SSL_sendfile");
		while (left > 0) {
			me.calls++;
			ossl_ssize_t r = SSL_sendfile(c->ssl, fd, off, left, 0);
			if (r <= 0) {
				fail("SSL_sendfile failed");
				return -1;
			}
			off += r;
			left -= r;
		}
		return 0;
	}
	/* OpenSSL without KTLS has no sendfile: what an application does */
	snprintf(me.path, sizeof(me.path), "read+write");
	while (left > 0) {
		size_t n = left < o.chunk ? left : o.chunk;
		ssize_t r = read(fd, buf, n);
		if (r <= 0) {
			fail("read: %s", r < 0 ? strerror(errno) : "EOF");
			return -1;
		}
		if (send_all(c, buf, r) < 0)
			return -1;
		left -= r;
	}
	return 0;
}

/* ---- the two sides ---- */

static int make_file(const char *path, unsigned char *buf)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -1;
	unlink(path);
	for (uint64_t p = 0; p < o.size;) {
		size_t n = o.size - p < o.chunk ? o.size - p : o.chunk;
		fill(buf, n, p);
		if (write(fd, buf, n) != (ssize_t)n) {
			close(fd);
			return -1;
		}
		p += n;
	}
	lseek(fd, 0, SEEK_SET);
	return fd;
}

static void client(int fd)
{
	struct conn c = {.fd = fd };
	size_t bsz = o.chunk > o.msg ? o.chunk : o.msg;
	unsigned char *buf, *all = NULL;
	int ffd = -1;

	if (o.mode == M_MIXED && bsz < MIXED_MAX)
		bsz = MIXED_MAX;
	buf = malloc(bsz);
	if (buf && o.mode == M_BULK && o.verify_after) {
		/* the whole stream, generated before the clock starts */
		all = big_buffer(o.size);
		if (all)
			fill(all, o.size, 0);
		else
			buf = NULL;
	}

	if (!buf || lib_init(0) < 0) {
		fail("client init");
		return;
	}
	if (o.mode == M_SENDFILE || o.mode == M_RECVFILE) {
		char path[300];
		snprintf(path, sizeof(path), "%s/ktls-bench-src.XXXXXX",
			 o.tmpdir);
		ffd = mkstemp(path);
		if (ffd >= 0) {
			close(ffd);
			ffd = make_file(path, buf);
		}
		if (ffd < 0) {
			fail("source file: %s", strerror(errno));
			return;
		}
	}
	/* for profilers started with a delay (perf record -D): the file
	 * exists, the data phase has not begun */
	if (getenv("KTLS_BENCH_PAUSE_MS"))
		usleep(atoi(getenv("KTLS_BENCH_PAUSE_MS")) * 1000);
	if (conn_open(&c, 0) < 0) {
		fail("client handshake");
		return;
	}
	phase_start();
	switch (o.mode) {
	case M_BULK:
		snprintf(me.path, sizeof(me.path), "send");
		int corking = o.cork > 1 && !o.openssl && !o.plain;
		if (corking)
			snprintf(me.path, sizeof(me.path), "send x%u corked",
				 o.cork);
		for (uint64_t p = 0, i = 0; p < o.size && !me.failed; i++) {
			size_t n = o.size - p < o.chunk ? o.size - p : o.chunk;
			if (o.verify)
				fill(buf, n, p);
			if (corking && i % o.cork == 0)
				gnutls_record_cork(c.gs);
			if (send_all(&c, all ? all + p : buf, n) < 0)
				break;
			p += n;
			if (corking && (i % o.cork == o.cork - 1 || p == o.size)) {
				int r = gnutls_record_uncork(c.gs,
							     GNUTLS_RECORD_WAIT);
				if (r < 0) {
					fail("uncork: %s", gnutls_strerror(r));
					break;
				}
			}
		}
		break;
	case M_SENDFILE:
	case M_RECVFILE:
		conn_send_file(&c, ffd, buf);
		break;
	case M_RR:
		snprintf(me.path, sizeof(me.path), "rr");
		fill(buf, o.msg, 0);
		for (unsigned long i = 0; i < o.count && !me.failed; i++) {
			if (send_all(&c, buf, o.msg) < 0 ||
			    recv_all(&c, buf, o.msg) < 0)
				break;
			me.bytes += o.msg;
		}
		check(buf, o.msg, 0);
		break;
	case M_MIXED:{
			unsigned char req[MIXED_REQ], rep[MIXED_REPLY];
			uint64_t pos_w = 0, pos_r = 0;

			snprintf(me.path, sizeof(me.path), "nbd-like");
			for (unsigned long i = 0; i < o.count && !me.failed;
			     i++) {
				uint32_t len = mixed_len(i);
				int w = mixed_is_write(i);

				memset(req, 0, sizeof(req));
				req[0] = w ? 'W' : 'R';
				memcpy(req + 4, &len, 4);
				if (send_all(&c, req, sizeof(req)) < 0)
					break;
				if (w) {
					if (o.verify)
						fill(buf, len, pos_w);
					if (send_all(&c, buf, len) < 0 ||
					    recv_all(&c, rep, sizeof(rep)) < 0)
						break;
					pos_w += len;
				} else {
					if (recv_all(&c, rep, sizeof(rep)) < 0 ||
					    recv_all(&c, buf, len) < 0)
						break;
					check(buf, len, pos_r);
					pos_r += len;
				}
				me.bytes += len;
			}
			break;
		}
	default:
		break;
	}
	phase_end();
	if (!o.openssl && !o.plain)
		ktls_flags_now(c.gs);
	/* no close_notify: the server reports through the pipe instead */
}

static void server(int fd)
{
	struct conn c = {.fd = fd };
	size_t bsz = o.chunk > MIN_RBUF ? o.chunk : MIN_RBUF;
	unsigned char *buf;
	int ofd = -1;

	if (bsz < o.msg)
		bsz = o.msg;
	if (o.mode == M_MIXED && bsz < MIXED_MAX)
		bsz = MIXED_MAX;
	buf = malloc(bsz);
	unsigned char *all = NULL;
	if (buf && o.verify_after && o.mode != M_RECVFILE) {
		all = big_buffer(o.size);
		if (!all)
			buf = NULL;
	}
	if (!buf || lib_init(1) < 0) {
		fail("server init");
		return;
	}
	if (o.mode == M_RECVFILE) {
		char path[300];
		snprintf(path, sizeof(path), "%s/ktls-bench-dst.XXXXXX",
			 o.tmpdir);
		ofd = mkstemp(path);
		if (ofd < 0) {
			fail("dest file: %s", strerror(errno));
			return;
		}
		unlink(path);
	}
	if (conn_open(&c, 1) < 0) {
		fail("server handshake");
		return;
	}
	phase_start();
	if (o.mode == M_RR) {
		snprintf(me.path, sizeof(me.path), "rr");
		for (unsigned long i = 0; i < o.count && !me.failed; i++) {
			if (recv_all(&c, buf, o.msg) < 0)
				break;
			check(buf, o.msg, 0);
			if (send_all(&c, buf, o.msg) < 0)
				break;
			me.bytes += o.msg;
		}
	} else if (o.mode == M_MIXED) {
		unsigned char req[MIXED_REQ], rep[MIXED_REPLY] = { 'A' };
		uint64_t pos_w = 0, pos_r = 0;

		snprintf(me.path, sizeof(me.path), "nbd-like");
		for (unsigned long i = 0; i < o.count && !me.failed; i++) {
			uint32_t len;

			if (recv_all(&c, req, sizeof(req)) < 0)
				break;
			memcpy(&len, req + 4, 4);
			if (len != mixed_len(i) ||
			    req[0] != (mixed_is_write(i) ? 'W' : 'R')) {
				fail("bad request %lu", i);
				break;
			}
			if (req[0] == 'W') {
				if (recv_all(&c, buf, len) < 0)
					break;
				check(buf, len, pos_w);
				pos_w += len;
				if (send_all(&c, rep, sizeof(rep)) < 0)
					break;
			} else {
				/* the reply header, then the data: two
				 * writes, as an NBD server does */
				if (send_all(&c, rep, sizeof(rep)) < 0)
					break;
				if (o.verify)
					fill(buf, len, pos_r);
				if (send_all(&c, buf, len) < 0)
					break;
				pos_r += len;
			}
			me.bytes += len;
		}
	} else if (o.mode == M_RECVFILE && !o.openssl && recv_file_fn) {
		off_t off = 0;
		snprintf(me.path, sizeof(me.path), "recv_file");
		while (me.bytes < o.size) {
			me.calls++;
			ssize_t r = recv_file_fn(c.gs, ofd, &off,
						 o.size - me.bytes);
			if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
				continue;
			if (r <= 0) {
				fail("recv_file: %s", r ? gnutls_strerror(r)
				     : "early EOF");
				break;
			}
			me.bytes += r;
		}
	} else {
		snprintf(me.path, sizeof(me.path),
			 o.mode == M_RECVFILE ? "recv+write" : "recv");
		while (me.bytes < o.size) {
			size_t want = bsz;
			unsigned char *to = buf;
			if (all) {	/* --verify-after: keep the stream */
				to = all + me.bytes;
				if (want > o.size - me.bytes)
					want = o.size - me.bytes;
			}
			ssize_t r = conn_recv(&c, to, want);
			if (r <= 0) {
				if (r == 0)
					fail("early EOF after %" PRIu64,
					     me.bytes);
				break;
			}
			check(to, r, me.bytes);
			if (ofd >= 0 && write(ofd, buf, r) != r) {
				fail("write: %s", strerror(errno));
				break;
			}
			me.bytes += r;
		}
	}
	phase_end();
	if (!o.openssl && !o.plain)
		ktls_flags_now(c.gs);
	if (all && !me.failed)	/* --verify-after, the clock stopped */
		check_bytes(all, o.size, 0);
	if (ofd >= 0 && (o.verify || o.verify_after) && !me.failed) {
		/* read the file back: what recv_file wrote must be the stream */
		struct stat st;
		if (fstat(ofd, &st) < 0 || (uint64_t)st.st_size != o.size)
			fail("dest file size %lld", (long long)st.st_size);
		lseek(ofd, 0, SEEK_SET);
		for (uint64_t p = 0; p < o.size && !me.failed;) {
			ssize_t r = read(ofd, buf, bsz);
			if (r <= 0) {
				fail("dest file short");
				break;
			}
			check_bytes(buf, r, p);
			p += r;
		}
	}
}

/* ---- AF_ALG: the kernel AEAD floor ---- */

static void afalg(void)
{
	struct sockaddr_alg sa = {.salg_family = AF_ALG,.salg_type = "aead" };
	unsigned char key[32] = { 1 }, *in, *out;
	size_t aad = 13, tag = 16;
	int tfm, op, pp[2] = { -1, -1 };

	if (o.splice && pipe(pp) < 0) {
		fail("pipe: %s", strerror(errno));
		return;
	}
	snprintf((char *)sa.salg_name, sizeof(sa.salg_name), "%s", o.c->alg);
	snprintf(me.path, sizeof(me.path), o.splice ? "af_alg-splice"
		 : "af_alg-copy");
	in = malloc(aad + RECORD);
	out = malloc(aad + RECORD + tag);
	tfm = socket(AF_ALG, SOCK_SEQPACKET, 0);
	if (!in || !out || tfm < 0 ||
	    bind(tfm, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    setsockopt(tfm, SOL_ALG, ALG_SET_KEY, key, o.c->keylen) < 0 ||
	    setsockopt(tfm, SOL_ALG, ALG_SET_AEAD_AUTHSIZE, NULL, tag) < 0 ||
	    (op = accept(tfm, NULL, 0)) < 0) {
		fail("AF_ALG %s: %s", o.c->alg, strerror(errno));
		return;
	}
	fill(in, aad + RECORD, 0);
	me.ktls_tx = me.ktls_rx = 0;
	phase_start();
	for (uint64_t p = 0; p < o.size && !me.failed;) {
		size_t n = o.size - p < RECORD ? o.size - p : RECORD;
		char cbuf[CMSG_SPACE(4) + CMSG_SPACE(4 + 16) + CMSG_SPACE(4)]
		    = { 0 };
		struct iovec iov = {.iov_base = in,.iov_len = aad + n };
		struct msghdr mh = {.msg_control = cbuf,
			.msg_controllen = sizeof(cbuf),.msg_iov = &iov,
			.msg_iovlen = 1
		};
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		struct af_alg_iv *iv;

		cm->cmsg_level = SOL_ALG;
		cm->cmsg_type = ALG_SET_OP;
		cm->cmsg_len = CMSG_LEN(4);
		*(uint32_t *)CMSG_DATA(cm) = ALG_OP_ENCRYPT;
		cm = CMSG_NXTHDR(&mh, cm);
		cm->cmsg_level = SOL_ALG;
		cm->cmsg_type = ALG_SET_IV;
		cm->cmsg_len = CMSG_LEN(4 + o.c->ivlen);
		iv = (void *)CMSG_DATA(cm);
		iv->ivlen = o.c->ivlen;
		memset(iv->iv, 0, o.c->ivlen);
		if (o.c->ivlen == 16)	/* CCM: L' = 3, as the kernel's TLS */
			iv->iv[0] = 2;
		memcpy(iv->iv + o.c->ivlen - 8, &p, 8);
		cm = CMSG_NXTHDR(&mh, cm);
		cm->cmsg_level = SOL_ALG;
		cm->cmsg_type = ALG_SET_AEAD_ASSOCLEN;
		cm->cmsg_len = CMSG_LEN(4);
		*(uint32_t *)CMSG_DATA(cm) = aad;
		me.calls++;
		if (o.splice) {
			/* the AAD by sendmsg, the record's pages spliced: the
			 * kernel reads them in place, as KTLS does */
			struct iovec viov = {.iov_base = in + aad,.iov_len = n };
			iov.iov_len = aad;
			if (sendmsg(op, &mh, MSG_MORE) != (ssize_t)aad ||
			    vmsplice(pp[1], &viov, 1, 0) != (ssize_t)n ||
			    splice(pp[0], NULL, op, NULL, n, 0) != (ssize_t)n) {
				fail("AF_ALG splice: %s", strerror(errno));
				break;
			}
		} else if (sendmsg(op, &mh, 0) != (ssize_t)(aad + n)) {
			fail("AF_ALG sendmsg: %s", strerror(errno));
			break;
		}
		if (read(op, out, aad + n + tag) != (ssize_t)(aad + n + tag)) {
			fail("AF_ALG encrypt: %s", strerror(errno));
			break;
		}
		p += n;
		me.bytes += n;
	}
	phase_end();
}

/* ---- main ---- */

static void usage(void)
{
	fprintf(stderr,
		"usage: ktls-bench --lib gnutls|openssl|plain [--ktls on|off] "
		"[--tls12|--tls13]\n"
		"  [--cipher aes-128-gcm|aes-256-gcm|aes-128-ccm|"
		"chacha20-poly1305]\n"
		"  --mode bulk|sendfile|recvfile|rr|mixed|afalg [--size BYTES] "
		"[--chunk BYTES]\n"
		"  [--msg BYTES] [--count N] --cert PEM --key PEM "
		"[--tmpdir DIR] [--label S] [--verify] [--verify-after]\n"
		"  [--splice] [--cork N] [--seed N]\n"
		"sizes take K and M suffixes\n");
	exit(2);
}

static uint64_t parse_size(const char *s)
{
	char *end;
	uint64_t v = strtoull(s, &end, 10);
	if (*end == 'K' || *end == 'k')
		v <<= 10, end++;
	else if (*end == 'M' || *end == 'm')
		v <<= 20, end++;
	else if (*end == 'G' || *end == 'g')
		v <<= 30, end++;
	if (*end || v == 0)
		usage();
	return v;
}

static void print_side(const char *name, const struct side *s)
{
	printf("\"%s\":{\"user_s\":%.6f,\"sys_s\":%.6f,\"cpu_s\":%.6f,"
	       "\"ktls_tx\":%d,\"ktls_rx\":%d,\"ktls_tx0\":%d,\"ktls_rx0\":%d,"
	       "\"path\":\"%s\",\"calls\":%ld}",
	       name, s->user, s->sys, s->user + s->sys, s->ktls_tx, s->ktls_rx,
	       s->ktls_tx0, s->ktls_rx0, s->path, s->calls);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "lib", 1, 0, 'l' }, { "ktls", 1, 0, 'k' },
		{ "tls12", 0, 0, '2' }, { "tls13", 0, 0, '3' },
		{ "cipher", 1, 0, 'c' }, { "mode", 1, 0, 'm' },
		{ "size", 1, 0, 's' }, { "chunk", 1, 0, 'b' },
		{ "msg", 1, 0, 'M' }, { "count", 1, 0, 'n' },
		{ "cert", 1, 0, 'C' }, { "key", 1, 0, 'K' },
		{ "label", 1, 0, 'L' }, { "tmpdir", 1, 0, 'T' },
		{ "verify", 0, 0, 'v' }, { "splice", 0, 0, 'S' },
		{ "verify-after", 0, 0, 'V' }, { "seed", 1, 0, 'e' },
		{ "cork", 1, 0, 'k' + 256 },
		{ 0, 0, 0, 0 }
	};
	int ch, sv[2], pfd[2], lfd, cfd;
	struct sockaddr_in sin = {.sin_family = AF_INET };
	socklen_t slen = sizeof(sin);
	struct side srv = { 0 };
	pid_t pid;
	int one = 1, status = 0;
	unsigned i;

	o.c = &ciphers[0];
	o.tmpdir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	o.label = "";
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'l':
			if (!strcmp(optarg, "openssl"))
				o.openssl = 1;
			else if (!strcmp(optarg, "plain"))
				o.plain = 1;
			else if (strcmp(optarg, "gnutls"))
				usage();
			break;
		case 'k':
			o.ktls = !strcmp(optarg, "on");
			break;
		case '2':
			o.tls12 = 1;
			break;
		case '3':
			o.tls12 = 0;
			break;
		case 'c':
			for (i = 0; i < sizeof(ciphers) / sizeof(ciphers[0]);
			     i++)
				if (!strcmp(optarg, ciphers[i].name))
					break;
			if (i == sizeof(ciphers) / sizeof(ciphers[0]))
				usage();
			o.c = &ciphers[i];
			break;
		case 'm':
			for (i = 0; i < N_MODES; i++)
				if (!strcmp(optarg, mode_names[i]))
					break;
			if (i == N_MODES)
				usage();
			o.mode = i;
			break;
		case 's':
			o.size = parse_size(optarg);
			break;
		case 'b':
			o.chunk = parse_size(optarg);
			break;
		case 'M':
			o.msg = parse_size(optarg);
			break;
		case 'n':
			o.count = strtoul(optarg, NULL, 10);
			break;
		case 'C':
			o.cert = optarg;
			break;
		case 'K':
			o.key = optarg;
			break;
		case 'L':
			o.label = optarg;
			break;
		case 'T':
			o.tmpdir = optarg;
			break;
		case 'v':
			o.verify = 1;
			break;
		case 'V':
			o.verify_after = 1;
			break;
		case 'e':
			o.seed = strtoul(optarg, NULL, 10);
			break;
		case 'S':
			o.splice = 1;
			break;
		case 'k' + 256:
			o.cork = strtoul(optarg, NULL, 10);
			break;
		default:
			usage();
		}
	}
	if (optind != argc || (o.mode != M_AFALG && (!o.cert || !o.key)))
		usage();
	if (o.verify_after && o.mode != M_BULK && o.mode != M_SENDFILE &&
	    o.mode != M_RECVFILE)
		usage();
	if (o.mode == M_MIXED && mixed_setup() < 0) {
		perror("malloc");
		return 1;
	}

	if (o.mode == M_AFALG) {
		afalg();
		srv = me;
		goto report;
	}

	signal(SIGPIPE, SIG_IGN);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(lfd, 1) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &slen) < 0 ||
	    pipe(pfd) < 0) {
		perror("listen");
		return 1;
	}
	(void)sv;
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		close(pfd[0]);
		int fd = accept(lfd, NULL, NULL);
		close(lfd);
		if (fd < 0)
			fail("accept: %s", strerror(errno));
		else {
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				   sizeof(one));
			server(fd);
		}
		if (!me.failed && o.mode != M_RR &&
		    me.bytes != (o.mode == M_MIXED ? mixed_total() : o.size))
			fail("received %" PRIu64 " bytes", me.bytes);
		if (write(pfd[1], &me, sizeof(me)) != sizeof(me))
			_exit(1);
		/* the client closes first, after reading this */
		char x;
		(void)!read(fd, &x, 1);
		_exit(0);
	}
	close(pfd[1]);
	cfd = socket(AF_INET, SOCK_STREAM, 0);
	if (cfd < 0 || connect(cfd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		perror("connect");
		return 1;
	}
	close(lfd);
	setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	client(cfd);
	if (read(pfd[0], &srv, sizeof(srv)) != sizeof(srv))
		fail("no result from the server");
	close(cfd);
	waitpid(pid, &status, 0);

report:;
	struct side *snd = &me, *rcv = &srv;
	uint64_t bytes = o.mode == M_RR ? me.bytes : srv.bytes;
	double el = srv.t1 - me.t0;
	const char *err = me.failed ? me.err : srv.failed ? srv.err : "";

	if (o.mode == M_RR || (o.mode == M_MIXED && me.t1 > srv.t1))
		el = me.t1 - me.t0;
	printf("{\"label\":\"%s\",\"lib\":\"%s\",\"ktls_req\":%d,"
	       "\"tls\":\"1.%d\",\"cipher\":\"%s\",\"mode\":\"%s\","
	       "\"size\":%" PRIu64 ",\"chunk\":%zu,\"cork\":%u,"
	       "\"msg\":%zu,\"count\":%lu,\"seed\":%lu,"
	       "\"bytes\":%" PRIu64 ",\"elapsed_s\":%.6f,\"mbps\":%.3f,",
	       o.label, o.plain ? "plain" : o.openssl ? "openssl" : "gnutls",
	       o.ktls,
	       o.tls12 ? 2 : 3, o.c->name, mode_names[o.mode], o.size,
	       o.chunk, o.cork, o.msg, o.count, o.seed, bytes, el,
	       el > 0 ? bytes / el / 1e6 : 0.0);
	if (o.mode == M_RR)
		printf("\"latency_us\":%.3f,\"tps\":%.1f,",
		       o.count ? el / o.count * 1e6 : 0.0,
		       el > 0 ? o.count / el : 0.0);
	if (o.mode == M_AFALG) {
		print_side("sender", snd);
	} else {
		print_side("sender", snd);
		printf(",");
		print_side("receiver", rcv);
	}
	printf(",\"ok\":%s,\"error\":\"%s\"}\n", *err ? "false" : "true", err);
	return *err ? 1 : 0;
}
