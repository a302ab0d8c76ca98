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
 * ktls-common: what the test programs share (linked into each of them,
 * never into the LD_PRELOAD shim ktls-fault.so).
 *
 *   failures      kt_fail() / kt_gfail(), GnuTLS error names both ways
 *   credentials   an in-memory ECDSA P-256 certificate for "localhost",
 *                 x509 and PSK credential pairs
 *   sockets       a TCP listener on 127.0.0.1, a connect with retry
 *   transport     kt_set_user_transport(): custom push/pull functions, so
 *                 the session stays in userspace even with ktls = true
 *   stream        a deterministic byte stream (xorshift64*, one seed per
 *                 direction; the same bytes however it is cut), checked
 *                 byte by byte or hashed with SHA-256
 *   kernel        kt_kernel_can_rekey(): whether the kernel takes new
 *                 TLS 1.3 keys (KTLS_REKEY, as tests/ktls-suite exports
 *                 it, else Linux >= 6.14)
 *   recv_file     kt_recv_file(): gnutls_record_recv_file(), looked up at
 *                 run time, so the programs also build and run against
 *                 a GnuTLS without it (upstream's, bench/anchor; Debian's
 *                 libgnutls30, tests/interop)
 *   ktls = auto   kt_warm(): full-size records each way, read completely
 *                 and checked, so that each direction moves to the
 *                 kernel mid-session (ktls = auto: 4 full records in a
 *                 row), and the check of what moved
 *
 * All functions are thread-safe except kt_stream_* on the same stream.
 */

#ifndef KTLS_COMMON_H
#define KTLS_COMMON_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

#define KT_HOSTNAME "localhost"
#define KT_HASH_LEN 32		/* SHA-256 */

/* ---- recv_file ---- */

/* Whether the library under test has gnutls_record_recv_file(). */
int kt_have_recv_file(void);
/* gnutls_record_recv_file(s, fd, offset, count), or
 * GNUTLS_E_UNIMPLEMENTED_FEATURE when the library has none. */
ssize_t kt_recv_file(gnutls_session_t s, int fd, off_t *offset, size_t count);

/* ---- failures ---- */

/* Prints "FAIL: <message>" on stderr and counts it; returns -1. */
int kt_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* kt_fail("<what>: <gnutls_strerror(ret)>") */
int kt_gfail(const char *what, int ret);
/* How many kt_fail() calls there were (all threads). */
unsigned kt_failures(void);
/* Print at most this many FAIL lines (later ones are only counted);
 * 0 (default): all. */
void kt_fail_limit(unsigned max);

/* Runs a GnuTLS call; if it fails: ret = kt_gfail(), goto out. */
#define KT_CHECK(call) do { \
		int _r = (call); \
		if (_r < 0) { \
			ret = kt_gfail(#call, _r); \
			goto out; \
		} \
	} while (0)

/* "GNUTLS_E_..." of a GnuTLS error code, "?" for an unknown one. */
const char *kt_ename(int code);
/* The code of a GnuTLS error name ("GNUTLS_E_PUSH_ERROR"): 0 and *code,
 * or -1 if there is no such error. */
int kt_error_code(const char *name, int *code);

/* ---- credentials ---- */

/* A self-signed ECDSA P-256 certificate for KT_HOSTNAME (usable with
 * TLS 1.3 and the TLS 1.2 ECDHE-ECDSA suites). */
int kt_make_cert(gnutls_x509_crt_t *crt, gnutls_x509_privkey_t *key);
/* Server credentials with a fresh kt_make_cert() certificate and key;
 * client credentials (ccred may be NULL) that trust exactly it. */
int kt_make_x509_creds(gnutls_certificate_credentials_t *scred,
		       gnutls_certificate_credentials_t *ccred);
/* A PSK pair: the client has user with a fixed 32-byte key, the server
 * knows that key for that user only. */
int kt_make_psk_creds(gnutls_psk_server_credentials_t *scred,
		      gnutls_psk_client_credentials_t *ccred,
		      const char *user);

/* ---- sockets ---- */

/* 127.0.0.1:port */
void kt_loopback_addr(struct sockaddr_in *addr, unsigned port);
/* A TCP socket listening on 127.0.0.1:port (0: any free port); *addr
 * gets its address.  The fd, or -1 with errno set. */
int kt_loopback_listen(struct sockaddr_in *addr, unsigned port,
		       int backlog);
/* A socket connected to addr; ECONNREFUSED is retried for retry_s
 * seconds (the peer may not listen yet).  The fd, or -1 with errno. */
int kt_connect(const struct sockaddr_in *addr, double retry_s);

/* All of len bytes to / from fd (EINTR retried); 0, or -1 on an error
 * or (read) EOF first. */
int kt_write_all(int fd, const void *buf, size_t len);
int kt_read_all(int fd, void *buf, size_t len);

/* ---- transport ---- */

/* fd through GnuTLS's push/pull/pull_timeout callbacks (send, recv,
 * poll): GnuTLS cannot hand such a session to the kernel. */
void kt_set_user_transport(gnutls_session_t s, int fd);

/* ---- the deterministic stream ---- */

/* the seeds of the two directions */
#define KT_SEED_C2S UINT64_C(0x9e3779b97f4a7c15)
#define KT_SEED_S2C UINT64_C(0xd1b54a32d192ed03)

struct kt_stream {
	uint64_t state;
	uint64_t word;		/* a partly used output word */
	unsigned avail;		/* its unused bytes */
};

void kt_stream_init(struct kt_stream *st, uint64_t seed);
/* The next len bytes; the same bytes however the stream is cut. */
void kt_stream_fill(struct kt_stream *st, void *buf, size_t len);
/* Compares buf with the next len bytes: 0 if they are the stream, else
 * the index of the first wrong byte plus one.  Advances by len. */
size_t kt_stream_check(struct kt_stream *st, const void *buf, size_t len);
/* Advances by len bytes. */
void kt_stream_skip(struct kt_stream *st, uint64_t len);
/* The next len bytes written to fd (unless -1) and hashed into h
 * (unless NULL); 0 or kt_fail()'s -1. */
int kt_stream_out(struct kt_stream *st, uint64_t len, int fd,
		  gnutls_hash_hd_t h);
/* SHA-256 of the first len bytes of the stream of seed (also written to
 * fd unless -1). */
int kt_stream_hash(uint64_t seed, uint64_t len, int fd,
		   unsigned char hash[KT_HASH_LEN]);
/* Lower-case hex of a KT_HASH_LEN hash (out: 2 * KT_HASH_LEN + 1). */
void kt_hex(char *out, const unsigned char *hash);

/* ---- the kernel ---- */

/* 1 if the kernel takes new TLS 1.3 keys on a KTLS socket (KeyUpdate):
 * KTLS_REKEY=yes|no when set (tests/ktls-suite sets it), else whether
 * uname -r is >= 6.14. */
int kt_kernel_can_rekey(void);

/* The factor every wait and timeout of a test is multiplied by:
 * KTLS_TEST_SLOW (1..100) when set, else 1.  tests/san-run --valgrind
 * sets it: under valgrind in a TCG VM a first handshake alone can take
 * longer than the 30 s that are plenty otherwise. */
unsigned kt_slow(void);

/* ---- ktls = auto ---- */

/* Full records in a row after which ktls = auto moves a direction (the
 * library's KTLS_AUTO_BULK_RECORDS), and their size. */
#define KT_WARM_RECORDS 4
#define KT_WARM_RECORD 16384
/* Directions of a session (GNUTLS_KTLS_RECV / _SEND) as seen by its peer:
 * my TX is its RX. */
unsigned kt_mirror_dirs(unsigned dirs);
/* The warm-up of a session of either end (server: which end s is), on
 * fd (blocking or not): if c2s, the client sends KT_WARM_RECORDS records
 * of KT_WARM_RECORD bytes (one gnutls_record_send() each) and the server
 * reads all of them, checked byte by byte; then the same from the server
 * if s2c.  Both ends must call it with the same c2s, s2c.  0 or
 * kt_fail()'s -1. */
int kt_warm(gnutls_session_t s, int fd, int server, int c2s, int s2c);
/* gnutls_transport_is_ktls_enabled(s) must be want: 0 or kt_fail()'s -1
 * ("<what>: gnutls_transport_is_ktls_enabled() = 1 (RECV), expected
 * ..."). */
int kt_expect_ktls(gnutls_session_t s, unsigned want, const char *what);
/* "RECV|SEND", "RECV", "SEND" or "none" */
const char *kt_dirs_name(unsigned dirs);

/* CLOCK_MONOTONIC in seconds. */
double kt_now(void);

#endif
