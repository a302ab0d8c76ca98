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

/* ktls-common: see ktls-common.h. */

#define _GNU_SOURCE

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <gnutls/socket.h>

#include "ktls-common.h"

/* ---- recv_file ---- */

typedef ssize_t (*recv_file_fn)(gnutls_session_t, int, off_t *, size_t);

static recv_file_fn recv_file_lookup(void)
{
	static recv_file_fn fn;
	static int looked;

	if (!__atomic_load_n(&looked, __ATOMIC_ACQUIRE)) {
		*(void **)&fn = dlsym(RTLD_DEFAULT, "gnutls_record_recv_file");
		__atomic_store_n(&looked, 1, __ATOMIC_RELEASE);
	}
	return fn;
}

int kt_have_recv_file(void)
{
	return recv_file_lookup() != NULL;
}

ssize_t kt_recv_file(gnutls_session_t s, int fd, off_t *offset, size_t count)
{
	recv_file_fn fn = recv_file_lookup();

	return fn ? fn(s, fd, offset, count) : GNUTLS_E_UNIMPLEMENTED_FEATURE;
}

/* ---- failures ---- */

static unsigned fail_count, fail_max;

int kt_fail(const char *fmt, ...)
{
	va_list ap;
	char msg[512];
	unsigned n;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n = __atomic_add_fetch(&fail_count, 1, __ATOMIC_SEQ_CST);
	if (fail_max == 0 || n <= fail_max) {
		/* one write: lines of several threads do not mix */
		fprintf(stderr, "FAIL: %s\n", msg);
		fflush(stderr);
	}
	return -1;
}

int kt_gfail(const char *what, int ret)
{
	return kt_fail("%s: %s", what, gnutls_strerror(ret));
}

unsigned kt_failures(void)
{
	return __atomic_load_n(&fail_count, __ATOMIC_SEQ_CST);
}

void kt_fail_limit(unsigned max)
{
	fail_max = max;
}

const char *kt_ename(int code)
{
	const char *n = gnutls_strerror_name(code);

	return n ? n : "?";
}

int kt_error_code(const char *name, int *code)
{
	int i;

	for (i = -1; i > -500; i--) {
		const char *n = gnutls_strerror_name(i);

		if (n && strcmp(n, name) == 0) {
			*code = i;
			return 0;
		}
	}
	return -1;
}

/* ---- credentials ---- */

#define CHECK KT_CHECK

int kt_make_cert(gnutls_x509_crt_t *pcrt, gnutls_x509_privkey_t *pkey)
{
	gnutls_x509_crt_t crt = NULL;
	gnutls_x509_privkey_t key = NULL;
	time_t t = time(NULL);
	const char *err = NULL;
	int ret = -1;

	CHECK(gnutls_x509_privkey_init(&key));
	CHECK(gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
		GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0));
	CHECK(gnutls_x509_crt_init(&crt));
	CHECK(gnutls_x509_crt_set_version(crt, 3));
	CHECK(gnutls_x509_crt_set_serial(crt, "\x01", 1));
	CHECK(gnutls_x509_crt_set_activation_time(crt, t - 3600));
	CHECK(gnutls_x509_crt_set_expiration_time(crt, t + 86400));
	CHECK(gnutls_x509_crt_set_dn(crt, "CN=" KT_HOSTNAME, &err));
	CHECK(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME,
		KT_HOSTNAME, strlen(KT_HOSTNAME), GNUTLS_FSAN_SET));
	CHECK(gnutls_x509_crt_set_key(crt, key));
	CHECK(gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE));
	CHECK(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0));
	*pcrt = crt;
	*pkey = key;
	return 0;
 out:
	if (crt)
		gnutls_x509_crt_deinit(crt);
	if (key)
		gnutls_x509_privkey_deinit(key);
	return ret;
}

int kt_make_x509_creds(gnutls_certificate_credentials_t *scred,
		       gnutls_certificate_credentials_t *ccred)
{
	gnutls_x509_crt_t crt = NULL;
	gnutls_x509_privkey_t key = NULL;
	int ret = -1;

	*scred = NULL;
	if (ccred)
		*ccred = NULL;
	if (kt_make_cert(&crt, &key) < 0)
		return -1;
	CHECK(gnutls_certificate_allocate_credentials(scred));
	CHECK(gnutls_certificate_set_x509_key(*scred, &crt, 1, key));
	if (ccred) {
		CHECK(gnutls_certificate_allocate_credentials(ccred));
		CHECK(gnutls_certificate_set_x509_trust(*ccred, &crt, 1));
	}
	ret = 0;
 out:
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(key);
	return ret;
}

static const unsigned char psk_key[32] = {
	0x6b, 0x74, 0x6c, 0x73, 0x2d, 0x63, 0x6f, 0x6d,
	0x6d, 0x6f, 0x6e, 0x2d, 0x70, 0x73, 0x6b, 0x2d,
	0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
	0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10,
};
static char psk_user[128];

static int psk_lookup(gnutls_session_t s, const char *user,
		      gnutls_datum_t *key)
{
	(void)s;
	if (strcmp(user, psk_user) != 0)
		return -1;
	key->data = gnutls_malloc(sizeof(psk_key));
	if (key->data == NULL)
		return -1;
	memcpy(key->data, psk_key, sizeof(psk_key));
	key->size = sizeof(psk_key);
	return 0;
}

int kt_make_psk_creds(gnutls_psk_server_credentials_t *scred,
		      gnutls_psk_client_credentials_t *ccred,
		      const char *user)
{
	const gnutls_datum_t key = { (unsigned char *)psk_key,
				     sizeof(psk_key) };
	int ret = -1;

	*scred = NULL;
	*ccred = NULL;
	if (strlen(user) >= sizeof(psk_user))
		return kt_fail("PSK user name too long");
	strcpy(psk_user, user);
	CHECK(gnutls_psk_allocate_server_credentials(scred));
	gnutls_psk_set_server_credentials_function(*scred, psk_lookup);
	CHECK(gnutls_psk_allocate_client_credentials(ccred));
	CHECK(gnutls_psk_set_client_credentials(*ccred, user, &key,
						GNUTLS_PSK_KEY_RAW));
	ret = 0;
 out:
	return ret;
}

/* ---- sockets ---- */

void kt_loopback_addr(struct sockaddr_in *addr, unsigned port)
{
	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	addr->sin_port = htons(port);
}

int kt_loopback_listen(struct sockaddr_in *addr, unsigned port,
		       int backlog)
{
	socklen_t len = sizeof(*addr);
	int fd, one = 1, e;

	kt_loopback_addr(addr, port);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)addr, sizeof(*addr)) < 0 ||
	    listen(fd, backlog) < 0 ||
	    getsockname(fd, (struct sockaddr *)addr, &len) < 0) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int kt_connect(const struct sockaddr_in *addr, double retry_s)
{
	double give_up = kt_now() + retry_s;
	struct timespec pause = { 0, 50 * 1000 * 1000 };
	int fd, e;

	for (;;) {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0)
			return -1;
		if (connect(fd, (const struct sockaddr *)addr,
			    sizeof(*addr)) == 0)
			return fd;
		e = errno;
		close(fd);
		errno = e;
		if (e != ECONNREFUSED || kt_now() > give_up)
			return -1;
		nanosleep(&pause, NULL);
	}
}

static int io_all(int fd, void *buf, size_t len, int out)
{
	char *p = buf;
	ssize_t ret;

	while (len > 0) {
		ret = out ? write(fd, p, len) : read(fd, p, len);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret <= 0)
			return -1;
		p += ret;
		len -= ret;
	}
	return 0;
}

int kt_write_all(int fd, const void *buf, size_t len)
{
	return io_all(fd, (void *)buf, len, 1);
}

int kt_read_all(int fd, void *buf, size_t len)
{
	return io_all(fd, buf, len, 0);
}

/* ---- transport ---- */

static int sock_of(gnutls_transport_ptr_t p)
{
	return (int)(intptr_t)p;
}

static ssize_t user_push(gnutls_transport_ptr_t p, const void *d, size_t n)
{
	return send(sock_of(p), d, n, MSG_NOSIGNAL);
}

static ssize_t user_pull(gnutls_transport_ptr_t p, void *d, size_t n)
{
	return recv(sock_of(p), d, n, 0);
}

static int user_pull_timeout(gnutls_transport_ptr_t p, unsigned ms)
{
	struct pollfd pfd = { .fd = sock_of(p), .events = POLLIN };

	return poll(&pfd, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)ms);
}

void kt_set_user_transport(gnutls_session_t s, int fd)
{
	gnutls_transport_set_push_function(s, user_push);
	gnutls_transport_set_pull_function(s, user_pull);
	gnutls_transport_set_pull_timeout_function(s, user_pull_timeout);
	gnutls_transport_set_ptr(s, (gnutls_transport_ptr_t)(intptr_t)fd);
}

/* ---- the deterministic stream ---- */

#define GEN_BUF (64 << 10)

static uint64_t xorshift64s(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * UINT64_C(0x2545F4914F6CDD1D);
}

void kt_stream_init(struct kt_stream *st, uint64_t seed)
{
	memset(st, 0, sizeof(*st));
	st->state = seed;
}

void kt_stream_fill(struct kt_stream *st, void *out, size_t len)
{
	uint8_t *buf = out;
	uint64_t v;
	size_t n;

	while (len > 0) {
		if (st->avail == 0 && len >= sizeof(v)) {
			v = xorshift64s(&st->state);
			memcpy(buf, &v, sizeof(v));
			buf += sizeof(v);
			len -= sizeof(v);
			continue;
		}
		if (st->avail == 0) {
			st->word = xorshift64s(&st->state);
			st->avail = sizeof(st->word);
		}
		n = len < st->avail ? len : st->avail;
		memcpy(buf, (const uint8_t *)&st->word +
		       sizeof(st->word) - st->avail, n);
		st->avail -= n;
		buf += n;
		len -= n;
	}
}

size_t kt_stream_check(struct kt_stream *st, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint8_t want[4096];
	size_t done = 0, n, i, bad = 0;

	while (done < len) {
		n = len - done < sizeof(want) ? len - done : sizeof(want);
		kt_stream_fill(st, want, n);
		if (bad == 0 && memcmp(p + done, want, n) != 0) {
			for (i = 0; p[done + i] == want[i]; i++)
				;
			bad = done + i + 1;
		}
		done += n;
	}
	return bad;
}

void kt_stream_skip(struct kt_stream *st, uint64_t len)
{
	uint8_t scratch[4096];
	size_t n;

	while (len > 0) {
		n = len < sizeof(scratch) ? len : sizeof(scratch);
		kt_stream_fill(st, scratch, n);
		len -= n;
	}
}

int kt_stream_out(struct kt_stream *st, uint64_t len, int fd,
		  gnutls_hash_hd_t h)
{
	uint8_t *buf = malloc(GEN_BUF);
	size_t n;
	int ret = 0;

	if (buf == NULL)
		return kt_fail("out of memory");
	while (len > 0 && ret == 0) {
		n = len < GEN_BUF ? len : GEN_BUF;
		kt_stream_fill(st, buf, n);
		if (fd >= 0 && write(fd, buf, n) != (ssize_t) n)
			ret = kt_fail("write: %s", strerror(errno));
		else if (h && (ret = gnutls_hash(h, buf, n)) < 0)
			ret = kt_gfail("gnutls_hash", ret);
		len -= n;
	}
	free(buf);
	return ret;
}

int kt_stream_hash(uint64_t seed, uint64_t len, int fd,
		   unsigned char hash[KT_HASH_LEN])
{
	struct kt_stream st;
	gnutls_hash_hd_t h;
	int ret;

	ret = gnutls_hash_init(&h, GNUTLS_DIG_SHA256);
	if (ret < 0)
		return kt_gfail("gnutls_hash_init", ret);
	kt_stream_init(&st, seed);
	ret = kt_stream_out(&st, len, fd, h);
	gnutls_hash_deinit(h, hash);
	return ret;
}

void kt_hex(char *out, const unsigned char *h)
{
	int i;

	for (i = 0; i < KT_HASH_LEN; i++)
		sprintf(out + 2 * i, "%02x", h[i]);
}

/* ---- the kernel ---- */

int kt_kernel_can_rekey(void)
{
	const char *env = getenv("KTLS_REKEY");
	struct utsname u;
	unsigned maj = 0, min = 0;

	if (env && strcmp(env, "yes") == 0)
		return 1;
	if (env && strcmp(env, "no") == 0)
		return 0;
	if (uname(&u) < 0 || sscanf(u.release, "%u.%u", &maj, &min) != 2)
		return 0;
	return maj > 6 || (maj == 6 && min >= 14);
}

unsigned kt_slow(void)
{
	static unsigned factor;
	const char *env;

	if (factor == 0) {
		env = getenv("KTLS_TEST_SLOW");
		factor = env ? (unsigned)atoi(env) : 1;
		if (factor < 1 || factor > 100)
			factor = 1;
	}
	return factor;
}

double kt_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- ktls = auto ---- */

#define WARM_SEED_C2S UINT64_C(0x3c6ef372fe94f82b)
#define WARM_SEED_S2C UINT64_C(0xa54ff53a5f1d36f1)
#define WARM_WAIT_MS 30000

unsigned kt_mirror_dirs(unsigned dirs)
{
	return ((dirs & GNUTLS_KTLS_RECV) ? GNUTLS_KTLS_SEND : 0) |
	       ((dirs & GNUTLS_KTLS_SEND) ? GNUTLS_KTLS_RECV : 0);
}

const char *kt_dirs_name(unsigned dirs)
{
	switch (dirs & GNUTLS_KTLS_DUPLEX) {
	case GNUTLS_KTLS_DUPLEX: return "RECV|SEND";
	case GNUTLS_KTLS_RECV: return "RECV";
	case GNUTLS_KTLS_SEND: return "SEND";
	default: return "none";
	}
}

/* GNUTLS_E_AGAIN on a non-blocking socket (or after a post-handshake
 * message on a blocking one): wait for the direction GnuTLS waits for */
static int warm_wait(gnutls_session_t s, int fd)
{
	struct pollfd p = { .fd = fd, .events =
		gnutls_record_get_direction(s) ? POLLOUT : POLLIN };
	int r;

	if (gnutls_record_check_pending(s) > 0)
		return 0;
	do
		r = poll(&p, 1, WARM_WAIT_MS);
	while (r < 0 && errno == EINTR);
	return r > 0 ? 0 : kt_fail("warm-up: no progress in %d ms", WARM_WAIT_MS);
}

static int warm_send(gnutls_session_t s, int fd, uint64_t seed)
{
	static __thread unsigned char buf[KT_WARM_RECORD];
	struct kt_stream st;
	ssize_t n;

	kt_stream_init(&st, seed);
	for (unsigned i = 0; i < KT_WARM_RECORDS; i++) {
		size_t done = 0;

		kt_stream_fill(&st, buf, sizeof(buf));
		while (done < sizeof(buf)) {
			/* a retry after AGAIN: the same arguments */
			n = gnutls_record_send(s, buf + done, sizeof(buf) - done);
			if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
				if (warm_wait(s, fd) < 0)
					return -1;
				continue;
			}
			if (n <= 0)
				return kt_fail("warm-up: send of record %u: %s", i,
					       n < 0 ? kt_ename((int)n) : "0");
			done += n;
		}
	}
	return 0;
}

static int warm_recv(gnutls_session_t s, int fd, uint64_t seed)
{
	static __thread unsigned char buf[KT_WARM_RECORD * 2];
	struct kt_stream st;
	uint64_t left = (uint64_t)KT_WARM_RECORDS * KT_WARM_RECORD, at = 0;
	size_t bad;
	ssize_t n;

	kt_stream_init(&st, seed);
	while (left > 0) {
		n = gnutls_record_recv(s, buf, left < sizeof(buf) ? left : sizeof(buf));
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
			if (warm_wait(s, fd) < 0)
				return -1;
			continue;
		}
		if (n <= 0)
			return kt_fail("warm-up: recv after %" PRIu64 " bytes: %s", at,
				       n < 0 ? kt_ename((int)n) : "EOF");
		bad = kt_stream_check(&st, buf, n);
		if (bad)
			return kt_fail("warm-up: byte %" PRIu64 " differs", at + bad - 1);
		at += n;
		left -= n;
	}
	return 0;
}

int kt_warm(gnutls_session_t s, int fd, int server, int c2s, int s2c)
{
	if (c2s && (server ? warm_recv(s, fd, WARM_SEED_C2S) :
			     warm_send(s, fd, WARM_SEED_C2S)) < 0)
		return -1;
	if (s2c && (server ? warm_send(s, fd, WARM_SEED_S2C) :
			     warm_recv(s, fd, WARM_SEED_S2C)) < 0)
		return -1;
	return 0;
}

int kt_expect_ktls(gnutls_session_t s, unsigned want, const char *what)
{
	unsigned got = gnutls_transport_is_ktls_enabled(s);

	if (got == want)
		return 0;
	return kt_fail("%s: gnutls_transport_is_ktls_enabled() = %u (%s), expected %u (%s)",
		       what, got, kt_dirs_name(got), want, kt_dirs_name(want));
}
