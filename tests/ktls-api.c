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
 * ktls-api: the application-side table (issue #12).
 *
 * Each row is one named behaviour: a sequence of public GnuTLS API calls
 * an application may make on a session, run once with a KTLS session
 * (--mode ktls, under a config with ktls = true: the session must report
 * GNUTLS_KTLS_DUPLEX after the handshake) and once with a userspace one
 * (--mode user, under ktls = false: it must report 0).  The outcome must
 * be the same in both modes, byte for byte: every byte the peer receives
 * is hashed (SHA-256) and compared with what the calls reported, and the
 * row's outcome (the GnuTLS error name of its decisive call, or
 * GNUTLS_E_SUCCESS) must be the row's expected one.  A row may declare a
 * documented stricter error under KTLS (expect_ktls) and a different
 * outcome on kernels that cannot change TLS 1.3 keys (expect_norekey,
 * KTLS_REKEY=no).
 *
 * Fixture (in the style of the kernel's selftests/net/tls.c): every row
 * runs in its own forked process with a watchdog; it forks the peer, and
 * the two talk TLS over TCP on 127.0.0.1 and through a control socket
 * pair (scripting: "start reading now", results).  The session under
 * test is the client, on gnutls_transport_set_int(); the peer is a
 * userspace GnuTLS server (custom push/pull functions, never offloaded),
 * except in the key update rows, where the server is under test too.
 * Rows that need the fault shim (ktls-fault.so) re-execute the program
 * with LD_PRELOAD and KTLS_FAULT set (KTLS_FAULT_SO, default: next to
 * this program).
 *
 * --mode auto (issue #14, under a config with ktls = auto): nothing may be
 * offloaded after the handshake; then the warm-up (kt_warm(): 4 records
 * of 16 KiB each way, read completely and checked) moves the directions
 * --warmup names (both, tx or rx: the client's; the session must report
 * exactly those), and the row runs unchanged with the outcome it has
 * under KTLS.  Rows that need a direction the warm-up left in userspace
 * are skipped (auto_needs).  The auto-* rows have no warm-up (R_NO_WARMUP):
 * the move happens in the middle of their own sequence (a "W" step of
 * the key update scripts, the 4th corked 16 KiB record, a record pending
 * after GNUTLS_E_AGAIN, send_file, recv_file), and what moved is checked
 * at the end (end_auto); under --mode ktls and user they run as they are.
 *
 *   ktls-api [--list] [--case a,b] [--tls12|--tls13]
 *            [--mode ktls|user|auto [--warmup both|tx|rx]]
 *
 * Output: one line per row and version, "PASS: name tls13 ktls",
 * "FAIL: ... (why)" or "SKIP: ... (why)"; exit 1 if a row failed.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/socket.h>

#include "ktls-common.h"

#define E_REPORTED (-999999)	/* a check failed, already printed */
#define E_SKIP (-999998)	/* the row cannot run here, printed */

#define V12 1u
#define V13 2u
#define VB (V12 | V13)
#define M_KTLS 1u
#define M_USER 2u
#define MB (M_KTLS | M_USER)
#define M_AUTO 4u		/* only under --mode auto (MB rows run there too) */

/* row flags */
#define R_PEER_WAIT 1u		/* the peer reads only after ctl 'g' */
#define R_PEER_KTLS 2u		/* the server is under test too (set_int) */
#define R_ROOT 4u		/* needs root (skipped otherwise) */
#define R_NO_WARMUP 8u		/* --mode auto: the row itself moves the traffic */

/* end_auto: what the session under test reports when the row succeeded
 * (--mode auto: these directions; ktls, user: as after the handshake) */
#define END_CHECK 0x100u

#define SEED_C UINT64_C(0x6a09e667f3bcc908)	/* client -> server */
#define SEED_S UINT64_C(0xbb67ae8584caa73b)	/* server -> client */

#define WAIT_MS (20000 * (int)kt_slow())	/* any single wait */
#define ROW_TIMEOUT_S 120

struct fx;

struct row {
	const char *name;
	unsigned vers, modes;
	int (*client)(struct fx *);
	int (*peer)(struct fx *);	/* NULL: peer_sink */
	const char *expect;		/* outcome, both modes */
	const char *expect_ktls;	/* documented stricter error under KTLS */
	const char *expect_norekey;	/* KTLS on a kernel without rekey */
	const char *skip_user;		/* user mode cannot run it: why */
	const char *fault;		/* KTLS_FAULT for ktls-fault.so */
	const char *prio;		/* priority string additions */
	unsigned flags;
	int ktls_flags;			/* expected under KTLS; 0: DUPLEX */
	size_t arg;			/* a size, row specific */
	const char *seq;		/* key update steps */
	int variant;
	int sndbuf;			/* client SO_SNDBUF, 0: default */
	unsigned peer_slow_us;		/* sink: sleep per read */
	size_t max_recv;		/* client record size limit, 0: none */
	unsigned init_flags;		/* extra gnutls_init() flags (client) */
	unsigned auto_needs;		/* --mode auto: directions the warm-up
					 * must have moved, else SKIP */
	unsigned end_auto;		/* END_CHECK | GNUTLS_KTLS_*: at the end */
	int peer_rcvbuf;		/* the peer's SO_RCVBUF, 0: default */
	const char *notes;
};

struct fx {
	const struct row *r;
	int tls13, ktls, rekey, server;
	int reference;		/* both ends in userspace: the reference run */
	int auto_mode;		/* --mode auto (ktls is 1 too) */
	unsigned warm;		/* --mode auto: the client's directions to move */
	unsigned want;		/* this end's KTLS flags after session_open */
	gnutls_session_t s;
	int fd, ctl;
	pid_t peer;
	gnutls_certificate_credentials_t scred, ccred;
};

static const char *tmpdir(void)
{
	const char *t = getenv("TMPDIR");

	return t && *t ? t : "/tmp";
}

static const char *oname(int code)
{
	if (code == 0)
		return "GNUTLS_E_SUCCESS";
	return kt_ename(code);
}

static int gerr(const char *what, long long ret)
{
	if (ret == E_REPORTED || ret == E_SKIP)
		return (int)ret;
	kt_fail("%s: %s (%lld)", what, ret < 0 ? oname((int)ret) : "?", ret);
	return E_REPORTED;
}

#define CHECK(cond, ...) do { if (!(cond)) { kt_fail(__VA_ARGS__); \
		return E_REPORTED; } } while (0)

/* ---- waiting, the control channel ---- */

static int wait_fd(int fd, short ev, int ms)
{
	struct pollfd p = { .fd = fd, .events = ev };
	int r;

	do
		r = poll(&p, 1, ms);
	while (r < 0 && errno == EINTR);
	return r;
}

static int set_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);

	return fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

static int ctl_write(struct fx *f, const void *buf, size_t n)
{
	return kt_write_all(f->ctl, buf, n);
}

static int ctl_read(struct fx *f, void *buf, size_t n)
{
	char *p = buf;

	while (n > 0) {
		ssize_t r;

		if (wait_fd(f->ctl, POLLIN, 60000) <= 0)
			return kt_fail("control channel: timeout");
		r = read(f->ctl, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return kt_fail("control channel: %s",
				       r == 0 ? "closed" : strerror(errno));
		p += r;
		n -= r;
	}
	return 0;
}

static int ctl_put(struct fx *f, char c)
{
	return ctl_write(f, &c, 1);
}

static int ctl_expect(struct fx *f, char want)
{
	char c;

	if (ctl_read(f, &c, 1) < 0)
		return -1;
	if (c != want)
		return kt_fail("control channel: got '%c', wanted '%c'", c, want);
	return 0;
}

/* ---- what arrived: length, SHA-256, first and last bytes ---- */

#define DG_EDGE 24

struct digest {
	uint64_t len;
	unsigned char sha[KT_HASH_LEN];
	unsigned char head[DG_EDGE], tail[DG_EDGE];
	int lastret;
};

struct dg {
	gnutls_hash_hd_t h;
	struct digest d;
};

static void dg_init(struct dg *g)
{
	memset(g, 0, sizeof(*g));
	if (gnutls_hash_init(&g->h, GNUTLS_DIG_SHA256) < 0)
		abort();
}

static void dg_add(struct dg *g, const void *buf, size_t n)
{
	const unsigned char *p = buf;
	size_t i;

	gnutls_hash(g->h, buf, n);
	for (i = 0; i < n; i++) {
		uint64_t at = g->d.len + i;

		if (at < DG_EDGE)
			g->d.head[at] = p[i];
		g->d.tail[at % DG_EDGE] = p[i];
	}
	g->d.len += n;
}

static void dg_add_stream(struct dg *g, struct kt_stream *st, uint64_t n)
{
	unsigned char buf[16384];

	while (n > 0) {
		size_t k = n < sizeof(buf) ? n : sizeof(buf);

		kt_stream_fill(st, buf, k);
		dg_add(g, buf, k);
		n -= k;
	}
}

static void dg_end(struct dg *g, struct digest *out)
{
	gnutls_hash_deinit(g->h, g->d.sha);
	*out = g->d;
}

static void edge_str(char *out, const struct digest *d, int tail)
{
	uint64_t n = d->len < DG_EDGE ? d->len : DG_EDGE, i;

	for (i = 0; i < n; i++) {
		unsigned char c = tail ?
			d->tail[(d->len - n + i) % DG_EDGE] : d->head[i];

		if (c >= 0x20 && c < 0x7f && c != '\\')
			*out++ = c;
		else
			out += sprintf(out, "\\x%02x", c);
	}
	*out = '\0';
}

/* got must be exp; else print both */
static int dg_compare(const char *what, const struct digest *got,
		      const struct digest *exp)
{
	char gh[DG_EDGE * 4 + 1], eh[DG_EDGE * 4 + 1];
	char gt[DG_EDGE * 4 + 1], et[DG_EDGE * 4 + 1];

	if (got->len == exp->len && memcmp(got->sha, exp->sha, KT_HASH_LEN) == 0)
		return 0;
	edge_str(gh, got, 0);
	edge_str(eh, exp, 0);
	edge_str(gt, got, 1);
	edge_str(et, exp, 1);
	kt_fail("%s: got %" PRIu64 " bytes \"%s\"...\"%s\" (last %s), expected %"
		PRIu64 " bytes \"%s\"...\"%s\"%s", what, got->len, gh, gt,
		oname(got->lastret), exp->len, eh, et,
		got->len == exp->len ? " (same length, other bytes)" : "");
	return E_REPORTED;
}

/* ---- sessions ---- */

static const char *prio_of(const struct fx *f)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "NORMAL:-VERS-ALL:+VERS-TLS1.%s%s",
		 f->tls13 ? "3" : "2", f->r->prio ? f->r->prio : "");
	return buf;
}

static int session_open(struct fx *f, int server, int under_test)
{
	gnutls_session_t s;
	const char *err = NULL;
	unsigned fl = GNUTLS_NO_SIGNAL;
	int ret, want;

	if (!server)
		fl |= f->r->init_flags;
	ret = gnutls_init(&s, (server ? GNUTLS_SERVER : GNUTLS_CLIENT) | fl);
	if (ret < 0)
		return gerr("gnutls_init", ret);
	f->s = s;
	ret = gnutls_priority_set_direct(s, prio_of(f), &err);
	if (ret < 0)
		return gerr("gnutls_priority_set_direct", ret);
	ret = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE,
				     server ? f->scred : f->ccred);
	if (ret < 0)
		return gerr("gnutls_credentials_set", ret);
	if (!server) {
		gnutls_server_name_set(s, GNUTLS_NAME_DNS, KT_HOSTNAME,
				       strlen(KT_HOSTNAME));
		gnutls_session_set_verify_cert(s, KT_HOSTNAME, 0);
		if (f->r->max_recv) {
			ret = gnutls_record_set_max_recv_size(s, f->r->max_recv);
			if (ret < 0)
				return gerr("gnutls_record_set_max_recv_size",
					    ret);
		}
	}
	if (f->reference)
		under_test = 0;
	if (under_test)
		gnutls_transport_set_int(s, f->fd);
	else
		kt_set_user_transport(s, f->fd);
	gnutls_handshake_set_timeout(s, WAIT_MS);
	do
		ret = gnutls_handshake(s);
	while (ret < 0 && !gnutls_error_is_fatal(ret));
	if (ret < 0)
		return gerr(server ? "server handshake" : "client handshake", ret);
	gnutls_record_set_timeout(s, WAIT_MS);

	ret = gnutls_transport_is_ktls_enabled(s);
	want = 0;
	/* ktls = auto: nothing moves at the end of the handshake */
	if (under_test && f->ktls && !f->auto_mode)
		want = f->r->ktls_flags ? f->r->ktls_flags : GNUTLS_KTLS_DUPLEX;
	CHECK(ret == want, "%s: gnutls_transport_is_ktls_enabled() = %d, expected %d",
	      server ? "server" : "client", ret, want);
	CHECK((gnutls_protocol_get_version(s) == GNUTLS_TLS1_3) == f->tls13,
	      "negotiated %s", gnutls_protocol_get_name(
		      gnutls_protocol_get_version(s)));
	if (f->auto_mode && !(f->r->flags & R_NO_WARMUP)) {
		/* both ends, the same records; in the reference run too */
		unsigned dirs = server ? kt_mirror_dirs(f->warm) : f->warm;

		if (kt_warm(s, f->fd, server, (f->warm & GNUTLS_KTLS_SEND) != 0,
			    (f->warm & GNUTLS_KTLS_RECV) != 0) < 0)
			return E_REPORTED;
		if (under_test)
			want = dirs & (f->r->ktls_flags ? (unsigned)f->r->ktls_flags :
				       GNUTLS_KTLS_DUPLEX);
		if (kt_expect_ktls(s, want, server ? "server after the warm-up" :
				   "client after the warm-up") < 0)
			return E_REPORTED;
	}
	f->want = want;
	return 0;
}

/* ---- calls with the AGAIN/INTERRUPTED loop ---- */

static int is_retry(ssize_t r)
{
	return r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED;
}

static int wait_session(struct fx *f)
{
	short ev = gnutls_record_get_direction(f->s) ? POLLOUT : POLLIN;

	if (wait_fd(f->fd, ev, WAIT_MS) <= 0)
		return kt_fail("no progress in %d ms (waiting for %s)", WAIT_MS,
			       ev == POLLOUT ? "POLLOUT" : "POLLIN");
	return 0;
}

/* every byte of buf; 0 or the GnuTLS error (E_REPORTED on a timeout) */
static int send_all(struct fx *f, const void *buf, size_t n)
{
	const char *p = buf;

	while (n > 0) {
		ssize_t r = gnutls_record_send(f->s, p, n);

		if (is_retry(r)) {
			if (wait_session(f) < 0)
				return E_REPORTED;
			/* the same data again: what GnuTLS expects */
			continue;
		}
		if (r < 0)
			return (int)r;
		if (r == 0 || (size_t)r > n)
			return gerr("gnutls_record_send returned bad count", r);
		p += r;
		n -= r;
	}
	return 0;
}

/* exactly n bytes; 0, the GnuTLS error, or GNUTLS_E_PREMATURE_TERMINATION
 * at EOF */
static int recv_all(struct fx *f, void *buf, size_t n)
{
	char *p = buf;

	while (n > 0) {
		ssize_t r = gnutls_record_recv(f->s, p, n);

		if (is_retry(r)) {
			if (wait_fd(f->fd, POLLIN, WAIT_MS) <= 0)
				return gerr("recv: no data", GNUTLS_E_TIMEDOUT);
			continue;
		}
		if (r == 0)
			return GNUTLS_E_PREMATURE_TERMINATION;
		if (r < 0)
			return (int)r;
		p += r;
		n -= r;
	}
	return 0;
}

static int bye(struct fx *f, gnutls_close_request_t how)
{
	int r;

	do {
		r = gnutls_bye(f->s, how);
		if (is_retry(r) && wait_session(f) < 0)
			return E_REPORTED;
	} while (is_retry(r));
	return r;
}

static int uncork_wait(struct fx *f)
{
	int r;

	do {
		r = gnutls_record_uncork(f->s, GNUTLS_RECORD_WAIT);
		if (is_retry(r) && wait_session(f) < 0)
			return E_REPORTED;
	} while (is_retry(r));
	return r < 0 ? r : 0;
}

static void set_sndbuf(struct fx *f, int n)
{
	if (n > 0)
		setsockopt(f->fd, SOL_SOCKET, SO_SNDBUF, &n, sizeof(n));
}

/* ---- peers ---- */

/* Reads until EOF or an error, then sends the digest over ctl. */
static int peer_sink(struct fx *f)
{
	static unsigned char buf[16384];
	struct dg g;
	struct digest d;
	ssize_t r;

	if ((f->r->flags & R_PEER_WAIT) && ctl_expect(f, 'g') < 0)
		return -1;
	dg_init(&g);
	for (;;) {
		r = gnutls_record_recv(f->s, buf, sizeof(buf));
		/* GnuTLS says AGAIN after a post-handshake message (a
		 * KeyUpdate, a ticket), blocking socket or not */
		if (is_retry(r) && wait_fd(f->fd, POLLIN, WAIT_MS) > 0)
			continue;
		if (r <= 0)
			break;
		dg_add(&g, buf, r);
		if (f->r->peer_slow_us)
			usleep(f->r->peer_slow_us);
	}
	dg_end(&g, &d);
	d.lastret = (int)r;
	if (r == 0)
		(void)gnutls_bye(f->s, GNUTLS_SHUT_WR);
	(void)ctl_write(f, &d, sizeof(d));	/* the client may not ask */
	return 0;
}

/* what the peer's sink got: the client ends its sending first (bye) */
static int sink_result(struct fx *f, struct digest *d)
{
	return ctl_read(f, d, sizeof(*d)) < 0 ? E_REPORTED : 0;
}

/* bye(SHUT_WR), the sink's digest must be exp */
static int finish_sink(struct fx *f, struct dg *exp)
{
	struct digest got, e;
	int r = bye(f, GNUTLS_SHUT_WR);

	dg_end(exp, &e);
	if (r < 0)
		return gerr("gnutls_bye(GNUTLS_SHUT_WR)", r);
	if (sink_result(f, &got) < 0)
		return E_REPORTED;
	if (got.lastret != 0)
		fprintf(stderr, "note: the peer's last recv: %s\n", oname(got.lastret));
	r = dg_compare("peer received", &got, &e);
	if (r == 0 && got.lastret != 0)
		return E_REPORTED;
	return r;
}

/* ---- 1. cork + send_file ---- */

static int make_file(const void *data, size_t n, uint64_t stream_len)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/ktls-api.XXXXXX", tmpdir());
	fd = mkstemp(path);
	if (fd < 0) {
		kt_fail("mkstemp %s: %s", path, strerror(errno));
		return -1;
	}
	unlink(path);
	if (data && write(fd, data, n) != (ssize_t)n) {
		kt_fail("write: %s", strerror(errno));
		close(fd);
		return -1;
	}
	if (stream_len) {
		struct kt_stream st;

		kt_stream_init(&st, SEED_C);
		if (kt_stream_out(&st, stream_len, fd, NULL) < 0) {
			close(fd);
			return -1;
		}
	}
	lseek(fd, 0, SEEK_SET);
	return fd;
}

/* arg: body size (0: "BODY"); variant 1: non-blocking */
static int c_cork_sendfile(struct fx *f)
{
	struct dg exp;
	struct kt_stream st;
	size_t body = f->r->arg ? f->r->arg : 4, sent = 0;
	/* variant 2: a 256 KiB corked header on a non-blocking socket, so
	 * that sending it (under KTLS, at send_file) meets GNUTLS_E_AGAIN */
	size_t hdr = f->r->variant == 2 ? 256 * 1024 : 0;
	int fd, r, nb = f->r->variant >= 1, go = 0;
	ssize_t n;

	fd = f->r->arg ? make_file(NULL, 0, body) : make_file("BODY", 4, 0);
	if (fd < 0)
		return E_REPORTED;
	if (nb) {
		set_sndbuf(f, f->r->sndbuf);
		set_nonblock(f->fd, 1);
	}
	dg_init(&exp);
	gnutls_record_cork(f->s);
	if (hdr) {
		static unsigned char h[256 * 1024];
		struct kt_stream hs;

		kt_stream_init(&hs, SEED_S);
		kt_stream_fill(&hs, h, hdr);
		dg_add(&exp, h, hdr);
		for (size_t off = 0; off < hdr; off += n) {
			n = gnutls_record_send(f->s, h + off,
					       hdr - off < 16384 ? hdr - off : 16384);
			CHECK(n > 0, "corked gnutls_record_send = %zd (%s)", n,
			      oname((int)n));
		}
	} else {
		dg_add(&exp, "HDR", 3);
		n = gnutls_record_send(f->s, "HDR", 3);
		CHECK(n == 3, "corked gnutls_record_send(\"HDR\") = %zd (%s)", n,
		      oname((int)n));
	}
	if (f->r->arg) {
		kt_stream_init(&st, SEED_C);
		dg_add_stream(&exp, &st, body);
	} else
		dg_add(&exp, "BODY", 4);
	while (sent < body) {
		n = gnutls_record_send_file(f->s, fd, NULL, body - sent);
		if (is_retry(n)) {
			/* the socket is full: now the late peer reads */
			if (!go && (f->r->flags & R_PEER_WAIT) && ctl_put(f, 'g') < 0)
				return E_REPORTED;
			go = 1;
			if (wait_session(f) < 0)
				return E_REPORTED;
			continue;
		}
		if (n <= 0)
			return n < 0 ? (int)n :
				gerr("gnutls_record_send_file returned 0", 0);
		sent += n;
	}
	if (!go && (f->r->flags & R_PEER_WAIT) && ctl_put(f, 'g') < 0)
		return E_REPORTED;
	/* under KTLS TX (ktls = auto: send_file moves TX) the corked data
	 * went out first */
	CHECK(gnutls_record_check_corked(f->s) >= 3 ||
	      (gnutls_transport_is_ktls_enabled(f->s) & GNUTLS_KTLS_SEND),
	      "gnutls_record_check_corked() = %zu after send_file",
	      gnutls_record_check_corked(f->s));
	if (nb) {
		do {
			r = gnutls_record_uncork(f->s, 0);
			if (is_retry(r) && wait_session(f) < 0)
				return E_REPORTED;
		} while (is_retry(r));
		if (r < 0)
			return r;
	} else {
		r = uncork_wait(f);
		if (r < 0)
			return r;
	}
	CHECK(gnutls_record_check_corked(f->s) == 0,
	      "gnutls_record_check_corked() = %zu after uncork",
	      gnutls_record_check_corked(f->s));
	close(fd);
	return finish_sink(f, &exp);
}

/* ---- 2. retries after GNUTLS_E_AGAIN / GNUTLS_E_INTERRUPTED ---- */

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

static void timer_set(unsigned ms)
{
	struct itimerval it = { { ms / 1000, (ms % 1000) * 1000 },
				{ ms / 1000, (ms % 1000) * 1000 } };

	setitimer(ITIMER_REAL, &it, NULL);
}

/*
 * Fill the socket (the peer does not read) with 16 KiB sends of the
 * stream until one returns AGAIN (variant 0,1,2) or INTERRUPTED
 * (variant 3); then let the peer read and retry: variant 0 and 3 with
 * gnutls_record_send(s, NULL, 0), 1 with the same arguments, 2 is
 * gnutls_record_send_range().  Every count reported advances the
 * stream; the peer must get exactly that.
 */
static int c_retry(struct fx *f)
{
	static unsigned char buf[16384];
	struct kt_stream st, chk;
	struct dg exp;
	uint64_t total = 0;
	int v = f->r->variant, calls = 0, range = v == 2;
	gnutls_range_st rg = { 1000, 1500 };
	size_t chunk = range ? 1000 : sizeof(buf);
	ssize_t n;

	set_sndbuf(f, f->r->sndbuf);
	if (range && !gnutls_record_can_use_length_hiding(f->s)) {
		/* AEAD under TLS 1.2: the API refuses ranges */
		n = gnutls_record_send_range(f->s, "x", 1, &rg);
		CHECK(n < 0, "gnutls_record_send_range without length hiding = %zd", n);
		return (int)n;
	}
	if (v == 3) {
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_alarm;	/* no SA_RESTART */
		sigaction(SIGALRM, &sa, NULL);
		timer_set(200);
	} else
		set_nonblock(f->fd, 1);

	kt_stream_init(&st, SEED_C);
	kt_stream_init(&chk, SEED_C);
	for (;;) {
		kt_stream_fill(&st, buf, chunk);
		n = range ? gnutls_record_send_range(f->s, buf, chunk, &rg)
			  : gnutls_record_send(f->s, buf, chunk);
		if (n == GNUTLS_E_AGAIN && v != 3)
			break;
		if (is_retry(n) && v == 3) {
			/* a partial write before the signal: GnuTLS keeps
			 * the rest of the record and may say AGAIN */
			fprintf(stderr, "interrupted send: %s after %d signals\n",
				oname((int)n), (int)alarms);
			break;
		}
		if (n <= 0) {
			timer_set(0);
			return n < 0 ? (int)n : gerr("send returned 0", 0);
		}
		/* a partial count: the rest of buf is not sent; the stream
		 * model continues after what was reported */
		total += n;
		if ((size_t)n < chunk) {
			kt_stream_init(&st, SEED_C);
			kt_stream_skip(&st, total);
		}
		if (++calls > 65536) {
			timer_set(0);
			return gerr("the socket never filled up", 0);
		}
	}
	timer_set(0);
	if (ctl_put(f, 'g') < 0)
		return E_REPORTED;
	calls = 0;
	for (;;) {
		if (v == 1)
			n = gnutls_record_send(f->s, buf, chunk);
		else if (range)
			n = gnutls_record_send_range(f->s, buf, chunk, &rg);
		else
			n = gnutls_record_send(f->s, NULL, 0);
		if (is_retry(n)) {
			if (v != 3 && wait_session(f) < 0)
				return E_REPORTED;
			if (++calls > 100000)
				return gerr("retry never completed", n);
			continue;
		}
		if (n < 0)
			return (int)n;
		CHECK(n > 0 && (size_t)n <= chunk,
		      "the retry returned %zd (expected the pending record's size, 1..%zu)",
		      n, chunk);
		total += n;
		break;
	}
	dg_init(&exp);
	dg_add_stream(&exp, &chk, total);
	set_nonblock(f->fd, 0);
	return finish_sink(f, &exp);
}

/* cork 64 KiB, uncork(0) on a full non-blocking socket: AGAIN, retried */
static int c_uncork_nowait(struct fx *f)
{
	static unsigned char buf[256 << 10];
	struct kt_stream st;
	struct dg exp;
	size_t len = f->r->arg, done = 0;
	int r, again = 0;
	ssize_t n;

	set_sndbuf(f, f->r->sndbuf);
	set_nonblock(f->fd, 1);
	kt_stream_init(&st, SEED_C);
	kt_stream_fill(&st, buf, len);
	gnutls_record_cork(f->s);
	for (size_t off = 0; off < len; off += 4096) {
		n = gnutls_record_send(f->s, buf + off, 4096);
		CHECK(n == 4096, "corked send = %zd (%s)", n, oname((int)n));
	}
	for (;;) {
		r = gnutls_record_uncork(f->s, 0);
		if (is_retry(r)) {
			if (!again++ && ctl_put(f, 'g') < 0)
				return E_REPORTED;
			if (wait_session(f) < 0)
				return E_REPORTED;
			continue;
		}
		if (r < 0)
			return r;
		done += r;
		if (gnutls_record_check_corked(f->s) == 0)
			break;
	}
	if (!again) {
		kt_fail("uncork(0) never returned GNUTLS_E_AGAIN (socket not full?)");
		return E_REPORTED;
	}
	CHECK(done <= len, "uncork reported %zu of %zu bytes", done, len);
	dg_init(&exp);
	dg_add(&exp, buf, len);
	set_nonblock(f->fd, 0);
	return finish_sink(f, &exp);
}

/* ---- 3. the transport changed under the session ---- */

#define SECRET "SECRET-PLAINTEXT-0123456789"
#define FORGED "FORGED-PLAINTEXT-ABCDEFGHIJ\n"

static int observer_fd = -1;

static ssize_t obs_push(gnutls_transport_ptr_t p, const void *b, size_t n)
{
	(void)p;
	return send(observer_fd, b, n, MSG_NOSIGNAL);
}

static ssize_t obs_pull(gnutls_transport_ptr_t p, void *b, size_t n)
{
	(void)p;
	return recv(observer_fd, b, n, 0);
}

static int obs_pull_timeout(gnutls_transport_ptr_t p, unsigned ms)
{
	(void)p;
	return wait_fd(observer_fd, POLLIN, ms);
}

/*
 * variant: 0 set_int, 1 set_int2, 2 set_ptr, 3 push/pull functions;
 * arg 0: send SECRET (outcome: the send), arg 1: the observer writes
 * FORGED, recv (outcome: the recv).
 */
static int c_transport(struct fx *f)
{
	struct sockaddr_in a;
	unsigned char buf[4096];
	int l, ofd, obs, v = f->r->variant;
	ssize_t n, got = 0;

	l = kt_loopback_listen(&a, 0, 1);
	CHECK(l >= 0, "listen: %s", strerror(errno));
	ofd = kt_connect(&a, 5);
	CHECK(ofd >= 0, "connect: %s", strerror(errno));
	obs = accept(l, NULL, NULL);
	CHECK(obs >= 0, "accept: %s", strerror(errno));
	close(l);
	observer_fd = ofd;

	switch (v) {
	case 0: gnutls_transport_set_int(f->s, ofd); break;
	case 1: gnutls_transport_set_int2(f->s, ofd, ofd); break;
	case 2: gnutls_transport_set_ptr(f->s,
			(gnutls_transport_ptr_t)(intptr_t)ofd); break;
	default:
		gnutls_transport_set_push_function(f->s, obs_push);
		gnutls_transport_set_pull_function(f->s, obs_pull);
		gnutls_transport_set_pull_timeout_function(f->s, obs_pull_timeout);
		break;
	}
	if (f->r->arg == 0) {
		n = gnutls_record_send(f->s, SECRET, strlen(SECRET));
		/* what reached the observer */
		while (wait_fd(obs, POLLIN, 300) > 0) {
			ssize_t k = recv(obs, buf + got, sizeof(buf) - got, 0);

			if (k <= 0)
				break;
			got += k;
		}
		CHECK(memmem(buf, got, SECRET, strlen(SECRET)) == NULL,
		      "the observer saw the plaintext (%zd bytes)", got);
		if (n >= 0) {
			CHECK(n == (ssize_t)strlen(SECRET), "send = %zd", n);
			CHECK(got >= 5 && buf[0] == 0x17 && buf[1] == 3 && buf[2] == 3,
			      "the observer got %zd bytes, not a TLS application data record",
			      got);
			return 0;
		}
		CHECK(got == 0, "send failed (%s) but the observer got %zd bytes",
		      oname((int)n), got);
		/* fail closed: the next call fails too */
		n = gnutls_record_send(f->s, SECRET, strlen(SECRET));
		CHECK(n < 0, "a second send after the failure = %zd", n);
		return (int)n;
	}
	CHECK(send(obs, FORGED, strlen(FORGED), 0) == (ssize_t)strlen(FORGED),
	      "observer send: %s", strerror(errno));
	gnutls_record_set_timeout(f->s, 3000);
	n = gnutls_record_recv(f->s, buf, sizeof(buf));
	CHECK(n < 0, "gnutls_record_recv returned %zd bytes (\"%.*s\") from the observer's plaintext",
	      n, (int)(n > 0 ? n : 0), buf);
	CHECK(n != GNUTLS_E_TIMEDOUT, "gnutls_record_recv: timeout");
	return (int)n;
}

/* the same fd again changes nothing: data both ways */
static int c_transport_same(struct fx *f)
{
	char buf[16];
	int r;

	gnutls_transport_set_int(f->s, f->fd);
	CHECK((unsigned)gnutls_transport_is_ktls_enabled(f->s) == f->want,
	      "flags after set_int(samefd): %d", gnutls_transport_is_ktls_enabled(f->s));
	r = send_all(f, "PING", 4);
	if (r < 0)
		return r;
	r = recv_all(f, buf, 4);
	if (r < 0)
		return r;
	CHECK(memcmp(buf, "PONG", 4) == 0, "got \"%.4s\"", buf);
	return bye(f, GNUTLS_SHUT_RDWR);
}

static int p_pong(struct fx *f)
{
	char buf[16];
	int r = recv_all(f, buf, 4);

	if (r < 0)
		return kt_fail("peer recv: %s", oname(r));
	if (memcmp(buf, "PING", 4) != 0)
		return kt_fail("peer got \"%.4s\"", buf);
	r = send_all(f, "PONG", 4);
	if (r < 0)
		return kt_fail("peer send: %s", oname(r));
	r = gnutls_record_recv(f->s, buf, sizeof(buf));
	if (r != 0)
		return kt_fail("peer: expected close_notify, got %s", oname(r));
	return 0;
}

/* ---- 4. key updates, both ends under test ---- */

#define KU_DATA 1000

static int ku_step_flags(const char *tok, int *client, unsigned *fl)
{
	*client = tok[0] == 'C';
	*fl = tok[1] == 'p' ? GNUTLS_KU_PEER : 0;
	return 0;
}

/* one exchange: the client sends, the server receives, then back */
static int ku_exchange(struct fx *f, unsigned k)
{
	unsigned char buf[KU_DATA], got[KU_DATA];
	struct kt_stream st;
	int r, cork = f->r->variant == 2;
	size_t bad;

	for (int dir = 0; dir < 2; dir++) {
		int sending = (dir == 0) != f->server;

		kt_stream_init(&st, (dir ? SEED_S : SEED_C) + k);
		if (sending) {
			kt_stream_fill(&st, buf, sizeof(buf));
			if (cork) {
				gnutls_record_cork(f->s);
				if (gnutls_record_send(f->s, buf, 400) != 400 ||
				    gnutls_record_send(f->s, buf + 400, 600) != 600)
					return gerr("corked send", 0);
				r = uncork_wait(f);
			} else
				r = send_all(f, buf, sizeof(buf));
		} else {
			r = recv_all(f, got, sizeof(got));
			if (r == 0 && (bad = kt_stream_check(&st, got, sizeof(got))))
				return gerr("received data differs", bad);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/* the script, on either side; 0, the first refused update's error
 * (GNUTLS_E_UNIMPLEMENTED_FEATURE on old kernels), or another error */
static int ku_run(struct fx *f)
{
	char seq[128], *save = NULL, *tok;
	unsigned k = 0, fl;
	int first = 0, client, r, refused = 0, updates = 0;

	snprintf(seq, sizeof(seq), "%s", f->r->seq);
	set_nonblock(f->fd, 1);
	for (tok = strtok_r(seq, ",", &save); tok; tok = strtok_r(NULL, ",", &save), k++) {
		if (tok[0] == 'W') {
			/* both ends: bulk each way (ktls = auto: both
			 * directions of both ends move here, with the keys
			 * of the updates so far) */
			unsigned want = f->ktls && !f->reference ?
					GNUTLS_KTLS_DUPLEX : 0;

			if (kt_warm(f->s, f->fd, f->server, 1, 1) < 0 ||
			    kt_expect_ktls(f->s, want, f->server ?
					   "server after W" : "client after W") < 0)
				return E_REPORTED;
			if (f->auto_mode) {
				/* the updates before W were in userspace */
				if (refused)
					return gerr("a key update refused before the move",
						    first);
				updates = 0;
			}
			goto between;
		}
		ku_step_flags(tok, &client, &fl);
		if (client != !f->server)
			goto between;
		updates++;
		do {
			r = gnutls_session_key_update(f->s, fl);
			if (is_retry(r) && wait_session(f) < 0)
				return E_REPORTED;
		} while (is_retry(r));
		if (r == GNUTLS_E_UNIMPLEMENTED_FEATURE)
			refused++;
		else if (r < 0)
			return gerr(tok, r);
		if (r < 0 && !first)
			first = r;
 between:
		if (f->r->variant != 1) {
			r = ku_exchange(f, k);
			if (r < 0)
				return r;
		}
	}
	r = ku_exchange(f, 1000);
	if (r < 0)
		return r;
	r = ku_exchange(f, 1001);
	if (r < 0)
		return r;
	if (refused && refused != updates)
		return gerr("only some key updates refused", refused);
	return first;
}

static int c_ku(struct fx *f)
{
	int mine = ku_run(f), theirs;

	if (mine == E_REPORTED)
		return mine;
	if (ctl_read(f, &theirs, sizeof(theirs)) < 0)
		return E_REPORTED;
	if (theirs == E_REPORTED)
		return gerr("the server failed", theirs);
	if (mine == GNUTLS_E_UNIMPLEMENTED_FEATURE ||
	    theirs == GNUTLS_E_UNIMPLEMENTED_FEATURE) {
		/* a kernel without rekey: both ends refuse */
		CHECK((mine == 0 || mine == GNUTLS_E_UNIMPLEMENTED_FEATURE) &&
		      (theirs == 0 || theirs == GNUTLS_E_UNIMPLEMENTED_FEATURE),
		      "client %s, server %s", oname(mine), oname(theirs));
		return GNUTLS_E_UNIMPLEMENTED_FEATURE;
	}
	if (theirs < 0)
		fprintf(stderr, "note: the server's outcome: %s\n", oname(theirs));
	return mine < 0 ? mine : theirs;
}

static int p_ku(struct fx *f)
{
	int r = ku_run(f);

	if (r < 0 && r != GNUTLS_E_UNIMPLEMENTED_FEATURE && r != E_REPORTED)
		fprintf(stderr, "note: server: %s\n", oname(r));
	return ctl_write(f, &r, sizeof(r));
}

/* ---- 5. SIGPIPE ---- */

/* variant 0: send_file of a large file, 1: send */
static int c_sigpipe(struct fx *f)
{
	static unsigned char buf[16384];
	int fd = -1, i;
	ssize_t n = 0;

	signal(SIGPIPE, SIG_DFL);
	if (ctl_put(f, 'g') < 0 || ctl_expect(f, 'r') < 0)	/* the peer reset the connection */
		return E_REPORTED;
	usleep(200000);
	if (f->r->variant == 0) {
		fd = make_file(NULL, 0, 8 << 20);
		if (fd < 0)
			return E_REPORTED;
	}
	for (i = 0; i < 20; i++) {
		if (fd >= 0)
			n = gnutls_record_send_file(f->s, fd, NULL, 8 << 20);
		else
			n = gnutls_record_send(f->s, buf, sizeof(buf));
		if (n < 0)
			break;
		usleep(20000);
	}
	CHECK(n < 0, "20 sends after the reset all succeeded");
	/* and again: still an error, still alive */
	if (fd >= 0)
		CHECK(gnutls_record_send_file(f->s, fd, NULL, 1 << 20) < 0,
		      "send_file after the error succeeded");
	CHECK(gnutls_record_send(f->s, buf, 100) < 0, "send after the error succeeded");
	fprintf(stderr, "first error after %d calls\n", i);
	return (int)n;
}

static int p_reset(struct fx *f)
{
	struct linger lg = { 1, 0 };

	if (ctl_expect(f, 'g') < 0)
		return -1;
	setsockopt(f->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(f->fd);
	f->fd = -1;
	return ctl_put(f, 'r');
}

/* ---- 6, 10: recv_file ---- */

/* arg bytes from the peer (stream SEED_S) into a file through
 * gnutls_record_recv_file(); variant 1: as user nobody with a tiny
 * pipe-user-pages-soft */
static int c_recv_file(struct fx *f)
{
	static unsigned char buf[65536];
	struct kt_stream st;
	uint64_t total = 0;
	size_t bad;
	off_t off = 0;
	ssize_t n;
	int fd;

	fd = make_file(NULL, 0, 0);
	if (fd < 0)
		return E_REPORTED;
	if (f->r->variant == 1) {
		FILE *p = fopen("/proc/sys/fs/pipe-user-pages-soft", "w");

		CHECK(p != NULL, "pipe-user-pages-soft: %s", strerror(errno));
		fprintf(p, "1\n");
		fclose(p);
		CHECK(setresgid(65534, 65534, 65534) == 0 &&
		      setresuid(65534, 65534, 65534) == 0,
		      "setresuid(nobody): %s", strerror(errno));
	}
	if (ctl_put(f, 'g') < 0)
		return E_REPORTED;
	for (;;) {
		n = kt_recv_file(f->s, fd, &off, 1 << 20);
		if (is_retry(n))
			continue;
		if (n <= 0)
			break;
		total += n;
	}
	if (n < 0)
		fprintf(stderr, "note: recv_file ended with %s after %" PRIu64 " bytes\n",
			oname((int)n), total);
	CHECK((uint64_t)off == total, "offset %jd, reported %" PRIu64,
	      (intmax_t)off, total);
	kt_stream_init(&st, SEED_S);
	lseek(fd, 0, SEEK_SET);
	for (uint64_t at = 0; at < total;) {
		ssize_t k = read(fd, buf, sizeof(buf));

		CHECK(k > 0, "read back: %s", strerror(errno));
		bad = kt_stream_check(&st, buf, k);
		CHECK(bad == 0, "byte %" PRIu64 " in the file differs", at + bad - 1);
		at += k;
	}
	CHECK(n < 0 || total == f->r->arg, "got %" PRIu64 " of %zu bytes",
	      total, f->r->arg);
	return (int)n;
}

/* sends arg bytes of the stream SEED_S after ctl 'g', then bye */
static int p_source(struct fx *f)
{
	static unsigned char buf[16384];
	struct kt_stream st;
	uint64_t left = f->r->arg;
	int r;

	if (ctl_expect(f, 'g') < 0)
		return -1;
	kt_stream_init(&st, SEED_S);
	while (left > 0) {
		size_t k = left < sizeof(buf) ? left : sizeof(buf);

		kt_stream_fill(&st, buf, k);
		r = send_all(f, buf, k);
		if (r < 0)
			return kt_fail("peer send: %s", oname(r));
		left -= k;
	}
	r = gnutls_bye(f->s, GNUTLS_SHUT_WR);
	return r < 0 ? kt_fail("peer bye: %s", oname(r)) : 0;
}

/* recv_file into a full non-blocking pipe: AGAIN, then everything */
struct drain { int fd; uint64_t want; struct kt_stream st; int bad; uint64_t got; };

static int c_recv_file_full_pipe(struct fx *f)
{
	static unsigned char buf[65536];
	struct kt_stream st;
	int p[2], again = 0;
	uint64_t total = 0, drained = 0;
	ssize_t n, k;
	size_t bad;

	CHECK(pipe2(p, O_NONBLOCK) == 0, "pipe2: %s", strerror(errno));
	memset(buf, 'F', sizeof(buf));
	while (write(p[1], buf, sizeof(buf)) > 0)
		;		/* full */
	if (ctl_put(f, 'g') < 0)
		return E_REPORTED;
	kt_stream_init(&st, SEED_S);
	/* the filler first */
	for (;;) {
		n = kt_recv_file(f->s, p[1], NULL, 1 << 20);
		if (n == GNUTLS_E_AGAIN) {
			again++;
			break;
		}
		if (n < 0)
			return (int)n;
		if (n == 0)
			return gerr("EOF while the pipe was full", 0);
		return gerr("recv_file into a full pipe returned data", n);
	}
	/* drain the filler; then alternate */
	while ((k = read(p[0], buf, sizeof(buf))) > 0 && memchr(buf, 'F', 1))
		if (k < (ssize_t)sizeof(buf))
			break;
	for (;;) {
		n = kt_recv_file(f->s, p[1], NULL, 1 << 20);
		if (n == GNUTLS_E_AGAIN || n > 0) {
			if (n > 0)
				total += n;
			while ((k = read(p[0], buf, sizeof(buf))) > 0) {
				bad = kt_stream_check(&st, buf, k);
				CHECK(bad == 0, "pipe byte %" PRIu64 " differs",
				      drained + bad - 1);
				drained += k;
			}
			if (n == GNUTLS_E_AGAIN)
				usleep(1000);
			continue;
		}
		break;
	}
	while ((k = read(p[0], buf, sizeof(buf))) > 0) {
		bad = kt_stream_check(&st, buf, k);
		CHECK(bad == 0, "pipe byte %" PRIu64 " differs", drained + bad - 1);
		drained += k;
	}
	CHECK(again > 0, "no AGAIN");
	if (n < 0)
		return (int)n;
	CHECK(drained == total && total == f->r->arg,
	      "reported %" PRIu64 ", drained %" PRIu64 ", sent %zu", total,
	      drained, f->r->arg);
	return 0;
}

/* ---- 7. send_file from a pipe, non-blocking ---- */

struct feeder { int fd; uint64_t len; };

static void *feed(void *arg)
{
	struct feeder *fd = arg;
	struct kt_stream st;

	kt_stream_init(&st, SEED_C);
	kt_stream_out(&st, fd->len, fd->fd, NULL);
	close(fd->fd);
	return NULL;
}

static int c_sendfile_pipe(struct fx *f)
{
	struct feeder fe;
	struct kt_stream st;
	struct dg exp;
	pthread_t th;
	int p[2], r;
	uint64_t total = 0;
	ssize_t n;

	CHECK(pipe(p) == 0, "pipe: %s", strerror(errno));
	fe.fd = p[1];
	fe.len = f->r->arg;
	pthread_create(&th, NULL, feed, &fe);
	set_sndbuf(f, f->r->sndbuf);
	set_nonblock(f->fd, 1);
	while (total < f->r->arg) {
		n = gnutls_record_send_file(f->s, p[0], NULL, f->r->arg - total);
		if (is_retry(n)) {
			if (wait_session(f) < 0)
				return E_REPORTED;
			continue;
		}
		if (n < 0) {
			pthread_join(th, NULL);
			return (int)n;
		}
		if (n == 0) {
			kt_fail("send_file returned 0 (EOF) after %" PRIu64 " of %zu",
				total, f->r->arg);
			break;
		}
		total += n;
	}
	pthread_join(th, NULL);
	close(p[0]);
	CHECK(total == f->r->arg, "send_file reported %" PRIu64 " of %zu",
	      total, f->r->arg);
	r = send_all(f, "TRAILER", 7);
	if (r < 0)
		return r;
	kt_stream_init(&st, SEED_C);
	dg_init(&exp);
	dg_add_stream(&exp, &st, f->r->arg);
	dg_add(&exp, "TRAILER", 7);
	return finish_sink(f, &exp);
}

/* ---- 8. usage limits ---- */

static long tls_stat(const char *name)
{
	char line[256];
	long v = -1;
	FILE *p = fopen("/proc/net/tls_stat", "r");

	if (!p)
		return -1;
	while (fgets(line, sizeof(line), p))
		if (strncmp(line, name, strlen(name)) == 0 &&
		    (line[strlen(name)] == ' ' || line[strlen(name)] == '\t'))
			v = strtol(line + strlen(name), NULL, 10);
	fclose(p);
	return v;
}

/*
 * variant 0: send, 1: send_file; 2: exempt (chacha20 or NO_AUTO_REKEY:
 * no split, no limit).  The backend counts its records in the write
 * sequence number; the kernel's own is not changed, so the peer still
 * decrypts.
 */
static int c_limit(struct fx *f)
{
	static unsigned char buf[1 << 20];
	unsigned char seq[8];
	uint64_t s0, total = 0;
	struct kt_stream st;
	struct dg exp;
	long rk0 = tls_stat("TlsTxRekeyOk");
	int v = f->r->variant, fd = -1, rekey = f->rekey;
	uint64_t room = rekey ? 2 : 3;
	ssize_t n;

	s0 = (rekey ? UINT64_C(0xfffffd) : UINT64_C(23726566)) - room;
	for (int i = 0; i < 8; i++)
		seq[i] = s0 >> (56 - 8 * i);
	n = gnutls_record_set_state(f->s, 0, seq);
	if (n < 0)
		return gerr("gnutls_record_set_state", n);
	kt_stream_init(&st, SEED_C);
	kt_stream_fill(&st, buf, sizeof(buf));
	if (v == 1) {
		fd = make_file(buf, sizeof(buf), 0);
		if (fd < 0)
			return E_REPORTED;
	}
	dg_init(&exp);
	for (int call = 0; call < 200 && total < sizeof(buf); call++) {
		if (fd >= 0) {
			off_t off = total;

			n = gnutls_record_send_file(f->s, fd, &off, sizeof(buf) - total);
		} else
			n = gnutls_record_send(f->s, buf + total, sizeof(buf) - total);
		if (n < 0) {
			if (call == 0)
				return gerr("the first send", n);
			if (v == 2 || rekey)
				return (int)n;
			/* limit reached: what went must have arrived */
			dg_add(&exp, buf, total);
			if (shutdown(f->fd, SHUT_WR) < 0)
				return gerr("shutdown", 0);
			struct digest got, e;

			dg_end(&exp, &e);
			if (sink_result(f, &got) < 0)
				return E_REPORTED;
			if (dg_compare("peer received", &got, &e) < 0)
				return E_REPORTED;
			return (int)n;
		}
		if (call == 0 && v != 2)
			CHECK((uint64_t)n <= room * 16384,
			      "the first send took %zd bytes, more than the %" PRIu64
			      " records left before the %s", n, room,
			      rekey ? "rekey point" : "limit");
		total += n;
	}
	CHECK(total == sizeof(buf), "sent %" PRIu64, total);
	if (rekey && v != 2) {
		long rk1 = tls_stat("TlsTxRekeyOk");

		CHECK(rk1 > rk0, "TlsTxRekeyOk %ld -> %ld: no key update", rk0, rk1);
	}
	if (!rekey && v != 2)
		return gerr("1 MiB went through without reaching the limit", total);
	dg_add(&exp, buf, total);
	return finish_sink(f, &exp);
}

/* ---- 9. no control message ---- */

static int c_no_cmsg(struct fx *f)
{
	char buf[256];
	ssize_t n;
	int i;

	if (ctl_put(f, 'g') < 0)
		return E_REPORTED;
	for (i = 0; i < 3; i++) {
		n = gnutls_record_recv(f->s, buf, sizeof(buf));
		if (n < 0)
			break;
		CHECK(n == 4 && memcmp(buf, "REC", 3) == 0 && buf[3] == '0' + i,
		      "record %d: got %zd bytes \"%.*s\"", i, n, (int)(n > 0 ? n : 0), buf);
	}
	CHECK(n < 0, "all three records arrived although the shim stripped the type");
	CHECK(n != GNUTLS_E_TIMEDOUT, "recv: timeout");
	/* invalid afterwards */
	ssize_t m = gnutls_record_recv(f->s, buf, sizeof(buf));

	CHECK(m < 0, "recv after the error returned %zd", m);
	m = gnutls_record_send(f->s, "x", 1);
	CHECK(m < 0, "send after the error returned %zd", m);
	return (int)n;
}

static int p_records(struct fx *f)
{
	char rec[5] = "REC0";

	if (ctl_expect(f, 'g') < 0)
		return -1;
	for (int i = 0; i < 3; i++) {
		rec[3] = '0' + i;
		if (send_all(f, rec, 4) < 0)
			break;	/* the client gave up on the session: fine */
		usleep(100000);
	}
	char c;
	(void)!read(f->ctl, &c, 1);	/* until the client is done */
	return 0;
}

/* MSG_PEEK failing right after the peer's KeyUpdate: the next recv
 * must report an error, within the timeout */
static int c_peek_after_ku(struct fx *f)
{
	char buf[64];
	ssize_t n;

	if (ctl_put(f, 'g') < 0)
		return E_REPORTED;
	n = recv_all(f, buf, 4);
	if (n == 0)
		CHECK(memcmp(buf, "PRE0", 4) == 0, "got \"%.4s\"", buf);
	else
		return (int)n;
	gnutls_record_set_timeout(f->s, 5000);
	/* the call that processes the KeyUpdate returns GNUTLS_E_AGAIN, as
	 * in userspace; the error the peek met must come with the next */
	for (int i = 0; i < 3; i++) {
		n = gnutls_record_recv(f->s, buf, sizeof(buf));
		if (n != GNUTLS_E_AGAIN)
			break;
	}
	CHECK(n != GNUTLS_E_TIMEDOUT, "recv after the KeyUpdate: timeout (hang)");
	CHECK(n < 0, "recv after the KeyUpdate returned %zd bytes", n);
	return (int)n;
}

static int p_ku_then_data(struct fx *f)
{
	char c;

	if (ctl_expect(f, 'g') < 0)
		return -1;
	if (send_all(f, "PRE0", 4) < 0)
		return kt_fail("peer send");
	usleep(100000);
	if (gnutls_session_key_update(f->s, 0) < 0)
		return kt_fail("peer key update");
	if (send_all(f, "POST", 4) < 0)
		return kt_fail("peer send");
	(void)!read(f->ctl, &c, 1);
	return 0;
}

/* ---- 10. record size limit ---- */

static int c_small_records(struct fx *f)
{
	static unsigned char buf[20000];
	struct kt_stream st;
	uint64_t total = 0;
	ssize_t n;
	size_t bad;

	if (ctl_put(f, 'g') < 0)
		return E_REPORTED;
	kt_stream_init(&st, SEED_S);
	for (;;) {
		n = gnutls_record_recv(f->s, buf, sizeof(buf));
		if (n <= 0)
			break;
		CHECK((size_t)n <= f->r->max_recv,
		      "a record of %zd bytes, above our limit %zu", n, f->r->max_recv);
		bad = kt_stream_check(&st, buf, n);
		CHECK(bad == 0, "byte %" PRIu64 " differs", total + bad - 1);
		total += n;
	}
	if (n < 0)
		return (int)n;
	CHECK(total == f->r->arg, "got %" PRIu64 " of %zu", total, f->r->arg);
	return 0;
}

/* ---- more: bye, pending, sizes ---- */

/* we SHUT_WR; the peer still sends, we receive it all */
static int c_bye_wr(struct fx *f)
{
	static unsigned char buf[16384];
	struct kt_stream st;
	uint64_t total = 0;
	ssize_t n;
	size_t bad;
	int r = bye(f, GNUTLS_SHUT_WR);

	if (r < 0)
		return r;
	kt_stream_init(&st, SEED_S);
	for (;;) {
		n = gnutls_record_recv(f->s, buf, sizeof(buf));
		if (n <= 0)
			break;
		bad = kt_stream_check(&st, buf, n);
		CHECK(bad == 0, "byte %" PRIu64 " differs", total + bad - 1);
		total += n;
	}
	if (n < 0)
		return (int)n;
	CHECK(total == f->r->arg, "got %" PRIu64 " of %zu", total, f->r->arg);
	return 0;
}

/* the peer: waits for our close_notify, then sends arg bytes and bye */
static int p_after_bye(struct fx *f)
{
	char buf[16];
	ssize_t n = gnutls_record_recv(f->s, buf, sizeof(buf));

	if (n != 0)
		return kt_fail("peer: expected close_notify, got %zd (%s)", n,
			       oname((int)n));
	if (ctl_put(f, 0) < 0)
		return -1;
	return p_source(f);
}

static int c_bye_wr_run(struct fx *f)
{
	/* p_after_bye calls p_source, which waits for 'g' */
	if (ctl_put(f, 'g') < 0)
		return E_REPORTED;
	return c_bye_wr(f);
}

/* SHUT_RDWR: we send close_notify and wait for the peer's */
static int c_bye_rdwr(struct fx *f)
{
	int r = send_all(f, "DATA", 4);
	struct digest got, e;
	struct dg exp;

	if (r < 0)
		return r;
	r = bye(f, GNUTLS_SHUT_RDWR);
	if (r < 0)
		return r;
	dg_init(&exp);
	dg_add(&exp, "DATA", 4);
	dg_end(&exp, &e);
	if (sink_result(f, &got) < 0)
		return E_REPORTED;
	return dg_compare("peer received", &got, &e);
}

/* the peer's bye: recv returns 0, and again 0 */
static int c_peer_bye(struct fx *f)
{
	char buf[64];
	ssize_t n;
	int r;

	if (ctl_put(f, 'g') < 0)
		return E_REPORTED;
	r = recv_all(f, buf, 4);
	if (r < 0)
		return r;
	CHECK(memcmp(buf, "LAST", 4) == 0, "got \"%.4s\"", buf);
	n = gnutls_record_recv(f->s, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	CHECK(n == 0, "recv after the peer's bye = %zd", n);
	n = gnutls_record_recv(f->s, buf, sizeof(buf));
	CHECK(n == 0, "a second recv after the peer's bye = %zd (%s)", n,
	      oname((int)n));
	/* our bye after theirs */
	return bye(f, GNUTLS_SHUT_WR);
}

static int p_bye(struct fx *f)
{
	if (ctl_expect(f, 'g') < 0)
		return -1;
	if (send_all(f, "LAST", 4) < 0)
		return kt_fail("peer send");
	if (gnutls_bye(f->s, GNUTLS_SHUT_WR) < 0)
		return kt_fail("peer bye");
	return 0;
}

/* one 100-byte record, read 10 bytes: 90 pending; the rest intact */
static int c_pending(struct fx *f)
{
	unsigned char buf[200];
	struct kt_stream st;
	ssize_t n;
	size_t p, bad;

	if (ctl_put(f, 'g') < 0)
		return E_REPORTED;
	kt_stream_init(&st, SEED_S);
	n = gnutls_record_recv(f->s, buf, 10);
	if (n < 0)
		return (int)n;
	CHECK(n == 10, "recv(10) = %zd", n);
	p = gnutls_record_check_pending(f->s);
	CHECK(p == 90, "gnutls_record_check_pending() = %zu after reading 10 of a 100-byte record", p);
	n = gnutls_record_recv(f->s, buf + 10, sizeof(buf) - 10);
	if (n < 0)
		return (int)n;
	CHECK(n == 90, "the rest: %zd bytes", n);
	bad = kt_stream_check(&st, buf, 100);
	CHECK(bad == 0, "byte %zu differs", bad - 1);
	CHECK(gnutls_record_check_pending(f->s) == 0, "still pending: %zu",
	      gnutls_record_check_pending(f->s));
	return bye(f, GNUTLS_SHUT_WR);
}

static int p_one_record(struct fx *f)
{
	unsigned char buf[100];
	struct kt_stream st;
	char c[16];

	if (ctl_expect(f, 'g') < 0)
		return -1;
	kt_stream_init(&st, SEED_S);
	kt_stream_fill(&st, buf, sizeof(buf));
	if (send_all(f, buf, sizeof(buf)) < 0)
		return kt_fail("peer send");
	return gnutls_record_recv(f->s, c, sizeof(c)) == 0 ? 0 :
		kt_fail("peer: no close_notify");
}

static int c_max_size(struct fx *f)
{
	size_t m = gnutls_record_get_max_size(f->s);
	struct dg exp;

	CHECK(m == 16384, "gnutls_record_get_max_size() = %zu", m);
	dg_init(&exp);
	return finish_sink(f, &exp);
}

/* 0-length sends, NULL with nothing pending, then 1-byte records */
static int c_tiny(struct fx *f)
{
	struct dg exp;
	ssize_t n;

	n = gnutls_record_send(f->s, "", 0);
	CHECK(n == GNUTLS_E_INVALID_REQUEST, "gnutls_record_send(s, \"\", 0) = %zd (%s)", n, oname((int)n));
	n = gnutls_record_send(f->s, NULL, 0);
	CHECK(n == GNUTLS_E_INVALID_REQUEST,
	      "gnutls_record_send(s, NULL, 0) with nothing pending = %zd (%s)", n,
	      oname((int)n));
	dg_init(&exp);
	for (int i = 0; i < 50; i++) {
		char c = 'a' + i % 26;

		n = gnutls_record_send(f->s, &c, 1);
		CHECK(n == 1, "1-byte send %d = %zd (%s)", i, n, oname((int)n));
		dg_add(&exp, &c, 1);
	}
	return finish_sink(f, &exp);
}

/* ---- 11. ktls = auto: the move in the middle of the row ---- */

/* 8 requests of arg bytes, each answered by the peer with the same bytes:
 * under ktls = auto, requests and responses ("turns") of 4 KiB move both
 * directions, of 2 KiB only from Linux 6.14 on (the kernels that rekey),
 * of 1 KiB neither (lib/system/ktls.c, ktls_auto_rules) */
#define RR_ROUNDS 8

static int c_rr(struct fx *f)
{
	static unsigned char buf[4096], back[4096];
	size_t n = f->r->arg;
	unsigned moved;
	struct kt_stream st;
	int r;

	kt_stream_init(&st, SEED_C);
	for (unsigned i = 0; i < RR_ROUNDS; i++) {
		kt_stream_fill(&st, buf, n);
		r = send_all(f, buf, n);
		if (r < 0)
			return r;
		r = recv_all(f, back, n);
		if (r < 0)
			return r;
		CHECK(memcmp(buf, back, n) == 0, "response %u is not its request", i + 1);
	}
	moved = n >= 4096 || (n >= 2048 && f->rekey) ? GNUTLS_KTLS_DUPLEX : 0;
	if (kt_expect_ktls(f->s, !f->auto_mode || f->reference ? f->want : moved,
			   "after the requests") < 0)
		return E_REPORTED;
	return bye(f, GNUTLS_SHUT_RDWR);
}

static int p_echo(struct fx *f)
{
	static unsigned char buf[4096];
	size_t n = f->r->arg;

	for (unsigned i = 0; i < RR_ROUNDS; i++) {
		if (recv_all(f, buf, n) < 0)
			return kt_fail("peer: request %u", i + 1);
		if (send_all(f, buf, n) < 0)
			return kt_fail("peer: response %u", i + 1);
	}
	return gnutls_record_recv(f->s, buf, sizeof(buf)) == 0 ? 0 :
		kt_fail("peer: no close_notify");
}

/* 6 rounds of cork, 16 x 1 KiB, uncork(WAIT): one full record each;
 * ktls = auto moves TX with the 4th (not before) */
static int c_cork_bulk(struct fx *f)
{
	static unsigned char buf[16384];
	struct kt_stream st;
	struct dg exp;
	char what[64];
	ssize_t n;
	int r;

	kt_stream_init(&st, SEED_C);
	dg_init(&exp);
	for (unsigned i = 0; i < 6; i++) {
		kt_stream_fill(&st, buf, sizeof(buf));
		dg_add(&exp, buf, sizeof(buf));
		gnutls_record_cork(f->s);
		for (size_t off = 0; off < sizeof(buf); off += 1024) {
			n = gnutls_record_send(f->s, buf + off, 1024);
			CHECK(n == 1024, "corked send = %zd (%s)", n, oname((int)n));
		}
		r = uncork_wait(f);
		if (r < 0)
			return r;
		snprintf(what, sizeof(what), "after uncork %u", i + 1);
		if (kt_expect_ktls(f->s, !f->auto_mode || f->reference ? f->want :
				   i + 1 >= KT_WARM_RECORDS ? GNUTLS_KTLS_SEND : 0,
				   what) < 0)
			return E_REPORTED;
	}
	return finish_sink(f, &exp);
}

/* 12 full records on a non-blocking socket whose peer (tiny receive
 * buffer) starts late: the first GNUTLS_E_AGAIN leaves a record pending
 * in userspace, retried with the same arguments (3 more times while the
 * socket stays full: ktls = auto counts them as bulk calls, so the move
 * becomes due with the record still pending); it must wait for the
 * record boundary: TX never moves while a userspace record is pending.
 * variant 1: the retries are gnutls_record_send(s, NULL, 0) (not counted:
 * the move comes with the 4th full call after them) */
static int c_again_move(struct fx *f)
{
	static unsigned char buf[12 * 16384];
	struct kt_stream st;
	struct dg exp;
	size_t total = 0;
	int go = 0, again = 0, retries = 0, first_user = -1, pending = 0;
	unsigned before, after;
	ssize_t n;

	kt_stream_init(&st, SEED_C);
	kt_stream_fill(&st, buf, sizeof(buf));
	set_sndbuf(f, f->r->sndbuf);
	set_nonblock(f->fd, 1);
	while (total < sizeof(buf)) {
		size_t k = sizeof(buf) - total < 16384 ? sizeof(buf) - total : 16384;

		before = gnutls_transport_is_ktls_enabled(f->s);
		if (pending && f->r->variant == 1)
			n = gnutls_record_send(f->s, NULL, 0);
		else
			n = gnutls_record_send(f->s, buf + total, k);
		after = gnutls_transport_is_ktls_enabled(f->s);
		pending = is_retry(n);
		if (is_retry(n)) {
			again++;
			if (first_user < 0)
				first_user = !(before & GNUTLS_KTLS_SEND);
			CHECK((before & GNUTLS_KTLS_SEND) || !(after & GNUTLS_KTLS_SEND),
			      "TX moved to the kernel while a record was pending in userspace (%s after %zu bytes)",
			      oname((int)n), total);
			if (!go) {
				if (++retries <= 3) {
					usleep(20000);
					continue;	/* still full: AGAIN */
				}
				if (ctl_put(f, 'g') < 0)
					return E_REPORTED;
				go = 1;
			}
			if (wait_session(f) < 0)
				return E_REPORTED;
			continue;
		}
		if (n < 0)
			return (int)n;
		CHECK(n > 0 && (size_t)n <= k, "send returned %zd of %zu", n, k);
		total += n;
	}
	if (!go && ctl_put(f, 'g') < 0)
		return E_REPORTED;
	set_nonblock(f->fd, 0);
	CHECK(again > 0, "never GNUTLS_E_AGAIN (socket not full?)");
	CHECK(!f->auto_mode || f->reference || first_user == 1,
	      "the first GNUTLS_E_AGAIN came from the kernel: the row needs a record pending in userspace");
	dg_init(&exp);
	dg_add(&exp, buf, sizeof(buf));
	return finish_sink(f, &exp);
}

/* ---- the table ---- */

#define NOTE_TRANSPORT "under KTLS the session fails closed (documented stricter error): the kernel socket holds the keys, the new transport cannot be used"

static const struct row base_rows[] = {
	{ .name = "cork-sendfile", .vers = VB, .modes = MB,
	  .client = c_cork_sendfile, .expect = "GNUTLS_E_SUCCESS",
	  .notes = "cork, send HDR, send_file BODY, uncork(WAIT): peer reads HDRBODY" },
	{ .name = "cork-sendfile-1M", .vers = VB, .modes = MB,
	  .client = c_cork_sendfile, .arg = 1 << 20, .expect = "GNUTLS_E_SUCCESS" },
	{ .name = "cork-sendfile-1M-nonblock", .vers = VB, .modes = MB,
	  .client = c_cork_sendfile, .arg = 1 << 20, .variant = 1, .sndbuf = 16384,
	  .peer_slow_us = 200, .expect = "GNUTLS_E_SUCCESS" },
	{ .name = "cork-big-header-sendfile-nonblock", .vers = VB, .modes = MB,
	  .client = c_cork_sendfile, .arg = 1 << 20, .variant = 2, .sndbuf = 16384,
	  .flags = R_PEER_WAIT, .expect = "GNUTLS_E_SUCCESS",
	  .notes = "256 KiB corked, then send_file on a non-blocking socket whose peer starts late: AGAIN while the corked data go out, no byte twice" },
	{ .name = "null-retry-again", .vers = VB, .modes = MB, .client = c_retry,
	  .flags = R_PEER_WAIT, .sndbuf = 4096, .expect = "GNUTLS_E_SUCCESS",
	  .notes = "send until AGAIN, then send(NULL, 0) until > 0: the peer gets exactly what was reported" },
	{ .name = "same-params-retry-again", .vers = VB, .modes = MB, .client = c_retry,
	  .variant = 1, .flags = R_PEER_WAIT, .sndbuf = 4096, .expect = "GNUTLS_E_SUCCESS" },
	{ .name = "send-range-retry-again", .vers = V13, .modes = MB, .client = c_retry,
	  .variant = 2, .flags = R_PEER_WAIT, .sndbuf = 4096, .expect = "GNUTLS_E_SUCCESS",
	  .notes = "TLS 1.3 can hide lengths" },
	{ .name = "send-range-no-length-hiding", .vers = V12, .modes = MB, .client = c_retry,
	  .variant = 2, .expect = "GNUTLS_E_INVALID_REQUEST",
	  .notes = "TLS 1.2 AES-GCM: gnutls_record_can_use_length_hiding() = 0" },
	{ .name = "null-retry-interrupted", .vers = VB, .modes = MB, .client = c_retry,
	  .variant = 3, .flags = R_PEER_WAIT, .sndbuf = 4096, .expect = "GNUTLS_E_SUCCESS",
	  .notes = "blocking socket, SIGALRM without SA_RESTART" },
	{ .name = "uncork-nowait-again", .vers = VB, .modes = MB, .client = c_uncork_nowait,
	  .arg = 256 << 10, .flags = R_PEER_WAIT, .sndbuf = 4096, .expect = "GNUTLS_E_SUCCESS" },
	{ .name = "transport-set-int-send", .vers = VB, .modes = MB, .client = c_transport,
	  .variant = 0, .arg = 0, .expect = "GNUTLS_E_SUCCESS",
	  .expect_ktls = "GNUTLS_E_INVALID_SESSION", .notes = NOTE_TRANSPORT },
	{ .name = "transport-set-int2-send", .vers = VB, .modes = MB, .client = c_transport,
	  .variant = 1, .arg = 0, .expect = "GNUTLS_E_SUCCESS",
	  .expect_ktls = "GNUTLS_E_INVALID_SESSION", .notes = NOTE_TRANSPORT },
	{ .name = "transport-set-ptr-send", .vers = VB, .modes = MB, .client = c_transport,
	  .variant = 2, .arg = 0, .expect = "GNUTLS_E_SUCCESS",
	  .expect_ktls = "GNUTLS_E_INVALID_SESSION", .notes = NOTE_TRANSPORT },
	{ .name = "transport-push-pull-send", .vers = VB, .modes = MB, .client = c_transport,
	  .variant = 3, .arg = 0, .expect = "GNUTLS_E_SUCCESS",
	  .expect_ktls = "GNUTLS_E_INVALID_SESSION", .notes = NOTE_TRANSPORT },
	{ .name = "transport-set-int-recv", .vers = VB, .modes = MB, .client = c_transport,
	  .variant = 0, .arg = 1, .expect = "GNUTLS_E_UNEXPECTED_PACKET",
	  .expect_ktls = "GNUTLS_E_INVALID_SESSION", .notes = NOTE_TRANSPORT },
	{ .name = "transport-set-int2-recv", .vers = VB, .modes = MB, .client = c_transport,
	  .variant = 1, .arg = 1, .expect = "GNUTLS_E_UNEXPECTED_PACKET",
	  .expect_ktls = "GNUTLS_E_INVALID_SESSION", .notes = NOTE_TRANSPORT },
	{ .name = "transport-set-ptr-recv", .vers = VB, .modes = MB, .client = c_transport,
	  .variant = 2, .arg = 1, .expect = "GNUTLS_E_UNEXPECTED_PACKET",
	  .expect_ktls = "GNUTLS_E_INVALID_SESSION", .notes = NOTE_TRANSPORT },
	{ .name = "transport-push-pull-recv", .vers = VB, .modes = MB, .client = c_transport,
	  .variant = 3, .arg = 1, .expect = "GNUTLS_E_UNEXPECTED_PACKET",
	  .expect_ktls = "GNUTLS_E_INVALID_SESSION", .notes = NOTE_TRANSPORT },
	{ .name = "transport-same-fd", .vers = VB, .modes = MB, .client = c_transport_same,
	  .peer = p_pong, .expect = "GNUTLS_E_SUCCESS" },
	{ .name = "sigpipe-send-file", .vers = VB, .modes = MB, .client = c_sigpipe,
	  .peer = p_reset, .variant = 0, .expect = "GNUTLS_E_PREMATURE_TERMINATION",
	  .notes = "GNUTLS_NO_SIGNAL, SIGPIPE default, peer reset (RST): an error, not a signal; the first write reports ECONNRESET (PREMATURE_TERMINATION), later ones EPIPE (PUSH_ERROR)" },
	{ .name = "sigpipe-send", .vers = VB, .modes = MB, .client = c_sigpipe,
	  .peer = p_reset, .variant = 1, .expect = "GNUTLS_E_PREMATURE_TERMINATION" },
	{ .name = "recv-file-no-setpipe-sz", .vers = VB, .modes = MB, .client = c_recv_file,
	  .peer = p_source, .arg = 8 << 20, .fault = "fcntl:setpipe_sz=EPERM",
	  .expect = "GNUTLS_E_SUCCESS",
	  .notes = "F_SETPIPE_SZ refused: the recv_file pipe keeps its default size; nothing lost" },
	{ .name = "recv-file-unprivileged-tiny-pipes", .vers = VB, .modes = MB,
	  .client = c_recv_file, .peer = p_source, .arg = 8 << 20, .variant = 1,
	  .flags = R_ROOT, .expect = "GNUTLS_E_SUCCESS",
	  .notes = "as nobody with pipe-user-pages-soft = 1 (root in the VM to set it up)" },
	{ .name = "send-file-pipe-nonblock", .vers = VB, .modes = MB,
	  .client = c_sendfile_pipe, .arg = 4 << 20, .sndbuf = 16384,
	  .peer_slow_us = 300, .expect = "GNUTLS_E_SUCCESS",
	  .notes = "send_file from a pipe a thread feeds, non-blocking, slow reader, then TRAILER" },
	{ .name = "usage-limit-send", .vers = V13, .modes = MB, .client = c_limit,
	  .variant = 0, .expect = "GNUTLS_E_SUCCESS",
	  .expect_norekey = "GNUTLS_E_RECORD_LIMIT_REACHED",
	  .skip_user = "the write sequence number moved in userspace breaks the wire",
	  .auto_needs = GNUTLS_KTLS_SEND,
	  .prio = ":-CIPHER-ALL:+AES-256-GCM" },
	{ .name = "usage-limit-send-file", .vers = V13, .modes = MB, .client = c_limit,
	  .variant = 1, .expect = "GNUTLS_E_SUCCESS",
	  .expect_norekey = "GNUTLS_E_RECORD_LIMIT_REACHED",
	  .skip_user = "the write sequence number moved in userspace breaks the wire",
	  .auto_needs = GNUTLS_KTLS_SEND,
	  .prio = ":-CIPHER-ALL:+AES-128-GCM" },
	{ .name = "usage-limit-chacha20-exempt", .vers = V13, .modes = MB, .client = c_limit,
	  .variant = 2, .expect = "GNUTLS_E_SUCCESS",
	  .skip_user = "the write sequence number moved in userspace breaks the wire",
	  .auto_needs = GNUTLS_KTLS_SEND,
	  .prio = ":-CIPHER-ALL:+CHACHA20-POLY1305" },
	{ .name = "usage-limit-no-auto-rekey-exempt", .vers = V13, .modes = MB,
	  .client = c_limit, .variant = 2, .init_flags = GNUTLS_NO_AUTO_REKEY,
	  .expect = "GNUTLS_E_SUCCESS",
	  .skip_user = "the write sequence number moved in userspace breaks the wire",
	  .auto_needs = GNUTLS_KTLS_SEND,
	  .prio = ":-CIPHER-ALL:+AES-256-GCM" },
	{ .name = "no-cmsg", .vers = VB, .modes = M_KTLS, .client = c_no_cmsg,
	  .peer = p_records, .fault = "recvmsg:tls=NOCMSG@2+", .expect = "fatal",
	  .auto_needs = GNUTLS_KTLS_RECV,
	  .notes = "a record without its TLS_GET_RECORD_TYPE cmsg: a fatal error, not data" },
	{ .name = "ctrunc", .vers = VB, .modes = M_KTLS, .client = c_no_cmsg,
	  .peer = p_records, .fault = "recvmsg:tls=CTRUNC@2+", .expect = "fatal",
	  .auto_needs = GNUTLS_KTLS_RECV,
	  .notes = "MSG_CTRUNC: a fatal error, not data" },
	{ .name = "peek-ebadmsg-after-keyupdate", .vers = V13, .modes = M_KTLS,
	  .client = c_peek_after_ku, .peer = p_ku_then_data,
	  .fault = "recvmsg:tlspeek=EBADMSG@1+", .expect = "fatal",
	  .auto_needs = GNUTLS_KTLS_RECV,
	  .expect_norekey = "GNUTLS_E_UNIMPLEMENTED_FEATURE",
	  .notes = "a MSG_PEEK recvmsg fails with EBADMSG after the peer's KeyUpdate: an error, no hang" },
	{ .name = "record-size-limit-512", .vers = VB, .modes = MB,
	  .client = c_small_records, .peer = p_source, .arg = 100000, .max_recv = 512,
	  .ktls_flags = GNUTLS_KTLS_SEND, .expect = "GNUTLS_E_SUCCESS",
	  .notes = "our advertised record limit < 2^14: RX stays in userspace" },
	{ .name = "recv-file-full-pipe-again", .vers = VB, .modes = MB,
	  .client = c_recv_file_full_pipe, .peer = p_source, .arg = 1 << 20,
	  .expect = "GNUTLS_E_SUCCESS",
	  .notes = "recv_file into a full non-blocking pipe: AGAIN, not FILE_ERROR" },
	{ .name = "bye-wr-then-receive", .vers = VB, .modes = MB, .client = c_bye_wr_run,
	  .peer = p_after_bye, .arg = 1 << 20, .expect = "GNUTLS_E_SUCCESS" },
	{ .name = "bye-rdwr", .vers = VB, .modes = MB, .client = c_bye_rdwr,
	  .expect = "GNUTLS_E_SUCCESS" },
	{ .name = "peer-bye", .vers = VB, .modes = MB, .client = c_peer_bye,
	  .peer = p_bye, .expect = "GNUTLS_E_SUCCESS" },
	{ .name = "check-pending-small-buffer", .vers = VB, .modes = MB,
	  .client = c_pending, .peer = p_one_record, .expect = "GNUTLS_E_SUCCESS" },
	{ .name = "get-max-size", .vers = VB, .modes = MB, .client = c_max_size,
	  .expect = "GNUTLS_E_SUCCESS" },
	{ .name = "zero-and-one-byte-records", .vers = VB, .modes = MB, .client = c_tiny,
	  .expect = "GNUTLS_E_SUCCESS" },
	/* ktls = auto: the move in the middle of the row (no warm-up);
	 * under ktls and user nothing moves and the outcome is the same */
	{ .name = "auto-cork-16x1k-moves-tx", .vers = VB, .modes = MB | M_AUTO,
	  .client = c_cork_bulk, .flags = R_NO_WARMUP, .expect = "GNUTLS_E_SUCCESS",
	  .end_auto = END_CHECK | GNUTLS_KTLS_SEND,
	  .notes = "6 x (cork, 16 x 1 KiB, uncork): auto moves TX with the 4th full record, not before" },
	{ .name = "auto-again-pending-move", .vers = VB, .modes = MB | M_AUTO,
	  .client = c_again_move, .flags = R_NO_WARMUP | R_PEER_WAIT, .sndbuf = 4096,
	  .peer_rcvbuf = 4096, .expect = "GNUTLS_E_SUCCESS",
	  .end_auto = END_CHECK | GNUTLS_KTLS_SEND,
	  .notes = "a record pending after AGAIN (retried with the same arguments) while the move is due: TX moves at the next record boundary, no byte lost or repeated" },
	{ .name = "auto-again-pending-null-retry", .vers = VB, .modes = MB | M_AUTO,
	  .client = c_again_move, .variant = 1, .flags = R_NO_WARMUP | R_PEER_WAIT,
	  .sndbuf = 4096, .peer_rcvbuf = 4096, .expect = "GNUTLS_E_SUCCESS",
	  .end_auto = END_CHECK | GNUTLS_KTLS_SEND,
	  .notes = "the same, retried with send(NULL, 0)" },
	{ .name = "auto-uncork-nowait-moves-tx", .vers = VB, .modes = MB | M_AUTO,
	  .client = c_uncork_nowait, .arg = 256 << 10, .flags = R_NO_WARMUP | R_PEER_WAIT,
	  .sndbuf = 4096, .expect = "GNUTLS_E_SUCCESS",
	  .end_auto = END_CHECK | GNUTLS_KTLS_SEND,
	  .notes = "256 KiB corked, uncork(0) on a full socket: TX moves with the 4th record of the uncork" },
	{ .name = "auto-cork-sendfile-moves-tx", .vers = VB, .modes = MB | M_AUTO,
	  .client = c_cork_sendfile, .arg = 1 << 20, .flags = R_NO_WARMUP,
	  .expect = "GNUTLS_E_SUCCESS", .end_auto = END_CHECK | GNUTLS_KTLS_SEND,
	  .notes = "cork, HDR, send_file 1 MiB as the first bulk call: moves TX, HDR first" },
	{ .name = "auto-sendfile-nonblock-moves-tx", .vers = VB, .modes = MB | M_AUTO,
	  .client = c_cork_sendfile, .arg = 1 << 20, .variant = 1, .sndbuf = 16384,
	  .peer_slow_us = 200, .flags = R_NO_WARMUP, .expect = "GNUTLS_E_SUCCESS",
	  .end_auto = END_CHECK | GNUTLS_KTLS_SEND },
	{ .name = "auto-rr-4k-moves-both", .vers = VB, .modes = MB | M_AUTO,
	  .client = c_rr, .peer = p_echo, .arg = 4096, .flags = R_NO_WARMUP,
	  .expect = "GNUTLS_E_SUCCESS",
	  .notes = "8 x (4 KiB request, 4 KiB response): auto moves both directions" },
	{ .name = "auto-rr-2k-moves-from-6.14", .vers = VB, .modes = MB | M_AUTO,
	  .client = c_rr, .peer = p_echo, .arg = 2048, .flags = R_NO_WARMUP,
	  .expect = "GNUTLS_E_SUCCESS",
	  .notes = "8 x 2 KiB both ways: both directions move on kernels >= 6.14, neither before" },
	{ .name = "auto-rr-1k-stays", .vers = VB, .modes = MB | M_AUTO,
	  .client = c_rr, .peer = p_echo, .arg = 1024, .flags = R_NO_WARMUP,
	  .expect = "GNUTLS_E_SUCCESS",
	  .notes = "8 x 1 KiB both ways: nothing moves" },
	{ .name = "auto-recv-file-no-splice", .vers = VB, .modes = M_AUTO,
	  .client = c_recv_file, .peer = p_source, .arg = 8 << 20,
	  .fault = "splice:tls=EIO", .flags = R_NO_WARMUP, .expect = "GNUTLS_E_SUCCESS",
	  .end_auto = END_CHECK | GNUTLS_KTLS_RECV,
	  .notes = "ktls = auto: recv_file reads with recvmsg + write, also after RX moved (every splice on the socket fails)" },
};

/* the key update rows: generated */
static struct row *rows;
static size_t nrows;

static void add_row(const struct row *r)
{
	rows = realloc(rows, (nrows + 1) * sizeof(*rows));
	if (!rows)
		abort();
	rows[nrows++] = *r;
}

/* steps with a W (ktls = auto: the move): auto-ku-..., no warm-up */
static void add_ku(const char *const *steps, int n, int variant)
{
	static const char *const vname[] = { "", "-nodata", "-cork" };
	char name[128] = "ku", seq[128] = "";
	struct row r = { .vers = V13, .modes = MB, .client = c_ku, .peer = p_ku,
			 .flags = R_PEER_KTLS, .expect = "reference",
			 .expect_norekey = "GNUTLS_E_UNIMPLEMENTED_FEATURE",
			 .variant = variant };

	for (int i = 0; i < n; i++)
		if (strcmp(steps[i], "W") == 0) {
			strcpy(name, "auto-ku");
			r.modes = MB | M_AUTO;
			r.flags |= R_NO_WARMUP;
		}

	for (int i = 0; i < n; i++) {
		strcat(name, "-");
		strcat(name, steps[i]);
		if (i)
			strcat(seq, ",");
		strcat(seq, steps[i]);
	}
	strcat(name, vname[variant]);
	r.name = strdup(name);
	r.seq = strdup(seq);
	add_row(&r);
}

static void build_rows(void)
{
	static const char *const st[4] = { "C", "S", "Cp", "Sp" };
	const char *seq[8];
	uint64_t x = UINT64_C(0x853c49e6748fea9b);

	for (size_t i = 0; i < sizeof(base_rows) / sizeof(base_rows[0]); i++)
		add_row(&base_rows[i]);
	for (int v = 0; v < 3; v++)
		add_ku(st, 4, v);
	for (int v = 0; v < 3; v++)
		for (int a = 0; a < 4; a++)
			for (int b = 0; b < 4; b++) {
				seq[0] = st[a];
				seq[1] = st[b];
				add_ku(seq, 2, v);
			}
	for (int a = 0; a < 64; a++) {
		seq[0] = st[a >> 4];
		seq[1] = st[(a >> 2) & 3];
		seq[2] = st[a & 3];
		add_ku(seq, 3, 0);
	}
	for (int k = 0; k < 8; k++) {	/* seeded, length 6..8 */
		int n = 6 + k % 3;

		for (int i = 0; i < n; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			seq[i] = st[x % 4];
		}
		add_ku(seq, n, k % 3 == 2 ? 2 : 0);
	}
	/* ktls = auto: key updates in userspace, the move (W), key updates
	 * in the kernel (on kernels without rekey: refused after W only) */
	{
		static const char *const w[][6] = {
			{ "C", "W", "C" }, { "Cp", "W", "Cp" }, { "S", "W", "S" },
			{ "Sp", "W", "Sp" }, { "C", "Sp", "W", "Cp", "S" },
		};
		static const int wn[] = { 3, 3, 3, 3, 5 };

		for (size_t i = 0; i < sizeof(wn) / sizeof(wn[0]); i++)
			add_ku(w[i], wn[i], 0);
		add_ku(w[1], 3, 2);
		add_ku(w[4], 5, 1);
	}
}

/* ---- running a row ---- */

static char reference_outcome[64];

static const char *expected(const struct fx *f)
{
	const struct row *r = f->r;

	/* A reference run that ended in an error (GnuTLS 3.7.9 refuses a
	 * KeyUpdate request that crosses its own, GNUTLS_E_ILLEGAL_PARAMETER)
	 * broke the session; which error the other end then sees (its
	 * peer's EOF, a reset, a kernel holding records for keys that never
	 * come) depends on timing, in userspace as under KTLS: any fatal
	 * error is the same outcome.  Success must match exactly. */
	if (strcmp(r->expect, "reference") == 0 && reference_outcome[0] &&
	    !(f->ktls && !f->rekey && r->expect_norekey))
		return strcmp(reference_outcome, "GNUTLS_E_SUCCESS") == 0 ?
		       reference_outcome : "fatal";

	if (f->ktls && !f->rekey && r->expect_norekey)
		return r->expect_norekey;
	if (f->ktls && r->expect_ktls)
		return r->expect_ktls;
	return r->expect;
}

static int outcome_ok(const char *exp, int got)
{
	if (strcmp(exp, "fatal") == 0)
		return got < 0 && gnutls_error_is_fatal(got);
	return strcmp(exp, oname(got)) == 0;
}

static int peer_main(struct fx *f)
{
	int r;

	signal(SIGPIPE, SIG_IGN);
	f->server = 1;
	r = session_open(f, 1, (f->r->flags & R_PEER_KTLS) != 0);
	if (r < 0)
		return 1;
	r = (f->r->peer ? f->r->peer : peer_sink)(f);
	return r < 0 ? 1 : 0;
}

static const char *self_path;
static const char *mode_arg;
static const char *warm_arg = "both";

static int run_row1(struct fx *f);

/* 0 pass, 1 fail, 77 skip; the message on stderr.  A row expecting
 * "reference" first runs with both ends in userspace (custom transport,
 * whatever the mode) and then must give the same outcome: for the key
 * update rows, GnuTLS's own userspace answer to each sequence (it
 * refuses crossing update requests with GNUTLS_E_ILLEGAL_PARAMETER) */
static int run_row(struct fx *f)
{
	if (strcmp(f->r->expect, "reference") == 0 && !f->reference &&
	    !(f->ktls && !f->rekey && f->r->expect_norekey)) {
		f->reference = 1;
		if (run_row1(f) == 1)
			return kt_fail("the userspace reference run failed"), 1;
		f->reference = 0;
		fprintf(stderr, "reference outcome %s\n", reference_outcome);
	}
	return run_row1(f);
}

static int run_row1(struct fx *f)
{
	struct sockaddr_in a;
	int sv[2], l, r, st;
	const char *exp = expected(f);

	if (!f->ktls && f->r->skip_user) {
		fprintf(stderr, "%s\n", f->r->skip_user);
		return 77;
	}
	if (f->auto_mode && !(f->r->flags & R_NO_WARMUP) &&
	    (f->r->auto_needs & ~f->warm)) {
		fprintf(stderr, "needs %s in the kernel; the warm-up moves %s\n",
			kt_dirs_name(f->r->auto_needs), kt_dirs_name(f->warm));
		return 77;
	}
	if ((f->r->flags & R_ROOT) && (geteuid() != 0 || !getenv("KTLS_RUNNER") ||
					strcmp(getenv("KTLS_RUNNER"), "vm") != 0)) {
		fprintf(stderr, "needs root in the VM (changes a system-wide sysctl)\n");
		return 77;
	}
	if ((f->r->client == c_recv_file || f->r->client == c_recv_file_full_pipe) &&
	    !kt_have_recv_file()) {
		fprintf(stderr, "the library has no gnutls_record_recv_file\n");
		return 77;
	}
	if (f->r->fault) {
		const char *cur = getenv("KTLS_FAULT");

		if (!cur || strcmp(cur, f->r->fault) != 0) {
			/* again, with the shim */
			char so[PATH_MAX], *slash;
			const char *env = getenv("KTLS_FAULT_SO");

			if (env)
				snprintf(so, sizeof(so), "%s", env);
			else {
				snprintf(so, sizeof(so), "%s", self_path);
				slash = strrchr(so, '/');
				snprintf(slash ? slash + 1 : so,
					 sizeof(so) - (slash ? slash + 1 - so : 0),
					 "ktls-fault.so");
			}
			if (access(so, R_OK) != 0) {
				fprintf(stderr, "no fault shim %s\n", so);
				return 1;
			}
			setenv("LD_PRELOAD", so, 1);
			setenv("KTLS_FAULT", f->r->fault, 1);
			execl(self_path, self_path, "--inner", "--case", f->r->name,
			      f->tls13 ? "--tls13" : "--tls12", "--mode", mode_arg,
			      "--warmup", warm_arg, (char *)NULL);
			fprintf(stderr, "exec %s: %s\n", self_path, strerror(errno));
			return 1;
		}
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return kt_fail("socketpair"), 1;
	l = kt_loopback_listen(&a, 0, 1);
	if (l < 0)
		return kt_fail("listen: %s", strerror(errno)), 1;
	if (f->r->peer_rcvbuf)	/* the accepted socket inherits it */
		setsockopt(l, SOL_SOCKET, SO_RCVBUF, &f->r->peer_rcvbuf,
			   sizeof(f->r->peer_rcvbuf));
	f->peer = fork();
	if (f->peer == 0) {
		close(sv[0]);
		f->ctl = sv[1];
		f->fd = accept(l, NULL, NULL);
		close(l);
		_exit(peer_main(f));
	}
	close(sv[1]);
	close(l);
	f->ctl = sv[0];
	f->fd = kt_connect(&a, 5);
	if (f->fd < 0)
		return kt_fail("connect: %s", strerror(errno)), 1;
	r = session_open(f, 0, 1);
	if (r == 0)
		r = f->r->client(f);
	if (r == 0 && (f->r->end_auto & END_CHECK) &&
	    kt_expect_ktls(f->s, f->auto_mode && !f->reference ?
			   (f->r->end_auto & GNUTLS_KTLS_DUPLEX) : f->want,
			   "at the end of the row") < 0)
		r = E_REPORTED;
	if (f->fd >= 0)
		shutdown(f->fd, SHUT_RDWR);
	close(f->ctl);
	for (int i = 0; i < 200; i++) {
		if (waitpid(f->peer, &st, WNOHANG) == f->peer)
			break;
		if (i == 199) {
			kill(f->peer, SIGKILL);
			waitpid(f->peer, &st, 0);
			kt_fail("the peer did not exit");
			r = E_REPORTED;
		}
		usleep(50000);
	}
	if (r == E_REPORTED)
		return 1;
	if (f->reference) {
		snprintf(reference_outcome, sizeof(reference_outcome), "%s",
			 oname(r));
		return 0;
	}
	if (!outcome_ok(exp, r))
		kt_fail("outcome %s, expected %s", oname(r), exp);
	if (WIFSIGNALED(st) || WEXITSTATUS(st) != 0) {
		kt_fail("the peer failed (status %d)", st);
		return 1;
	}
	if (!outcome_ok(exp, r))
		return 1;
	fprintf(stderr, "outcome %s\n", oname(r));
	return 0;
}

#define PIPE_SOFT "/proc/sys/fs/pipe-user-pages-soft"
static char pipe_soft[32];

static void sysctl_save(void)
{
	FILE *p = fopen(PIPE_SOFT, "r");

	pipe_soft[0] = '\0';
	if (p) {
		if (!fgets(pipe_soft, sizeof(pipe_soft), p))
			pipe_soft[0] = '\0';
		fclose(p);
	}
}

static void sysctl_restore(void)
{
	FILE *p;

	if (!pipe_soft[0] || !(p = fopen(PIPE_SOFT, "w")))
		return;
	fputs(pipe_soft, p);
	fclose(p);
}

static void usage(FILE *o)
{
	fprintf(o, "usage: ktls-api [--list] [--case a,b] [--skip a,b] [--tls12|--tls13]\n"
		"                [--mode ktls|user|auto [--warmup both|tx|rx]]\n"
		"  (names may be shell patterns: --case 'ku-C*')\n");
}

static int selected(const char *cases, const char *name)
{
	char buf[4096], *save = NULL, *t;

	if (!cases)
		return 1;
	snprintf(buf, sizeof(buf), "%s", cases);
	for (t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
		if (fnmatch(t, name, 0) == 0)
			return 1;
	return 0;
}

static gnutls_certificate_credentials_t creds_s, creds_c;

static void free_creds(void)
{
	gnutls_certificate_free_credentials(creds_s);
	gnutls_certificate_free_credentials(creds_c);
}

int main(int argc, char **argv)
{
	const char *cases = NULL, *skips = NULL;
	unsigned vers = VB;
	int list = 0, inner = 0, ktls = 1, auto_mode = 0, failed = 0, ran = 0;
	unsigned warm = GNUTLS_KTLS_DUPLEX;
	struct fx f;

	self_path = argv[0];
	mode_arg = "ktls";
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--list"))
			list = 1;
		else if (!strcmp(argv[i], "--inner"))
			inner = 1;
		else if (!strcmp(argv[i], "--tls12"))
			vers = V12;
		else if (!strcmp(argv[i], "--tls13"))
			vers = V13;
		else if (!strcmp(argv[i], "--case") && i + 1 < argc)
			cases = argv[++i];
		else if (!strcmp(argv[i], "--skip") && i + 1 < argc)
			skips = argv[++i];
		else if (!strcmp(argv[i], "--mode") && i + 1 < argc) {
			mode_arg = argv[++i];
			if (!strcmp(mode_arg, "ktls"))
				ktls = 1;
			else if (!strcmp(mode_arg, "user"))
				ktls = 0;
			else if (!strcmp(mode_arg, "auto"))
				ktls = auto_mode = 1;
			else
				return usage(stderr), 2;
		} else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) {
			warm_arg = argv[++i];
			if (!strcmp(warm_arg, "both"))
				warm = GNUTLS_KTLS_DUPLEX;
			else if (!strcmp(warm_arg, "tx"))
				warm = GNUTLS_KTLS_SEND;
			else if (!strcmp(warm_arg, "rx"))
				warm = GNUTLS_KTLS_RECV;
			else
				return usage(stderr), 2;
		} else if (!strcmp(argv[i], "--help"))
			return usage(stdout), 0;
		else
			return usage(stderr), 2;
	}
	build_rows();
	if (list) {
		for (size_t i = 0; i < nrows; i++) {
			const struct row *r = &rows[i];

			printf("%-40s %-9s %-14s expect %s", r->name,
			       r->vers == VB ? "tls12,13" : r->vers == V13 ? "tls13" : "tls12",
			       r->modes == (MB | M_AUTO) ? "ktls,user,auto" :
			       r->modes == MB ? "ktls,user" : r->modes == M_AUTO ? "auto" :
			       "ktls", r->expect);
			if (r->expect_ktls)
				printf(", under KTLS %s", r->expect_ktls);
			if (r->expect_norekey)
				printf(", KTLS without rekey %s", r->expect_norekey);
			if (r->fault)
				printf(" [KTLS_FAULT=%s]", r->fault);
			if (r->seq)
				printf(" [steps %s%s]", r->seq,
				       r->variant == 1 ? ", nothing between" :
				       r->variant == 2 ? ", corked data between" : "");
			if (r->end_auto & END_CHECK)
				printf(" [auto: %s at the end]",
				       kt_dirs_name(r->end_auto));
			if (r->auto_needs)
				printf(" [auto: needs %s moved]", kt_dirs_name(r->auto_needs));
			if (r->notes)
				printf(" -- %s", r->notes);
			printf("\n");
		}
		return 0;
	}
	if (cases) {
		char buf[4096], *save = NULL, *t;

		snprintf(buf, sizeof(buf), "%s", cases);
		for (t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			size_t i;

			for (i = 0; i < nrows && fnmatch(t, rows[i].name, 0); i++)
				;
			if (i == nrows) {
				fprintf(stderr, "ktls-api: no row '%s' (--list)\n", t);
				return 2;
			}
		}
	}
	memset(&f, 0, sizeof(f));
	f.ktls = ktls;
	f.auto_mode = auto_mode;
	f.warm = warm;
	f.rekey = kt_kernel_can_rekey();
	if (kt_make_x509_creds(&f.scred, &f.ccred) < 0)
		return 1;
	creds_s = f.scred;
	creds_c = f.ccred;
	atexit(free_creds);	/* every process, for the leak checkers */

	for (size_t i = 0; i < nrows; i++) {
		for (unsigned v = V12; v <= V13; v <<= 1) {
			const struct row *r = &rows[i];
			int st, code;
			pid_t pid;
			double t0;

			if (!selected(cases, r->name) || !(vers & v) || !(r->vers & v) ||
			    (skips && selected(skips, r->name)))
				continue;
			if (!(r->modes & (auto_mode ? M_KTLS | M_AUTO : ktls ? M_KTLS : M_USER))) {
				if (!inner && cases)
					printf("SKIP: %s tls1%c %s (KTLS only)\n", r->name,
					       v == V13 ? '3' : '2', mode_arg);
				continue;
			}
			f.r = r;
			f.tls13 = v == V13;
			if (inner) {	/* like the forked rows: the row's
					 * sessions end with the process */
				int rc = run_row(&f);

				fflush(NULL);
				_exit(rc);
			}
			fflush(stdout);
			if (r->flags & R_ROOT)
				sysctl_save();
			t0 = kt_now();
			pid = fork();
			if (pid == 0) {
				alarm(0);
				_exit(run_row(&f));
			}
			for (;;) {
				if (waitpid(pid, &st, WNOHANG) == pid)
					break;
				if (kt_now() - t0 > ROW_TIMEOUT_S) {
					kill(pid, SIGKILL);
					waitpid(pid, &st, 0);
					fprintf(stderr, "FAIL: timeout after %d s\n", ROW_TIMEOUT_S);
					break;
				}
				usleep(10000);
			}
			if (r->flags & R_ROOT)
				sysctl_restore();
			code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
			ran++;
			printf("%s: %s tls1%c %s (expect %s", code == 0 ? "PASS" :
			       code == 77 ? "SKIP" : "FAIL", r->name,
			       v == V13 ? '3' : '2', mode_arg,
			       expected(&f));
			if (WIFSIGNALED(st))
				printf("; killed by signal %d (%s)", WTERMSIG(st),
				       strsignal(WTERMSIG(st)));
			printf(")\n");
			if (code != 0 && code != 77)
				failed++;
		}
	}
	if (ran == 0 && !list)
		fprintf(stderr, "ktls-api: no row selected\n");
	return failed ? 1 : 0;
}
