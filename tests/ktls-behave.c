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
 * ktls-behave: named behaviour cases that must come out the same whether
 * the receiving TLS client ("observer") runs its record layer in the
 * kernel (KTLS) or in userspace.
 *
 * Fixture: the process forks; the parent is the client (the observer),
 * the child the server (the "actor", which makes things happen: alerts,
 * injected records, key updates...).  TCP over 127.0.0.1, an in-memory
 * ECDSA P-256 self-signed certificate, the client does not verify it.
 * The fixture connects the two, and the server sends "hello", which the
 * client reads (serve(), observe(); a row's .fx changes that); then each
 * side runs its half of the case (BODY), given the connection and the
 * row, whose typed input (.in) says what to send and what to expect.
 *
 *   --observer ktls  (default) the client uses gnutls_transport_set_int();
 *                    after the handshake it must have
 *                    gnutls_transport_is_ktls_enabled() == RECV|SEND
 *                    (so run with a system config that has ktls = true)
 *   --observer user  the client uses its own push/pull/pull_timeout
 *                    functions, which keeps it in userspace even with
 *                    ktls = true; asserts the flags are 0
 *   --auto-warmup    ktls = auto (issue #14; run with a system config
 *                    that has ktls = auto): after each handshake nothing
 *                    may be offloaded; both ends then exchange 4 records
 *                    of 16 KiB each way (kt_warm(), checked), which moves
 *                    both directions of every end under KTLS to the
 *                    kernel mid-session (asserted: RECV|SEND, 0 for the
 *                    user observer and SRV_USER servers), and the case
 *                    runs unchanged with the outcome it has under
 *                    ktls = true (the sequence numbers the recv-seq cases
 *                    expect count the warm-up's records)
 *
 * The server uses gnutls_transport_set_int() (under ktls = true its
 * record layer is offloaded too), except in the cases that need it in
 * userspace: raw record injection with write(2), key updates and
 * renegotiation.  Cases that need the server's kernel TX (records of
 * arbitrary type sent with TLS_SET_RECORD_TYPE) assert it.
 *
 * Each case checks exact return codes; the expectations are what a
 * userspace GnuTLS 3.7.9 client gives, and the KTLS observer must give
 * the same.  The exceptions are declared in the case table: renegotiation
 * (refused under KTLS on purpose), key updates on kernels < 6.14, and
 * "known_diff" cases, a difference that is documented (a property of
 * kernel TLS) rather than a bug:
 * those still run and print XFAIL and do not fail the run unless
 * --strict; an XPASS (the difference went away) fails, so that the table
 * stays true.
 *
 * Usage: ktls-behave --case NAME[,NAME...]|all [--tls12|--tls13]
 *                    [--observer ktls|user] [--kernel-rekey yes|no|auto]
 *                    [--rbuf BYTES] [--strict] [--verbose] [--list]
 *                    [--auto-warmup] [--skip NAME[,NAME...]]
 *
 *   --kernel-rekey   whether the kernel can take new TLS 1.3 keys (Linux
 *                    >= 6.14); auto (default): kt_kernel_can_rekey()
 *                    (KTLS_REKEY as tests/ktls-suite sets it, else uname)
 *   --poll-again     poll the socket for input before retrying a
 *                    GNUTLS_E_AGAIN (bench/anchor, for upstream's KTLS)
 *   --rbuf           buffer size of the client's gnutls_record_recv calls
 *   --reader file    the client reads with gnutls_record_recv_file() into
 *                    a file instead (then reads the file back)
 *                    where a case does not fix it (default 65536: the KTLS
 *                    data fast path; 100 exercises the generic path)
 *
 * Output: one line per case, "PASS: <case> <tls> <observer>",
 * "FAIL: <case> <tls> <observer>: <step>: expected X got Y", "SKIP: ..."
 * (case not defined for this TLS version), "XFAIL:"/"XPASS:" for
 * known_diff cases.  Exit status: 0 all passed, 1 a failure, 2 usage.
 *
 * Build: cc -std=gnu11 ktls-behave.c $(pkg-config --cflags --libs gnutls)
 */

#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/socket.h>
#include <gnutls/x509.h>

#include "ktls-common.h"

#ifndef SOL_TLS
# define SOL_TLS 282
#endif
#ifndef TLS_SET_RECORD_TYPE
# define TLS_SET_RECORD_TYPE 1
#endif

#define V12 1u
#define V13 2u
#define VBOTH (V12 | V13)

#define IO_TIMEOUT_MS (30000 * (int)kt_slow())	/* TCG VMs are slow */
#define CASE_TIMEOUT_S (120 * kt_slow())
#define MAX_TLS_RECORD 16384

/* server flags */
#define SRV_USER 1u	/* custom transport: stays in userspace */
#define SRV_TICKETS 2u	/* session tickets enabled */
#define SRV_LATE_TICKET 4u	/* TLS 1.3: none sent at the end of the handshake
				 * (GNUTLS_NO_AUTO_SEND_TICKET) */

/* ------------------------------------------------------------------ */

struct opts {
	unsigned vers;		/* V12 or V13 */
	int observer_user;
	int kernel_rekey;
	size_t rbuf;
	int reader_file;	/* --reader file: gnutls_record_recv_file */
	int poll_again;		/* --poll-again: poll(POLLIN) before each retry */
	int auto_warm;		/* --auto-warmup: ktls = auto, moved by a warm-up */
	int strict;
	int verbose;
};

struct fx;
struct peer;
struct bcase;
/* A case's half: the server's (the actor's) or the client's (the
 * observer's), given the fixture's connection (see serve(), observe()). */
typedef void (*body_fn)(struct fx *, struct peer *, const struct bcase *);
#define BODY(name) static void name(struct fx *fx __attribute__((unused)), \
	struct peer *p __attribute__((unused)), \
	const struct bcase *c __attribute__((unused)))

/* What the fixture does around the two halves (0: the server accepts the
 * connection, sends "hello" (.greeting), which the client reads first;
 * after its half the server waits for the client to be done). */
#define FX_MANUAL 1u	/* the halves open their own connections */
#define FX_QUIET 2u	/* no greeting */
/* the server waits for the client's offload before it sends: a FIN or a
 * record before it would keep the client in userspace (the kernel attaches
 * the tls ULP to established sockets only) */
#define FX_WAIT 4u
/* then until the client has read the greeting: the kernel merges queued
 * data records in one read */
#define FX_ALONE 8u
#define FX_KTLS_TX 16u	/* the server's kernel TX is required */
#define FX_NO_LINGER 32u	/* the server's half ends the case itself */

/* typed inputs of the cases (the union member the case's halves read) */
struct alert_in {
	int level, desc;
};
struct big_in {
	size_t len, pad;	/* data bytes; TLS 1.3 padding */
};
struct raw_in;
struct ku_in;
struct forged;
union case_in {
	struct alert_in alert;		/* s_alert */
	const struct raw_in *raw;	/* s_raw */
	unsigned type;			/* s_typed: content type;
					 * s_hs_after_hs: handshake type */
	const struct ku_in *ku;		/* s_ku_malformed */
	const struct forged *forged;	/* s_forged */
	struct big_in big;		/* s_forged_big */
	unsigned ku_flags;		/* s_key_update */
	size_t pad;			/* c_observer_empty */
};

/* Where the KTLS observer is known to differ from userspace: a library
 * bug still to fix (XFAIL until then).  SAME: no difference allowed. */
#define SAME 0u
#define KD_V12 V12		/* under TLS 1.2 */
#define KD_V13 V13		/* under TLS 1.3 */
#define KD_BOTH VBOTH
#define KD_SMALL_RBUF 4u	/* only with --rbuf < 16384 (generic path) */
#define KD_BIG_RBUF 8u		/* only with --rbuf >= 16384 (fast path) */
#define KD_REKEY_KERNEL 16u	/* only on kernels that take new keys */
#define KD_RECV_FILE 32u	/* only with --reader file */

struct bcase {
	const char *name;
	unsigned vers;		/* versions the case is defined for */
	body_fn server;
	body_fn client;
	unsigned srv;		/* SRV_* of the server's connection */
	unsigned fx;		/* FX_* */
	const char *greeting;	/* instead of "hello" */
	union case_in in;
	unsigned known_diff;	/* KD_* or SAME */
	const char *diff_note;	/* what differs, for known_diff */
	const char *what;	/* one line for --list */
};

struct fx {
	const struct opts *o;
	const struct bcase *c;
	int lfd;
	struct sockaddr_in addr;
	int to_srv, from_cli;	/* pipes: client -> server */
	int to_cli, from_srv;	/* pipes: server -> client */
	int is_server;
	int failed;
	char label[128];
	gnutls_certificate_credentials_t scred, ccred;
	gnutls_datum_t ticket_key;
};

struct peer {
	gnutls_session_t s;
	int fd;
};

static int is_known_diff(const struct opts *o, const struct bcase *c)
{
	if (o->observer_user || !(c->known_diff & o->vers))
		return 0;
	if ((c->known_diff & KD_BIG_RBUF) && o->rbuf < MAX_TLS_RECORD)
		return 0;
	if ((c->known_diff & KD_REKEY_KERNEL) && !o->kernel_rekey)
		return 0;
	if ((c->known_diff & KD_SMALL_RBUF) && o->rbuf >= MAX_TLS_RECORD)
		return 0;
	if ((c->known_diff & KD_RECV_FILE) && !o->reader_file)
		return 0;
	return 1;
}

static gnutls_x509_crt_t g_crt;
static gnutls_x509_privkey_t g_key;

/* ------------------------------------------------------------------ */
/* reporting */

static const char *ver_name(unsigned v)
{
	return v == V12 ? "tls12" : "tls13";
}

static const char *rc_str(ssize_t rc, char *buf, size_t n)
{
	if (rc < 0)
		snprintf(buf, n, "%s(%zd)", kt_ename((int)rc), rc);
	else if (rc == 0)
		snprintf(buf, n, "0(EOF)");
	else
		snprintf(buf, n, "%zd bytes", rc);
	return buf;
}

static void data_str(const unsigned char *d, size_t len, char *buf,
		     size_t n)
{
	size_t i, o = 0;

	o += snprintf(buf + o, n - o, "data[%zu]'", len);
	for (i = 0; i < len && i < 24 && o + 6 < n; i++) {
		if (d[i] >= 0x20 && d[i] < 0x7f && d[i] != '\'')
			buf[o++] = d[i];
		else
			o += snprintf(buf + o, n - o, "\\x%02x", d[i]);
	}
	snprintf(buf + o, n - o, "%s'", len > 24 ? "..." : "");
}

/* Records a failure of this side; the server's are also its exit status. */
static void vreport(struct fx *fx, const char *kind, const char *fmt,
		    va_list ap)
{
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	fx->failed = 1;
	printf("%s: %s%s: %s%s\n",
	       is_known_diff(fx->o, fx->c) ? "XFAIL" : "FAIL", fx->label,
	       fx->is_server ? " (server)" : "", kind, msg);
	fflush(stdout);
}

static void fail(struct fx *fx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(fx, "", fmt, ap);
	va_end(ap);
}

static void note(struct fx *fx, const char *fmt, ...)
{
	va_list ap;

	if (!fx->o->verbose)
		return;
	va_start(ap, fmt);
	printf("  [%s] ", fx->is_server ? "srv" : "cli");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
}

static int expect_rc(struct fx *fx, const char *step, ssize_t got,
		     ssize_t want)
{
	char g[96], w[96];

	note(fx, "%s: %s", step, rc_str(got, g, sizeof(g)));
	if (got == want)
		return 0;
	fail(fx, "%s: expected %s got %s", step, rc_str(want, w, sizeof(w)),
	     rc_str(got, g, sizeof(g)));
	return -1;
}

/* A hard error of the fixture itself: report and end this side. */
static void die(struct fx *fx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(fx, "fixture: ", fmt, ap);
	va_end(ap);
	if (fx->is_server)
		_exit(1);
}

/* ------------------------------------------------------------------ */
/* synchronisation over pipes */

#define SYNC_GO 'G'
#define SYNC_DONE 'D'

static void sync_send(struct fx *fx, char c)
{
	int fd = fx->is_server ? fx->to_cli : fx->to_srv;

	if (write(fd, &c, 1) != 1 && fx->is_server)
		_exit(1);
}

/* Waits for one byte from the other side.  The server ends quietly when
 * the client is done early (the client already reported why). */
static int sync_wait(struct fx *fx, int timeout_ms)
{
	int fd = fx->is_server ? fx->from_cli : fx->from_srv;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c;

	if (poll(&p, 1, timeout_ms) <= 0) {
		die(fx, "no word from the %s in %d ms",
		    fx->is_server ? "client" : "server", timeout_ms);
		return -1;
	}
	if (read(fd, &c, 1) != 1) {
		if (fx->is_server)
			_exit(0);
		die(fx, "the server ended early");
		return -1;
	}
	if (fx->is_server && c == SYNC_DONE)
		_exit(fx->failed);
	return c;
}

/* ------------------------------------------------------------------ */
/* transport */

static void set_transport(gnutls_session_t s, int fd, int user)
{
	if (!user) {
		gnutls_transport_set_int(s, fd);
		return;
	}
	kt_set_user_transport(s, fd);
}

static const char *priority(const struct opts *o)
{
	return o->vers == V12 ? "NORMAL:-VERS-ALL:+VERS-TLS1.2" :
				"NORMAL:-VERS-ALL:+VERS-TLS1.3";
}

static int handshake(gnutls_session_t s)
{
	int ret;

	do {
		ret = gnutls_handshake(s);
	} while (ret < 0 && !gnutls_error_is_fatal(ret));
	return ret;
}

static struct peer srv_open(struct fx *fx, unsigned flags)
{
	struct peer p;
	int ret;

	/* the client may give up before it connects: watch its pipe too */
	for (;;) {
		struct pollfd pf[2] = { { .fd = fx->lfd, .events = POLLIN },
					{ .fd = fx->from_cli, .events = POLLIN } };

		if (poll(pf, 2, IO_TIMEOUT_MS) <= 0)
			die(fx, "no connection from the client");
		if (pf[1].revents)
			sync_wait(fx, 0);	/* SYNC_DONE ends the server */
		if (pf[0].revents)
			break;
	}
	p.fd = accept(fx->lfd, NULL, NULL);
	if (p.fd < 0)
		die(fx, "accept: %s", strerror(errno));
	if (gnutls_init(&p.s, GNUTLS_SERVER | ((flags & SRV_LATE_TICKET) ?
					       GNUTLS_NO_AUTO_SEND_TICKET : 0)) < 0 ||
	    gnutls_priority_set_direct(p.s, priority(fx->o), NULL) < 0 ||
	    gnutls_credentials_set(p.s, GNUTLS_CRD_CERTIFICATE, fx->scred) < 0)
		die(fx, "server session setup");
	if ((flags & SRV_TICKETS) &&
	    gnutls_session_ticket_enable_server(p.s, &fx->ticket_key) < 0)
		die(fx, "gnutls_session_ticket_enable_server");
	set_transport(p.s, p.fd, flags & SRV_USER);
	gnutls_record_set_timeout(p.s, IO_TIMEOUT_MS);
	gnutls_handshake_set_timeout(p.s, IO_TIMEOUT_MS);
	ret = handshake(p.s);
	if (ret < 0)
		die(fx, "server handshake: %s", gnutls_strerror_name(ret));
	if (fx->o->auto_warm) {
		/* ktls = auto: nothing moved yet; the warm-up moves both
		 * directions of a server on gnutls_transport_set_int() */
		if (kt_expect_ktls(p.s, 0, "server after the handshake") < 0 ||
		    kt_warm(p.s, p.fd, 1, 1, 1) < 0 ||
		    kt_expect_ktls(p.s, (flags & SRV_USER) ? 0 : GNUTLS_KTLS_DUPLEX,
				   "server after the warm-up") < 0)
			die(fx, "server warm-up");
	}
	note(fx, "server: %s, ktls flags %d", gnutls_cipher_get_name(
		     gnutls_cipher_get(p.s)),
	     (int)gnutls_transport_is_ktls_enabled(p.s));
	return p;
}

/* The cases that send records with the kernel's help need its TX. */
static void srv_require_ktls_tx(struct fx *fx, struct peer *p)
{
	if (!(gnutls_transport_is_ktls_enabled(p->s) & GNUTLS_KTLS_SEND))
		die(fx, "the server's TX is not offloaded (ktls flags %d); "
		    "this case needs ktls = true and a kernel with TLS",
		    (int)gnutls_transport_is_ktls_enabled(p->s));
}

static void srv_send(struct fx *fx, struct peer *p, const void *d, size_t n)
{
	size_t off = 0;
	ssize_t ret;

	while (off < n) {
		ret = gnutls_record_send(p->s, (const char *)d + off, n - off);
		if (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED)
			continue;
		if (ret < 0)
			die(fx, "server send: %s", gnutls_strerror_name(ret));
		off += ret;
	}
}

static void srv_send_str(struct fx *fx, struct peer *p, const char *str)
{
	srv_send(fx, p, str, strlen(str));
}

/* 0, or -1 when the client closed the connection first (may_close: it
 * may give up at a record header, before the body is written; its half
 * checks what it got) */
static int raw_write2(struct fx *fx, int fd, const void *d, size_t n,
		      int may_close)
{
	size_t off = 0;
	ssize_t ret;

	while (off < n) {
		ret = write(fd, (const char *)d + off, n - off);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0 && may_close && (errno == ECONNRESET || errno == EPIPE)) {
			note(fx, "write: %s (the client is done)", strerror(errno));
			return -1;
		}
		if (ret < 0)
			die(fx, "write: %s", strerror(errno));
		off += ret;
	}
	return 0;
}

static void raw_write(struct fx *fx, int fd, const void *d, size_t n)
{
	raw_write2(fx, fd, d, n, 0);
}

/* One record of the given type, encrypted by the kernel's TX. */
static void ktls_send_typed(struct fx *fx, int fd, unsigned char type,
			    const void *d, size_t n)
{
	char cbuf[CMSG_SPACE(1)];
	struct msghdr msg;
	struct iovec iov = { (void *)d, n };
	struct cmsghdr *cmsg;
	ssize_t ret;

	memset(&msg, 0, sizeof(msg));
	memset(cbuf, 0, sizeof(cbuf));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf;
	msg.msg_controllen = sizeof(cbuf);
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_TLS;
	cmsg->cmsg_type = TLS_SET_RECORD_TYPE;
	cmsg->cmsg_len = CMSG_LEN(1);
	*CMSG_DATA(cmsg) = type;
	ret = sendmsg(fd, &msg, MSG_NOSIGNAL);
	if (ret != (ssize_t)n)
		die(fx, "sendmsg of a type %u record: %zd %s", type, ret,
		    ret < 0 ? strerror(errno) : "");
}

static struct peer cli_open(struct fx *fx, const gnutls_datum_t *resume)
{
	struct peer p;
	unsigned want = fx->o->observer_user ? 0 :
			GNUTLS_KTLS_RECV | GNUTLS_KTLS_SEND;
	int ret, flags;

	p.s = NULL;
	p.fd = kt_connect(&fx->addr, 0);
	if (p.fd < 0) {
		die(fx, "connect: %s", strerror(errno));
		return p;
	}
	if (gnutls_init(&p.s, GNUTLS_CLIENT) < 0 ||
	    gnutls_priority_set_direct(p.s, priority(fx->o), NULL) < 0 ||
	    gnutls_credentials_set(p.s, GNUTLS_CRD_CERTIFICATE, fx->ccred) < 0 ||
	    gnutls_server_name_set(p.s, GNUTLS_NAME_DNS, "localhost", 9) < 0 ||
	    (resume && gnutls_session_set_data(p.s, resume->data,
					       resume->size) < 0)) {
		die(fx, "client session setup");
		return p;
	}
	set_transport(p.s, p.fd, fx->o->observer_user);
	gnutls_record_set_timeout(p.s, IO_TIMEOUT_MS);
	gnutls_handshake_set_timeout(p.s, IO_TIMEOUT_MS);
	ret = handshake(p.s);
	if (ret < 0) {
		die(fx, "client handshake: %s", gnutls_strerror_name(ret));
		return p;
	}
	if (fx->o->auto_warm) {
		if (kt_expect_ktls(p.s, 0, "observer after the handshake") < 0 ||
		    kt_warm(p.s, p.fd, 0, 1, 1) < 0) {
			die(fx, "observer warm-up");
			return p;
		}
	}
	flags = gnutls_transport_is_ktls_enabled(p.s);
	if ((unsigned)flags != want) {
		die(fx, "observer %s: gnutls_transport_is_ktls_enabled() = %d, "
		    "expected %u", fx->o->observer_user ? "user" : "ktls",
		    flags, want);
		return p;
	}
	note(fx, "client: %s %s, ktls flags %d",
	     gnutls_protocol_get_name(gnutls_protocol_get_version(p.s)),
	     gnutls_cipher_get_name(gnutls_cipher_get(p.s)), flags);
	return p;
}

static void peer_close(struct peer *p)
{
	if (p->s)
		gnutls_deinit(p->s);
	if (p->fd >= 0)
		close(p->fd);
	p->s = NULL;
	p->fd = -1;
}

/* ------------------------------------------------------------------ */
/* client reads */

/* One gnutls_record_recv of at most n bytes; GNUTLS_E_AGAIN and
 * _INTERRUPTED are retried (a blocking TLS 1.3 session returns AGAIN
 * after a post-handshake message or an empty record).  --poll-again: the
 * socket is polled for input before each retry, as a program that sees
 * AGAIN on a blocking socket would do (bench/anchor: upstream's KTLS
 * returns AGAIN from a blocking recv when no record is there yet). */
static ssize_t rd(struct fx *fx, gnutls_session_t s, void *buf, size_t n)
{
	static FILE *scratch;	/* --reader file: where recv_file writes */
	ssize_t ret;
	int again = 0;

	do {
		if (fx->o->reader_file) {
			off_t off = 0;

			if (!scratch && !(scratch = tmpfile()))
				die(fx, "tmpfile: %s", strerror(errno));
			ret = kt_recv_file(s, fileno(scratch), &off,
						      n);
			if (ret > 0 && (off != ret ||
			    pread(fileno(scratch), buf, ret, 0) != ret))
				die(fx, "recv_file returned %zd, offset %lld",
				    ret, (long long)off);
		} else {
			ret = gnutls_record_recv(s, buf, n);
		}
		if (ret == GNUTLS_E_AGAIN && fx->o->poll_again) {
			struct pollfd pfd = { .fd = gnutls_transport_get_int(s),
					      .events = POLLIN };

			if (poll(&pfd, 1, IO_TIMEOUT_MS) == 0)
				break;
		}
	} while ((ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED) &&
		 ++again < 64);
	if (again)
		note(fx, "recv: %d x AGAIN/INTERRUPTED before %zd", again, ret);
	return ret;
}

/* Reads exactly the bytes of want (in --rbuf sized calls). */
static int expect_data(struct fx *fx, const char *step, gnutls_session_t s,
		       const void *want, size_t n)
{
	unsigned char *buf = malloc(n + fx->o->rbuf);
	size_t got = 0;
	ssize_t ret = 0;
	char g[96], w[96];
	int rv = 0;

	while (got < n) {
		ret = rd(fx, s, buf + got, fx->o->rbuf);
		if (ret <= 0)
			break;
		got += ret;
	}
	data_str(want, n, w, sizeof(w));
	if (got > n || (got == n && memcmp(buf, want, n) != 0)) {
		data_str(buf, got, g, sizeof(g));
		fail(fx, "%s: expected %s got %s", step, w, g);
		rv = -1;
	} else if (got < n) {
		char r[96];

		data_str(buf, got, g, sizeof(g));
		fail(fx, "%s: expected %s got %s then %s", step, w, g,
		     rc_str(ret, r, sizeof(r)));
		rv = -1;
	} else
		note(fx, "%s: %s", step, w);
	free(buf);
	return rv;
}

static int expect_str(struct fx *fx, const char *step, gnutls_session_t s,
		      const char *want)
{
	return expect_data(fx, step, s, want, strlen(want));
}

/* One read that must return the error (or 0) want, not data. */
static int expect_recv_rc(struct fx *fx, const char *step, gnutls_session_t s,
			  ssize_t want)
{
	unsigned char *buf = malloc(fx->o->rbuf);
	ssize_t ret = rd(fx, s, buf, fx->o->rbuf);
	char g[96], w[96];
	int rv = 0;

	if (ret > 0) {
		data_str(buf, ret, g, sizeof(g));
		fail(fx, "%s: expected %s got %s", step,
		     rc_str(want, w, sizeof(w)), g);
		rv = -1;
	} else
		rv = expect_rc(fx, step, ret, want);
	free(buf);
	return rv;
}

static int expect_alert(struct fx *fx, const char *step, gnutls_session_t s,
			int want)
{
	int got = gnutls_alert_get(s);

	note(fx, "%s: alert %s", step, gnutls_alert_get_name(got));
	if (got == want)
		return 0;
	fail(fx, "%s: expected alert %s(%d) got %s(%d)", step,
	     gnutls_alert_get_name(want), want,
	     gnutls_alert_get_name(got) ? gnutls_alert_get_name(got) : "?", got);
	return -1;
}

static int kernel_rekey(struct fx *fx)
{
	return fx->o->observer_user || fx->o->kernel_rekey;
}

/* The code of an expected result named in the table (GNUTLS_E_...). */
static int error_code(struct fx *fx, const char *name)
{
	int code;

	if (kt_error_code(name, &code) == 0)
		return code;
	fail(fx, "the table names no GnuTLS error: '%s'", name);
	return 1;	/* no read returns it: the step fails too */
}

/* ------------------------------------------------------------------ */
/* cases: closing */

BODY(s_close_notify)
{
	int ret;

	ret = gnutls_bye(p->s, GNUTLS_SHUT_WR);
	expect_rc(fx, "gnutls_bye(SHUT_WR)", ret, 0);
}

BODY(c_close_notify)
{
	expect_recv_rc(fx, "recv#2", p->s, 0);
	expect_recv_rc(fx, "recv#3", p->s, 0);
}

BODY(s_eof_no_close_notify)
{
	shutdown(p->fd, SHUT_WR);
}

BODY(c_eof_no_close_notify)
{
	expect_recv_rc(fx, "recv#2", p->s, GNUTLS_E_PREMATURE_TERMINATION);
}

/* close_notify, then (userspace server) nothing; or with the kernel's TX
 * (a server not SRV_USER), application data after the close_notify. */
BODY(s_after_close_notify)
{
	int ret;

	ret = gnutls_bye(p->s, GNUTLS_SHUT_WR);
	expect_rc(fx, "gnutls_bye(SHUT_WR)", ret, 0);
	if (!(c->srv & SRV_USER)) {
		srv_require_ktls_tx(fx, p);
		if (send(p->fd, "late", 4, MSG_NOSIGNAL) != 4)
			die(fx, "send after close_notify: %s", strerror(errno));
	}
}

/* The observer closes both ways: bye(SHUT_RDWR) waits for the server's
 * close_notify (received by the kernel under KTLS). */
BODY(s_bye_rdwr)
{
	char buf[64];
	ssize_t ret;

	ret = rd(fx, p->s, buf, sizeof(buf));
	expect_rc(fx, "recv close_notify", ret, 0);
	ret = gnutls_bye(p->s, GNUTLS_SHUT_WR);
	expect_rc(fx, "gnutls_bye(SHUT_WR)", ret, 0);
}

BODY(c_bye_rdwr)
{
	int ret;

	do {
		ret = gnutls_bye(p->s, GNUTLS_SHUT_RDWR);
	} while (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED);
	expect_rc(fx, "gnutls_bye(SHUT_RDWR)", ret, 0);
}

/* ------------------------------------------------------------------ */
/* cases: alerts */

BODY(s_alert)
{
	int level = c->in.alert.level, desc = c->in.alert.desc;
	int ret;

	ret = gnutls_alert_send(p->s, level, desc);
	expect_rc(fx, "gnutls_alert_send", ret, 0);
	if (level == GNUTLS_AL_WARNING)
		srv_send_str(fx, p, "after");
}


BODY(c_warning_alert)
{
	if (fx->o->vers == V12) {
		if (expect_recv_rc(fx, "recv#2", p->s,
				   GNUTLS_E_WARNING_ALERT_RECEIVED) == 0)
			expect_alert(fx, "alert", p->s, c->in.alert.desc);
		expect_str(fx, "recv#3", p->s, "after");
	} else {
		/* TLS 1.3: every alert but close_notify/user_canceled ends
		 * the session, whatever its level */
		if (expect_recv_rc(fx, "recv#2", p->s,
				   GNUTLS_E_FATAL_ALERT_RECEIVED) == 0)
			expect_alert(fx, "alert", p->s, c->in.alert.desc);
		expect_recv_rc(fx, "recv#3", p->s, GNUTLS_E_INVALID_SESSION);
	}
}

BODY(c_fatal_alert)
{
	if (expect_recv_rc(fx, "recv#2", p->s,
			   GNUTLS_E_FATAL_ALERT_RECEIVED) == 0)
		expect_alert(fx, "alert", p->s, c->in.alert.desc);
	expect_recv_rc(fx, "recv#3", p->s, GNUTLS_E_INVALID_SESSION);
}

/* The observer sends: the server (userspace) must see the fatal alert. */
BODY(s_observer_alert)
{
	char buf[64];
	ssize_t ret;

	ret = rd(fx, p->s, buf, sizeof(buf));
	if (ret > 0) {
		buf[ret < (ssize_t)sizeof(buf) ? ret : (ssize_t)sizeof(buf) - 1] = 0;
		expect_rc(fx, "recv#1 (\"x\")", ret, 1);
		ret = rd(fx, p->s, buf, sizeof(buf));
	}
	if (expect_rc(fx, "recv#2", ret, GNUTLS_E_FATAL_ALERT_RECEIVED) == 0)
		expect_alert(fx, "alert", p->s, GNUTLS_A_ACCESS_DENIED);
}

BODY(c_observer_alert)
{
	ssize_t ret;

	ret = gnutls_record_send(p->s, "x", 1);
	expect_rc(fx, "send", ret, 1);
	ret = gnutls_alert_send(p->s, GNUTLS_AL_FATAL, GNUTLS_A_ACCESS_DENIED);
	expect_rc(fx, "gnutls_alert_send", ret, 0);
	sync_send(fx, SYNC_GO);	/* harmless; the server does not wait */
}

/* ------------------------------------------------------------------ */
/* cases: raw records from a userspace server */

/* A raw record: header (type, version 3,minor, length len), then sent
 * bytes of a body of len (all: 0), then a FIN or not; want: what the
 * observer's read after "hello" gives (then INVALID_SESSION). */
struct raw_in {
	unsigned char type, minor;
	size_t len, sent;
	int fin;
	const char *want;
};

enum { RAW_BAD_MAC, RAW_OVERFLOW, RAW_TRUNCATED, RAW_SHORT, RAW_BAD_VERSION,
       RAW_OUTER_TYPE_99 };
static const struct raw_in raw_in[] = {
	[RAW_BAD_MAC] = { .type = 23, .minor = 3, .len = 64,
			  .want = "GNUTLS_E_DECRYPTION_FAILED" },
	[RAW_OVERFLOW] = { .type = 23, .minor = 3, .len = 16384 + 2048 + 1,
			   .want = "GNUTLS_E_RECORD_OVERFLOW" },
	/* userspace: a record cut short by EOF is a length error */
	[RAW_TRUNCATED] = { .type = 23, .minor = 3, .len = 100, .sent = 10,
			    .fin = 1,
			    .want = "GNUTLS_E_UNEXPECTED_PACKET_LENGTH" },
	/* less than the AEAD tag; the kernel waits for the rest of a record
	 * shorter than the AEAD overhead, so the stream ends there */
	[RAW_SHORT] = { .type = 23, .minor = 3, .len = 5, .fin = 1,
			.want = "GNUTLS_E_DECRYPTION_FAILED" },
	[RAW_BAD_VERSION] = { .type = 23, .minor = 1, .len = 64,
			      .want = "GNUTLS_E_UNSUPPORTED_VERSION_PACKET" },
	[RAW_OUTER_TYPE_99] = { .type = 99, .minor = 3, .len = 64,
				.want = "GNUTLS_E_UNEXPECTED_PACKET" },
};

BODY(s_raw)
{
	const struct raw_in *r = c->in.raw;
	unsigned char hdr[5] = { r->type, 3, r->minor, r->len >> 8,
				 r->len & 0xff };
	unsigned char *body = malloc(r->len);
	unsigned i;

	for (i = 0; i < r->len; i++)
		body[i] = (unsigned char)(i * 37 + 11);
	if (raw_write2(fx, p->fd, hdr, sizeof(hdr), 1) == 0)
		raw_write2(fx, p->fd, body, r->sent ? r->sent : r->len, 1);
	free(body);
	if (r->fin)
		shutdown(p->fd, SHUT_WR);
}

BODY(c_raw)
{
	expect_recv_rc(fx, "recv#2", p->s, error_code(fx, c->in.raw->want));
	expect_recv_rc(fx, "recv#3", p->s, GNUTLS_E_INVALID_SESSION);
}

/* ------------------------------------------------------------------ */
/* cases: records of unexpected type, encrypted by the server's kernel */

BODY(s_typed)
{
	unsigned char body[64];
	size_t n;

	if (c->in.type == 20) {
		body[0] = 1;
		n = 1;
	} else if (c->in.type == 24) {
		/* heartbeat_request, payload_length 1, "x", 16 bytes pad */
		memset(body, 0x5a, sizeof(body));
		body[0] = 1;
		body[1] = 0;
		body[2] = 1;
		body[3] = 'x';
		n = 3 + 1 + 16;
	} else {
		body[0] = 'x';
		n = 1;
	}
	ktls_send_typed(fx, p->fd, (unsigned char)c->in.type, body, n);
	srv_send_str(fx, p, "after");
}

/* Userspace GnuTLS: UNEXPECTED_PACKET, and the session goes on (the
 * record is dropped) -- except an unknown outer type under TLS 1.2,
 * which is rejected from the header and ends the session. */
BODY(c_typed)
{
	int known = c->in.type >= 20 && c->in.type <= 24;

	expect_recv_rc(fx, "recv#2", p->s, GNUTLS_E_UNEXPECTED_PACKET);
	if (fx->o->vers == V12 && !known)
		expect_recv_rc(fx, "recv#3", p->s, GNUTLS_E_INVALID_SESSION);
	else
		expect_str(fx, "recv#3", p->s, "after");
}

/* A post-handshake handshake message of type c->in.type. */
BODY(s_hs_after_hs)
{
	unsigned char msg[4 + 64];
	size_t blen = c->in.type == 20 ? (fx->o->vers == V12 ? 12 : 32) : 40;
	unsigned i;

	msg[0] = (unsigned char)c->in.type;
	msg[1] = 0;
	msg[2] = 0;
	msg[3] = (unsigned char)blen;
	for (i = 0; i < blen; i++)
		msg[4 + i] = (unsigned char)(i * 13 + 1);
	if (c->in.type == 1) {	/* ClientHello: legacy_version 3,3 */
		msg[4] = 3;
		msg[5] = 3;
	}
	ktls_send_typed(fx, p->fd, 22, msg, 4 + blen);
	srv_send_str(fx, p, "after");
}

BODY(c_hs_after_hs)
{
	/* userspace: UNEXPECTED_PACKET, the message is dropped and the
	 * session goes on, TLS 1.2 and 1.3 alike */
	expect_recv_rc(fx, "recv#2", p->s, GNUTLS_E_UNEXPECTED_PACKET);
	expect_str(fx, "recv#3", p->s, "after");
}

/* Malformed KeyUpdate messages (TLS 1.3), sent as correctly encrypted
 * handshake records through the server's kernel TX (c->in.ku).
 * RFC 8446 makes each fatal; GnuTLS reports it and the application sends
 * the alert (gnutls_alert_send_appropriate).  What follows must never be
 * taken as data under keys nobody agreed on. */
enum { KU_BAD_LENGTH, KU_BAD_VALUE, KU_TRAILING, KU_AFTER_OTHER };
struct ku_in {
	unsigned char bytes[12];
	unsigned len;
	const char *want;	/* the read after "hello" */
	int valid_first;	/* starts with a valid KeyUpdate: a kernel that
				 * cannot take new keys refuses that */
};
static const struct ku_in ku_bad[] = {
	[KU_BAD_LENGTH] = { { 24, 0, 0, 2, 0, 0 }, 6,
			    "GNUTLS_E_UNEXPECTED_PACKET_LENGTH", 0 },
	[KU_BAD_VALUE] = { { 24, 0, 0, 1, 5 }, 5,
			   "GNUTLS_E_RECEIVED_ILLEGAL_PARAMETER", 0 },
	/* a KeyUpdate with another message after it in the same record:
	 * handshake messages must not span a key change.  GnuTLS 3.7.9
	 * takes the first KeyUpdate and moves to new keys; the record that
	 * follows, still under the old ones, then fails to decrypt */
	[KU_TRAILING] = { { 24, 0, 0, 1, 0, 24, 0, 0, 1, 0 }, 10,
			  "GNUTLS_E_DECRYPTION_FAILED", 1 },
	/* a truncated message before the KeyUpdate */
	[KU_AFTER_OTHER] = { { 24, 0, 0, 3, 0, 24, 0, 0, 1, 0 }, 10,
			     "GNUTLS_E_UNEXPECTED_PACKET_LENGTH", 0 },
};

BODY(s_ku_malformed)
{
	ktls_send_typed(fx, p->fd, 22, c->in.ku->bytes, c->in.ku->len);
	srv_send_str(fx, p, "after");
}

BODY(c_ku_malformed)
{
	char buf[64];
	ssize_t ret;

	expect_recv_rc(fx, "recv#2 (malformed KeyUpdate)", p->s,
		       c->in.ku->valid_first && !kernel_rekey(fx) ?
		       GNUTLS_E_UNIMPLEMENTED_FEATURE :
		       error_code(fx, c->in.ku->want));
	/* the session is to be closed now; a further read gives an error
	 * or the data sent under the unchanged keys, never anything else */
	ret = rd(fx, p->s, buf, sizeof(buf));
	if (ret > 0 && (ret != 5 || memcmp(buf, "after", 5) != 0))
		fail(fx, "recv#3: %zd bytes that are not 'after'", ret);
}

/* ------------------------------------------------------------------ */
/* cases: records forged by hand with the (userspace) server's own keys */

/* A record GnuTLS would never send, encrypted with the server's current
 * write key and sequence number: any (outer, or TLS 1.3 inner) type, any
 * length, also beyond the limits, TLS 1.3 padding, a broken tag, or cut
 * short by a FIN.  Advances the server's write sequence number, so that
 * gnutls_record_send() goes on after it.  Needs SRV_USER. */
#define FORGE_BAD_TAG 1u	/* flip a bit of the tag */
#define FORGE_CUT 2u		/* write half of the record, then FIN */

static void forge_send(struct fx *fx, struct peer *p, unsigned char type,
		       const void *data, size_t len, size_t pad,
		       unsigned flags)
{
	gnutls_cipher_algorithm_t alg = gnutls_cipher_get(p->s);
	int tls13 = gnutls_protocol_get_version(p->s) == GNUTLS_TLS1_3;
	size_t tag = gnutls_cipher_get_tag_size(alg), ptlen, ctlen, hlen;
	unsigned char seq[8], nonce[12], aad[13], *pt, *rec;
	gnutls_datum_t iv, key;
	gnutls_aead_cipher_hd_t h;
	unsigned i, explicit_nonce;
	uint64_t s;

	if (gnutls_record_get_state(p->s, 0, NULL, &iv, &key, seq) < 0 ||
	    gnutls_aead_cipher_init(&h, alg, &key) < 0)
		die(fx, "forge: no write state / AEAD");
	ptlen = len + (tls13 ? 1 + pad : 0);
	pt = calloc(1, ptlen + 1);
	rec = malloc(5 + 8 + ptlen + tag);
	memcpy(pt, data, len);
	if (tls13)
		pt[len] = type;
	/* TLS 1.2 AES-GCM/CCM: 4-byte salt + explicit nonce (the sequence
	 * number, as GnuTLS and the kernel use); else IV xor sequence */
	explicit_nonce = !tls13 && iv.size == 4;
	memset(nonce, 0, sizeof(nonce));
	if (explicit_nonce) {
		memcpy(nonce, iv.data, 4);
		memcpy(nonce + 4, seq, 8);
	} else {
		memcpy(nonce, iv.data, 12);
		for (i = 0; i < 8; i++)
			nonce[4 + i] ^= seq[i];
	}
	hlen = 5 + (explicit_nonce ? 8 : 0);
	ctlen = ptlen + tag;
	rec[0] = tls13 ? 23 : type;
	rec[1] = 3;
	rec[2] = 3;
	rec[3] = (unsigned char)((hlen - 5 + ctlen) >> 8);
	rec[4] = (unsigned char)(hlen - 5 + ctlen);
	if (explicit_nonce)
		memcpy(rec + 5, seq, 8);
	if (tls13)
		memcpy(aad, rec, 5);
	else {
		memcpy(aad, seq, 8);
		aad[8] = type;
		aad[9] = 3;
		aad[10] = 3;
		aad[11] = (unsigned char)(len >> 8);
		aad[12] = (unsigned char)len;
	}
	if (gnutls_aead_cipher_encrypt(h, nonce, explicit_nonce ? 12 : iv.size,
				       aad, tls13 ? 5 : 13, tag, pt, ptlen,
				       rec + hlen, &ctlen) < 0)
		die(fx, "forge: encrypt");
	if (flags & FORGE_BAD_TAG)
		rec[hlen + ctlen - 1] ^= 0x01;
	raw_write(fx, p->fd, rec, flags & FORGE_CUT ? (hlen + ctlen) / 2 :
		  hlen + ctlen);
	if (flags & FORGE_CUT)
		shutdown(p->fd, SHUT_WR);
	for (s = 0, i = 0; i < 8; i++)
		s = s << 8 | seq[i];
	s++;
	for (i = 0; i < 8; i++)
		seq[7 - i] = (unsigned char)(s >> (8 * i));
	if (gnutls_record_set_state(p->s, 0, seq) < 0)
		die(fx, "forge: gnutls_record_set_state");
	gnutls_aead_cipher_deinit(h);	/* iv, key: the session's own */
	free(pt);
	free(rec);
}

static unsigned char pattern(size_t i);

/* A sequence of forged records between "hello" and "after", then the
 * server's close_notify.  want: what the observer's reads after "hello"
 * give, in order, for TLS 1.2 ([0]) and 1.3 ([1]) (see read_words); the
 * reads stop after the last.  alert: the alert the observer sends for the first
 * error with gnutls_alert_send_appropriate(), which the server must
 * receive as a fatal alert (-1: none sent). */
#define FR_MAX 3
struct forged {
	struct {
		int type;	/* -1: end of list */
		const char *d;
		unsigned len, pad, flags;
	} r[FR_MAX];
	const char *want[2];
	int alert[2];
};

/* a syntactically valid NewSessionTicket: lifetime 60, age_add, nonce
 * {7}, ticket of 8 bytes, no extensions (4 + 19 bytes) */
#define NST "\x04\x00\x00\x13" "\x00\x00\x00\x3c" "\x01\x02\x03\x04" \
	"\x01\x07" "\x00\x08" "ABCDEFGH" "\x00\x00"
#define BOTH(x) { x, x }

enum {
	F_EMPTY_CCS, F_EMPTY_ALERT, F_EMPTY_HS, F_EMPTY_APPDATA,
	F_EMPTY_HEARTBEAT, F_EMPTY_99, F_ALERT_SHORT, F_ALERT_LONG,
	F_ALERT_TWO_IN_ONE, F_ALERT_REPEATED, F_ALERT_UNKNOWN_DESC,
	F_ALERT_UNKNOWN_LEVEL, F_TAG_FLIPPED, F_CUT_VALID_RECORD,
	F_NST_SPLIT, F_NST_COALESCED, F_NST_SPLIT_HEADER, F_KU_SPLIT,
	F_NST_THEN_KU, F_HS_SPLIT_THEN_DATA, F_INNER_ALL_ZERO,
	F_PADDING_ONLY_HS,
};

#define AL(x) GNUTLS_A_##x
static const struct forged forged[] = {
	[F_EMPTY_CCS] = {
		.r = { { 20, "", 0, 0, 0 }, { -1 } },
		.want = { "after eof",
			  "GNUTLS_E_UNEXPECTED_PACKET after eof" },
		.alert = BOTH(-1) },
	[F_EMPTY_ALERT] = {
		.r = { { 21, "", 0, 0, 0 }, { -1 } },
		.want = { "after eof",
			  "GNUTLS_E_UNEXPECTED_PACKET after eof" },
		.alert = BOTH(-1) },
	/* TLS 1.3 (userspace GnuTLS 3.7.9 too): the data record after the
	 * empty handshake record is lost */
	[F_EMPTY_HS] = {
		.r = { { 22, "", 0, 0, 0 }, { -1 } },
		.want = { "after eof",
			  "GNUTLS_E_UNEXPECTED_PACKET eof" },
		.alert = BOTH(-1) },
	[F_EMPTY_APPDATA] = {
		.r = { { 23, "", 0, 0, 0 }, { -1 } },
		.want = BOTH("after eof"),
		.alert = BOTH(-1) },
	[F_EMPTY_HEARTBEAT] = {
		.r = { { 24, "", 0, 0, 0 }, { -1 } },
		.want = { "after eof",
			  "GNUTLS_E_UNEXPECTED_PACKET after eof" },
		.alert = BOTH(-1) },
	[F_EMPTY_99] = {
		.r = { { 99, "", 0, 0, 0 }, { -1 } },
		.want = { "GNUTLS_E_UNEXPECTED_PACKET GNUTLS_E_INVALID_SESSION",
			  "GNUTLS_E_UNEXPECTED_PACKET after eof" },
		.alert = BOTH(-1) },
	[F_ALERT_SHORT] = {
		.r = { { 21, "\x02", 1, 0, 0 }, { -1 } },
		.want = { "GNUTLS_E_UNEXPECTED_PACKET after eof",
			  "GNUTLS_E_UNEXPECTED_PACKET after eof" },
		.alert = BOTH(-1) },
	[F_ALERT_LONG] = {
		.r = { { 21, "\x02\x28\x00", 3, 0, 0 }, { -1 } },
		.want = BOTH("GNUTLS_E_FATAL_ALERT_RECEIVED GNUTLS_E_INVALID_SESSION"),
		.alert = BOTH(-1) },
	/* two warning user_canceled in one record */
	[F_ALERT_TWO_IN_ONE] = {
		.r = { { 21, "\x01\x5a\x01\x5a", 4, 0, 0 }, { -1 } },
		.want = { "GNUTLS_E_WARNING_ALERT_RECEIVED after eof",
			  "GNUTLS_E_FATAL_ALERT_RECEIVED GNUTLS_E_INVALID_SESSION" },
		.alert = BOTH(-1) },
	/* two warning records (TLS 1.3: every alert but close_notify ends
	 * the session, whatever its level) */
	[F_ALERT_REPEATED] = {
		.r = { { 21, "\x01\x5a", 2, 0, 0 }, { 21, "\x01\x5a", 2, 0, 0 }, { -1 } },
		.want = { "GNUTLS_E_WARNING_ALERT_RECEIVED GNUTLS_E_WARNING_ALERT_RECEIVED after eof",
			  "GNUTLS_E_FATAL_ALERT_RECEIVED GNUTLS_E_INVALID_SESSION" },
		.alert = BOTH(-1) },
	[F_ALERT_UNKNOWN_DESC] = {
		.r = { { 21, "\x02\xfe", 2, 0, 0 }, { -1 } },
		.want = BOTH("GNUTLS_E_FATAL_ALERT_RECEIVED GNUTLS_E_INVALID_SESSION"),
		.alert = BOTH(-1) },
	[F_ALERT_UNKNOWN_LEVEL] = {
		.r = { { 21, "\x07\x0a", 2, 0, 0 }, { -1 } },
		.want = { "GNUTLS_E_WARNING_ALERT_RECEIVED after eof",
			  "GNUTLS_E_FATAL_ALERT_RECEIVED GNUTLS_E_INVALID_SESSION" },
		.alert = BOTH(-1) },
	[F_TAG_FLIPPED] = {
		.r = { { 23, "tagged", 6, 0, FORGE_BAD_TAG }, { -1 } },
		.want = BOTH("GNUTLS_E_DECRYPTION_FAILED GNUTLS_E_INVALID_SESSION"),
		.alert = BOTH(AL(BAD_RECORD_MAC)) },
	[F_CUT_VALID_RECORD] = {
		.r = { { 23, "0123456789abcdef", 16, 0, FORGE_CUT }, { -1 } },
		.want = BOTH("GNUTLS_E_UNEXPECTED_PACKET_LENGTH GNUTLS_E_INVALID_SESSION"),
		.alert = BOTH(-1) },
	/* a NewSessionTicket in two records */
	[F_NST_SPLIT] = {
		.r = { { 22, NST, 10, 0, 0 }, { 22, NST + 10, 13, 0, 0 }, { -1 } },
		.want = { "GNUTLS_E_UNEXPECTED_PACKET GNUTLS_E_UNEXPECTED_PACKET after eof",
			  "GNUTLS_E_PARSING_ERROR after eof" },
		.alert = BOTH(-1) },
	/* two NewSessionTickets in one record */
	[F_NST_COALESCED] = {
		.r = { { 22, NST NST, 46, 0, 0 }, { -1 } },
		.want = { "GNUTLS_E_UNEXPECTED_PACKET after eof",
			  "GNUTLS_E_PARSING_ERROR GNUTLS_E_UNEXPECTED_PACKET GNUTLS_E_UNEXPECTED_PACKET eof" },
		.alert = BOTH(-1) },
	/* only the 4-byte header in the first record */
	[F_NST_SPLIT_HEADER] = {
		.r = { { 22, NST, 4, 0, 0 }, { 22, NST + 4, 19, 0, 0 }, { -1 } },
		.want = { "GNUTLS_E_UNEXPECTED_PACKET GNUTLS_E_REHANDSHAKE after eof",
			  "GNUTLS_E_PARSING_ERROR after eof" },
		.alert = BOTH(-1) },
	/* a KeyUpdate (update_not_requested) in two records: legal; the
	 * server's "after" then comes under the old keys */
	[F_KU_SPLIT] = {
		.r = { { 22, "\x18\x00\x00", 3, 0, 0 }, { 22, "\x01\x00", 2, 0, 0 }, { -1 } },
		.want = { "GNUTLS_E_UNEXPECTED_PACKET GNUTLS_E_UNEXPECTED_PACKET after eof",
			  "old-keys" },
		.alert = BOTH(-1) },
	/* a NewSessionTicket and a KeyUpdate in one record */
	[F_NST_THEN_KU] = {
		.r = { { 22, NST "\x18\x00\x00\x01\x00", 28, 0, 0 }, { -1 } },
		.want = { "GNUTLS_E_UNEXPECTED_PACKET after eof",
			  "GNUTLS_E_PARSING_ERROR GNUTLS_E_UNEXPECTED_PACKET eof" },
		.alert = BOTH(-1) },
	/* a handshake message split over two records with data between
	 * (TLS 1.3 forbids that) */
	[F_HS_SPLIT_THEN_DATA] = {
		.r = { { 22, NST, 10, 0, 0 }, { 23, "mid", 3, 0, 0 }, { 22, NST + 10, 13, 0, 0 } },
		.want = { "GNUTLS_E_UNEXPECTED_PACKET mid GNUTLS_E_UNEXPECTED_PACKET after eof",
			  "GNUTLS_E_UNEXPECTED_PACKET GNUTLS_E_PARSING_ERROR" },
		.alert = BOTH(-1) },
	/* TLS 1.3: inner plaintext of zeros only (no content type) */
	[F_INNER_ALL_ZERO] = {
		.r = { { 0, "", 0, 16, 0 }, { -1 } },
		.want = BOTH("GNUTLS_E_DECRYPTION_FAILED GNUTLS_E_INVALID_SESSION"),
		.alert = BOTH(AL(BAD_RECORD_MAC)) },
	/* TLS 1.3: a handshake record of padding only (as F_EMPTY_HS) */
	[F_PADDING_ONLY_HS] = {
		.r = { { 22, "", 0, 32, 0 }, { -1 } },
		.want = BOTH("GNUTLS_E_UNEXPECTED_PACKET eof"),
		.alert = BOTH(-1) },
};

/* The reads of a forged case, one per word of want: "after" or "mid"
 * (that data), "eof" (0), a GnuTLS error name, or "old-keys" (a record
 * still under the keys a KeyUpdate replaced: DECRYPTION_FAILED, or where
 * the kernel cannot take new keys UNIMPLEMENTED_FEATURE).  Returns the
 * first error code met (0 if none), for the alert. */
static int read_words(struct fx *fx, gnutls_session_t s, const char *want)
{
	char word[48], step[96];
	const char *p = want;
	int n = 0, first = 0, rc;

	while (sscanf(p, "%47s", word) == 1) {
		p = strstr(p, word) + strlen(word);
		snprintf(step, sizeof(step), "read#%d (%s of '%s')", ++n,
			 word, want);
		if (strcmp(word, "after") == 0 || strcmp(word, "mid") == 0) {
			if (expect_str(fx, step, s, word))
				break;
			continue;
		}
		if (strcmp(word, "old-keys") == 0)
			rc = kernel_rekey(fx) ? GNUTLS_E_DECRYPTION_FAILED :
						GNUTLS_E_UNIMPLEMENTED_FEATURE;
		else if (strcmp(word, "eof") == 0)
			rc = 0;
		else
			rc = error_code(fx, word);
		if (first == 0 && rc < 0)
			first = rc;
		if (expect_recv_rc(fx, step, s, rc))
			break;
	}
	return first;
}

BODY(s_forged)
{
	const struct forged *f = c->in.forged;
	int v = fx->o->vers == V13, i, cut = 0;
	char buf[64];
	ssize_t ret;

	for (i = 0; i < FR_MAX && f->r[i].type >= 0; i++) {
		forge_send(fx, p, f->r[i].type, f->r[i].d, f->r[i].len,
			   f->r[i].pad, f->r[i].flags);
		cut |= f->r[i].flags & FORGE_CUT;
	}
	if (!cut && gnutls_record_send(p->s, "after", 5) == 5)
		gnutls_bye(p->s, GNUTLS_SHUT_WR);
	if (f->alert[v] >= 0) {
		ret = rd(fx, p->s, buf, sizeof(buf));
		if (expect_rc(fx, "the observer's alert", ret,
			      GNUTLS_E_FATAL_ALERT_RECEIVED) == 0)
			expect_alert(fx, "alert", p->s, f->alert[v]);
	}
}

BODY(c_forged)
{
	const struct forged *f = c->in.forged;
	int v = fx->o->vers == V13, ret, err;

	err = read_words(fx, p->s, f->want[v]);
	if (f->alert[v] >= 0) {
		ret = gnutls_alert_send_appropriate(p->s, err);
		expect_rc(fx, "gnutls_alert_send_appropriate", ret, 0);
	}
}

/* Application data of c->in.big.len bytes in one forged record (TLS 1.3:
 * plus c->in.big.pad bytes of padding): up to 2^14 it is data, beyond it
 * RECORD_OVERFLOW and a record_overflow alert back. */
BODY(s_forged_big)
{
	size_t i, n = c->in.big.len;
	unsigned char *buf = malloc(n);
	char rbuf[64];
	ssize_t ret;

	for (i = 0; i < n; i++)
		buf[i] = pattern(i);
	forge_send(fx, p, 23, buf, n,
		   fx->o->vers == V13 ? c->in.big.pad : 0, 0);
	free(buf);
	if (n + c->in.big.pad <= MAX_TLS_RECORD)
		srv_send_str(fx, p, "after");
	else {
		/* the alert is due at once; without it, end the connection
		 * so that a client that still waits (the recv_file bug) is
		 * not held until the timeouts */
		gnutls_record_set_timeout(p->s, 8000);
		ret = rd(fx, p->s, rbuf, sizeof(rbuf));
		if (expect_rc(fx, "the observer's alert", ret,
			      GNUTLS_E_FATAL_ALERT_RECEIVED) == 0)
			expect_alert(fx, "alert", p->s,
				     GNUTLS_A_RECORD_OVERFLOW);
		else
			shutdown(p->fd, SHUT_RDWR);
	}
}

BODY(c_forged_big)
{
	size_t i, n = c->in.big.len;
	size_t pad = fx->o->vers == V13 ? c->in.big.pad : 0;
	unsigned char *want = malloc(n + 5);
	int ret;

	for (i = 0; i < n; i++)
		want[i] = pattern(i);
	memcpy(want + n, "after", 5);
	if (n + pad <= MAX_TLS_RECORD) {
		/* the kernel may merge it with "after" in one read */
		expect_data(fx, "recv#2 (the big record, then 'after')", p->s,
			    want, n + 5);
	} else if (gnutls_record_set_timeout(p->s, 5000),
		   /* the error is due at once: a reader that waits for more
		    * (the recv_file bug) gives up soon */
		   expect_recv_rc(fx, "recv#2", p->s,
				  GNUTLS_E_RECORD_OVERFLOW) == 0) {
		expect_recv_rc(fx, "recv#3", p->s, GNUTLS_E_INVALID_SESSION);
		ret = gnutls_alert_send_appropriate(p->s,
						   GNUTLS_E_RECORD_OVERFLOW);
		expect_rc(fx, "gnutls_alert_send_appropriate", ret, 0);
	}	/* else: close at once, the server fails without waiting */
	free(want);
}

/* Every content type 0..255 but alert, handshake and application data,
 * one forged record of one byte each, then a marker.  TLS 1.3: all on one
 * connection (the record is dropped, the session goes on).  TLS 1.2: a
 * type other than change_cipher_spec and heartbeat ends the session, so
 * each type gets its own (resumed) connection. */
/* 0 is left to the unexpected-type-0 case: TLS 1.3 cannot express it
 * with content (the type is the last non-zero byte), and under TLS 1.2
 * the kernel refuses it (known_diff there) */
static int type_skipped(unsigned t, unsigned vers)
{
	(void)vers;
	return t == 0 || t == 21 || t == 22 || t == 23;
}

static int type_survives(unsigned t, unsigned vers)
{
	return vers == V13 || t == 20 || t == 24;
}

BODY(s_all_types)
{
	struct peer q = { NULL, -1 };
	unsigned t;
	char mark[16];

	for (t = 0; t < 256; t++) {
		if (type_skipped(t, fx->o->vers))
			continue;
		if (q.s == NULL) {
			q = srv_open(fx, SRV_USER | SRV_TICKETS);
			sync_wait(fx, IO_TIMEOUT_MS);
		}
		forge_send(fx, &q, (unsigned char)t, "x", 1, 0, 0);
		snprintf(mark, sizeof(mark), "after-%u", t);
		if (type_survives(t, fx->o->vers))
			srv_send_str(fx, &q, mark);
		else {
			sync_wait(fx, IO_TIMEOUT_MS);	/* client done */
			peer_close(&q);
		}
	}
	sync_wait(fx, IO_TIMEOUT_MS * 2);
	peer_close(&q);
}

BODY(c_all_types)
{
	struct peer q = { NULL, -1 };
	gnutls_datum_t sd = { NULL, 0 };
	unsigned t, bad = 0;
	char mark[16], step[48];

	for (t = 0; t < 256 && !bad; t++) {
		if (type_skipped(t, fx->o->vers))
			continue;
		if (q.s == NULL) {
			q = cli_open(fx, sd.data ? &sd : NULL);
			if (fx->failed)
				break;
			if (sd.data == NULL &&
			    gnutls_session_get_data2(q.s, &sd) < 0)
				fail(fx, "gnutls_session_get_data2");
			sync_send(fx, SYNC_GO);
		}
		snprintf(step, sizeof(step), "type %u", t);
		bad |= expect_recv_rc(fx, step, q.s, GNUTLS_E_UNEXPECTED_PACKET);
		snprintf(mark, sizeof(mark), "after-%u", t);
		snprintf(step, sizeof(step), "after type %u", t);
		if (type_survives(t, fx->o->vers))
			bad |= expect_str(fx, step, q.s, mark);
		else {
			bad |= expect_recv_rc(fx, step, q.s,
					      GNUTLS_E_INVALID_SESSION);
			peer_close(&q);
			sync_send(fx, SYNC_GO);
		}
	}
	gnutls_free(sd.data);
	peer_close(&q);
}

/* Every handshake message type that is illegal after the handshake, one
 * forged record each (a 4-byte body), then a marker; GnuTLS drops each
 * with UNEXPECTED_PACKET and goes on.  Not sent: TLS 1.3 NewSessionTicket
 * and KeyUpdate (legal), TLS 1.2 HelloRequest (renegotiation, its own
 * case). */
static int hs_skipped(unsigned t, unsigned vers)
{
	/* TLS 1.2 type 24: its own case (tls12-handshake-type-24) */
	return vers == V13 ? (t == 4 || t == 24) : (t == 0 || t == 24);
}

BODY(s_all_hs_types)
{
	unsigned char msg[8] = { 0, 0, 0, 4, 1, 2, 3, 4 };
	unsigned t;
	char mark[16];

	for (t = 0; t < 256; t++) {
		if (hs_skipped(t, fx->o->vers))
			continue;
		msg[0] = (unsigned char)t;
		forge_send(fx, p, 22, msg, sizeof(msg), 0, 0);
		snprintf(mark, sizeof(mark), "after-%u", t);
		srv_send_str(fx, p, mark);
	}
}

BODY(c_all_hs_types)
{
	unsigned t;
	char mark[16], step[48];

	for (t = 0; t < 256; t++) {
		if (hs_skipped(t, fx->o->vers))
			continue;
		snprintf(step, sizeof(step), "handshake type %u", t);
		if (expect_recv_rc(fx, step, p->s, GNUTLS_E_UNEXPECTED_PACKET))
			break;
		snprintf(mark, sizeof(mark), "after-%u", t);
		snprintf(step, sizeof(step), "after handshake type %u", t);
		if (expect_str(fx, step, p->s, mark))
			break;
	}
}

/* ------------------------------------------------------------------ */
/* cases: renegotiation, tickets, key updates */

BODY(s_renegotiation)
{
	int ret;

	ret = gnutls_rehandshake(p->s);
	expect_rc(fx, "gnutls_rehandshake", ret, 0);
	do {
		ret = gnutls_handshake(p->s);
	} while (ret < 0 && !gnutls_error_is_fatal(ret) &&
		 ret != GNUTLS_E_WARNING_ALERT_RECEIVED);
	if (fx->o->observer_user)
		expect_rc(fx, "gnutls_handshake", ret, 0);
	else if (expect_rc(fx, "gnutls_handshake", ret,
			   GNUTLS_E_WARNING_ALERT_RECEIVED) == 0)
		expect_alert(fx, "alert", p->s, GNUTLS_A_NO_RENEGOTIATION);
	srv_send_str(fx, p, "after");
}

BODY(c_renegotiation)
{
	int ret;

	expect_recv_rc(fx, "recv#2", p->s, GNUTLS_E_REHANDSHAKE);
	ret = handshake(p->s);
	/* the one intended difference: the kernel cannot take new keys */
	expect_rc(fx, "gnutls_handshake", ret, fx->o->observer_user ? 0 :
		  GNUTLS_E_UNIMPLEMENTED_FEATURE);
	expect_str(fx, "recv#3", p->s, "after");
}

BODY(s_tickets)
{
	struct peer p1, p2;

		p1 = srv_open(fx, SRV_TICKETS);
	srv_send_str(fx, &p1, "hello");
	p2 = srv_open(fx, SRV_TICKETS);
	if (!gnutls_session_is_resumed(p2.s))
		fail(fx, "connection 2: expected resumed, got a full handshake");
	srv_send_str(fx, &p2, "hello2");
	sync_wait(fx, IO_TIMEOUT_MS * 2);
	peer_close(&p1);
}

/* Connection 2 resumes connection 1's session and reads "hello2". */
static void cli_resume(struct fx *fx, struct peer *p1)
{
	struct peer p2;
	gnutls_datum_t d = { NULL, 0 };
	int ret;

	ret = gnutls_session_get_data2(p1->s, &d);
	if (expect_rc(fx, "gnutls_session_get_data2", ret, 0) < 0)
		return;
	p2 = cli_open(fx, &d);
	gnutls_free(d.data);
	if (fx->failed)
		return;
	expect_rc(fx, "conn2 gnutls_session_is_resumed",
		  gnutls_session_is_resumed(p2.s), 1);
	expect_str(fx, "conn2 recv", p2.s, "hello2");
	peer_close(&p2);
}

BODY(c_tickets)
{
	struct peer p1;

	p1 = cli_open(fx, NULL);
	if (fx->failed)
		return;
	/* the NewSessionTicket comes before the data: through the kernel
	 * under KTLS (TLS 1.3) */
	expect_str(fx, "conn1 recv", p1.s, "hello");
	cli_resume(fx, &p1);
	peer_close(&p1);
}

/* TLS 1.3: the only ticket comes after the handshake (and, with
 * --auto-warmup, after the move), between data, through the observer's
 * RX path; connection 2 resumes with it */
BODY(s_ticket_late)
{
	struct peer p1, p2;

	p1 = srv_open(fx, SRV_TICKETS | SRV_LATE_TICKET);
	srv_send_str(fx, &p1, "hello");
	expect_rc(fx, "gnutls_session_ticket_send",
		  gnutls_session_ticket_send(p1.s, 1, 0), 0);
	srv_send_str(fx, &p1, "after");
	p2 = srv_open(fx, SRV_TICKETS | SRV_LATE_TICKET);
	if (!gnutls_session_is_resumed(p2.s))
		fail(fx, "connection 2: expected resumed, got a full handshake");
	srv_send_str(fx, &p2, "hello2");
	sync_wait(fx, IO_TIMEOUT_MS * 2);
	peer_close(&p2);
	peer_close(&p1);
}

BODY(c_ticket_late)
{
	struct peer p1;

	p1 = cli_open(fx, NULL);
	if (fx->failed)
		return;
	expect_str(fx, "conn1 recv", p1.s, "hello");
	expect_str(fx, "conn1 recv after the ticket", p1.s, "after");
	cli_resume(fx, &p1);
	peer_close(&p1);
}

/* c->in.ku_flags: of gnutls_session_key_update (0 or GNUTLS_KU_PEER) */
BODY(s_key_update)
{
	int ret;

	ret = gnutls_session_key_update(p->s, c->in.ku_flags);
	expect_rc(fx, "gnutls_session_key_update", ret, 0);
	srv_send_str(fx, p, "after");
}

BODY(c_key_update)
{
	if (kernel_rekey(fx)) {
		expect_str(fx, "recv#2", p->s, "after");
	} else {
		/* must never be the KeyUpdate's bytes nor garbage */
		expect_recv_rc(fx, "recv#2", p->s,
			       GNUTLS_E_UNIMPLEMENTED_FEATURE);
		expect_recv_rc(fx, "recv#3", p->s, GNUTLS_E_INVALID_SESSION);
	}
}

/* An event-driven reader: after the peer's KeyUpdate, gnutls_record_recv
 * may return GNUTLS_E_AGAIN; the application then polls the socket, and
 * the record sent under the new keys must make it readable (under KTLS
 * the kernel must have the new keys and see the queued record by then). */
BODY(c_key_update_poll)
{
	struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
	char buf[64];
	ssize_t ret;
	int polls = 0;

	for (;;) {
		ret = gnutls_record_recv(p->s, buf, sizeof(buf));
		if (ret != GNUTLS_E_AGAIN && ret != GNUTLS_E_INTERRUPTED)
			break;
		if (gnutls_record_check_pending(p->s) > 0)
			continue;
		if (poll(&pfd, 1, IO_TIMEOUT_MS) != 1 || ++polls > 16) {
			fail(fx, "poll: socket not readable after the KeyUpdate");
			break;
		}
	}
	if (kernel_rekey(fx)) {
		if (expect_rc(fx, "recv#2", ret, 5) == 0 &&
		    memcmp(buf, "after", 5) != 0)
			fail(fx, "recv#2: expected 'after'");
	} else {
		expect_rc(fx, "recv#2", ret, GNUTLS_E_UNIMPLEMENTED_FEATURE);
	}
}

/* A peer that sends KeyUpdates faster than GnuTLS allows (8 a second):
 * the 9th is refused with TOO_MANY_HANDSHAKE_PACKETS, under KTLS too.
 * The client stops reading at the refusal (on kernels < 6.14 under KTLS
 * at the first KeyUpdate): it waits until the server has sent all, so
 * that its close cannot reset the connection under the server's sends. */
#define KU_FLOOD 9
BODY(s_key_update_flood)
{
	int i;

	for (i = 0; i < KU_FLOOD; i++) {
		srv_send_str(fx, p, "x");
		if (gnutls_session_key_update(p->s, 0) < 0)
			break;
	}
	srv_send_str(fx, p, "x");
	sync_send(fx, SYNC_GO);
}

BODY(c_key_update_flood)
{
	char buf[64];
	ssize_t ret;
	int xs = 0;

	while ((ret = rd(fx, p->s, buf, sizeof(buf))) > 0) {
		if (memchr(buf, 'x', ret) == NULL || (size_t)ret != strspn(buf, "x")) {
			fail(fx, "recv: data other than the peer's 'x'");
			break;
		}
		xs += ret;
	}
	if (kernel_rekey(fx)) {
		/* 8 updates taken, each after an 'x'; the 9th refused */
		expect_rc(fx, "'x' records before the refusal", xs, KU_FLOOD);
		expect_rc(fx, "recv after the 9th KeyUpdate", ret,
			  GNUTLS_E_TOO_MANY_HANDSHAKE_PACKETS);
	} else {
		expect_rc(fx, "'x' records before the refusal", xs, 1);
		expect_rc(fx, "recv after the KeyUpdate", ret,
			  GNUTLS_E_UNIMPLEMENTED_FEATURE);
	}
	if (sync_wait(fx, IO_TIMEOUT_MS * 2) != SYNC_GO)
		fail(fx, "the server did not finish its sends");
	sync_send(fx, SYNC_GO);
}

/* AEAD usage limits: the observer's write sequence number is moved close
 * to the limit (gnutls_record_set_state), then it sends 32 one-byte
 * records.  Where keys can change (userspace, or a kernel >= 6.14), the
 * library updates the key after 2^24 - 3 records, as userspace GnuTLS
 * does, and the peer reads everything; the new key starts again at 0.
 * KTLS on an older kernel stops at the RFC 8446 limit (2^24.5 records)
 * with RECORD_LIMIT_REACHED instead of exceeding it. */
#define LIMIT_SENDS 32
#define LIMIT_REKEY_AT UINT64_C(0xfffffd)
#define LIMIT_HARD UINT64_C(23726566)
static unsigned limit_expected(struct fx *fx)
{
	return kernel_rekey(fx) ? LIMIT_SENDS : 4;
}

BODY(s_usage_limit)
{
	char buf[64], want[LIMIT_SENDS];
	size_t got = 0;
	ssize_t ret;
	unsigned i;

	for (i = 0; i < LIMIT_SENDS; i++)
		want[i] = (char)('A' + i);
	while ((ret = rd(fx, p->s, buf, sizeof(buf))) > 0) {
		if (got + ret > sizeof(want) || memcmp(buf, want + got, ret)) {
			fail(fx, "server: data out of order or extra");
			break;
		}
		got += ret;
	}
	if (got != limit_expected(fx))
		fail(fx, "server: %zu of the bytes arrived, expected %u", got,
		     limit_expected(fx));
	sync_send(fx, SYNC_GO);
}

BODY(c_usage_limit)
{
	uint64_t start = kernel_rekey(fx) ? LIMIT_REKEY_AT - 13 : LIMIT_HARD - 4;
	unsigned char seq[8];
	unsigned i, sent = 0;
	ssize_t ret = 0;
	char ch;

	for (i = 0; i < 8; i++)
		seq[i] = (unsigned char)(start >> (56 - 8 * i));
	/* In userspace the sequence number is the nonce, which the peer
	 * would not follow: there the case only checks the data. */
	if (!fx->o->observer_user && gnutls_record_set_state(p->s, 0, seq) < 0)
		fail(fx, "gnutls_record_set_state");
	for (i = 0; i < LIMIT_SENDS; i++) {
		ch = (char)('A' + i);
		ret = gnutls_record_send(p->s, &ch, 1);
		if (ret != 1)
			break;
		sent++;
	}
	if (kernel_rekey(fx)) {
		expect_rc(fx, "records sent", sent, LIMIT_SENDS);
		if (!fx->o->observer_user &&
		    (gnutls_record_get_state(p->s, 0, NULL, NULL, NULL, seq) < 0 ||
		     seq[5] != 0 || seq[4] != 0))
			fail(fx, "write sequence number still near the limit: "
			     "no key update");
	} else {
		expect_rc(fx, "records sent before the limit", sent, 4);
		expect_rc(fx, "send past the limit", ret,
			  GNUTLS_E_RECORD_LIMIT_REACHED);
	}
	gnutls_bye(p->s, GNUTLS_SHUT_WR);
	sync_wait(fx, IO_TIMEOUT_MS * 2);
}

/* The observer updates its own keys: under KTLS its TX needs new keys. */
BODY(s_observer_key_update)
{
	char buf[64];
	ssize_t ret;

	ret = rd(fx, p->s, buf, sizeof(buf));
	/* whether or not the client could update its keys, what it sent
	 * must arrive intact */
	if (expect_rc(fx, "recv (\"after\")", ret, 5) == 0 &&
	    memcmp(buf, "after", 5) != 0)
		fail(fx, "recv: expected 'after'");
}

BODY(c_observer_key_update)
{
	ssize_t ret;

	/* KTLS on a kernel that cannot rekey: refused up front, nothing
	 * sent, the session goes on under the old keys */
	ret = gnutls_session_key_update(p->s, 0);
	expect_rc(fx, "gnutls_session_key_update", ret, kernel_rekey(fx) ? 0 :
		  GNUTLS_E_UNIMPLEMENTED_FEATURE);
	ret = gnutls_record_send(p->s, "after", 5);
	expect_rc(fx, "send", ret, 5);
	sync_send(fx, SYNC_GO);
}

/* ------------------------------------------------------------------ */
/* cases: data boundaries, empty records, timeouts, sequence numbers */

static unsigned char pattern(size_t i)
{
	return (unsigned char)(i * 7 + (i >> 8) * 3 + (i >> 14));
}

BODY(s_big_record)
{
	unsigned char *buf = malloc(2 * (MAX_TLS_RECORD + 1));
	size_t i, half = MAX_TLS_RECORD + 1;

	for (i = 0; i < 2 * half; i++)
		buf[i] = pattern(i);
	srv_send(fx, p, buf, MAX_TLS_RECORD);
	srv_send(fx, p, buf + MAX_TLS_RECORD, 1);
	srv_send(fx, p, buf + half, MAX_TLS_RECORD);
	srv_send(fx, p, buf + half + MAX_TLS_RECORD, 1);
	free(buf);
}

static int read_exact(struct fx *fx, gnutls_session_t s, unsigned char *out,
		      size_t n, size_t bufsz, const char *step)
{
	size_t got = 0;
	ssize_t ret;
	char g[96];

	while (got < n) {
		ret = rd(fx, s, out + got,
			 bufsz < n - got ? bufsz : n - got);
		if (ret <= 0) {
			fail(fx, "%s: expected %zu more bytes got %s", step,
			     n - got, rc_str(ret, g, sizeof(g)));
			return -1;
		}
		got += ret;
	}
	return 0;
}

BODY(c_big_record)
{
	size_t half = MAX_TLS_RECORD + 1, i;
	unsigned char *buf = malloc(2 * half + 65536);

	/* 100-byte reads: the generic path; then 64 KiB: the fast path */
	if (read_exact(fx, p->s, buf, half, 100, "100-byte reads") == 0 &&
	    read_exact(fx, p->s, buf + half, half, 65536, "64KiB reads") == 0) {
		for (i = 0; i < 2 * half; i++)
			if (buf[i] != pattern(i)) {
				fail(fx, "byte %zu: expected 0x%02x got 0x%02x",
				     i, pattern(i), buf[i]);
				break;
			}
	}
	free(buf);
}

/* An empty application data record (TLS 1.3: only padding; GnuTLS sends
 * no record without content or padding), then data. */
BODY(s_empty_record)
{
	ssize_t ret;

	ret = gnutls_record_send2(p->s, "", 0, 16, 0);
	expect_rc(fx, "send2 padding-only record", ret, 0);
	srv_send_str(fx, p, "after");
}

BODY(c_empty_record)
{
	expect_str(fx, "recv#2", p->s, "after");
}

/* The observer sends an empty record: gnutls_record_send(s, "", 0)
 * (refused in userspace), or (c->in.pad) a TLS 1.3 padding-only record. */
BODY(s_observer_empty)
{
	char buf[64];
	ssize_t ret;

	ret = rd(fx, p->s, buf, sizeof(buf));
	if (expect_rc(fx, "recv", ret, 5) == 0 && memcmp(buf, "after", 5))
		fail(fx, "recv: expected 'after'");
}

BODY(c_observer_empty)
{
	ssize_t ret;

	if (c->in.pad) {
		ret = gnutls_record_send2(p->s, "", 0, c->in.pad, 0);
		expect_rc(fx, "send2 padding-only record", ret, 0);
	} else {
		ret = gnutls_record_send(p->s, "", 0);
		expect_rc(fx, "send empty record", ret,
			  GNUTLS_E_INVALID_REQUEST);
	}
	ret = gnutls_record_send(p->s, "after", 5);
	expect_rc(fx, "send", ret, 5);
	sync_send(fx, SYNC_GO);
}

BODY(s_timeout)
{
	if (sync_wait(fx, IO_TIMEOUT_MS * 2) == SYNC_GO)
		srv_send_str(fx, p, "late");
}

BODY(c_timeout)
{
	char buf[64];
	ssize_t ret;

	gnutls_record_set_timeout(p->s, 300);
	ret = gnutls_record_recv(p->s, buf, sizeof(buf));
	expect_rc(fx, "recv with 300 ms timeout", ret, GNUTLS_E_TIMEDOUT);
	gnutls_record_set_timeout(p->s, IO_TIMEOUT_MS);
	sync_send(fx, SYNC_GO);
	expect_str(fx, "recv after the timeout", p->s, "late");
}

/* Three records, all sent before the client reads: does each
 * gnutls_record_recv_seq() return one record with its sequence number? */
BODY(s_three_records)
{
	srv_send_str(fx, p, "a");
	srv_send_str(fx, p, "bb");
	srv_send_str(fx, p, "ccc");
	sync_send(fx, SYNC_GO);
}

static uint64_t seq_base(struct fx *fx)
{
	/* TLS 1.2: the Finished message was record 0 of the epoch; then
	 * the server's warm-up records */
	return (fx->o->vers == V12 ? 1 : 0) +
	       (fx->o->auto_warm ? KT_WARM_RECORDS : 0);
}

BODY(c_recv_seq)
{
	static const char *const want[] = { "a", "bb", "ccc" };
	unsigned char buf[65536], seq[8];
	char step[32], g[96];
	ssize_t ret;
	unsigned i, j;
	uint64_t s;

	sync_wait(fx, IO_TIMEOUT_MS);
	usleep(200 * 1000);	/* let them all arrive */
	for (i = 0; i < 3; i++) {
		snprintf(step, sizeof(step), "recv_seq#%u", i + 1);
		do {
			ret = gnutls_record_recv_seq(p->s, buf, sizeof(buf), seq);
		} while (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED);
		if (ret != (ssize_t)strlen(want[i]) ||
		    memcmp(buf, want[i], ret) != 0) {
			if (ret > 0)
				data_str(buf, ret, g, sizeof(g));
			else
				rc_str(ret, g, sizeof(g));
			fail(fx, "%s: expected the record '%s' got %s", step,
			     want[i], g);
			break;
		}
		for (s = 0, j = 0; j < 8; j++)
			s = s << 8 | seq[j];
		if (s != seq_base(fx) + i) {
			fail(fx, "%s: expected sequence number %llu got %llu",
			     step, (unsigned long long)(seq_base(fx) + i),
			     (unsigned long long)s);
			break;
		}
	}
}

BODY(c_read_state_seq)
{
	unsigned char seq[8];
	uint64_t s;
	unsigned j;
	int ret;

	sync_wait(fx, IO_TIMEOUT_MS);
	usleep(200 * 1000);
	expect_str(fx, "recv", p->s, "abbccc");
	ret = gnutls_record_get_state(p->s, 1, NULL, NULL, NULL, seq);
	expect_rc(fx, "gnutls_record_get_state", ret, 0);
	for (s = 0, j = 0; j < 8; j++)
		s = s << 8 | seq[j];
	if (s != seq_base(fx) + 3)
		fail(fx, "read sequence number after 3 records: expected %llu "
		     "got %llu", (unsigned long long)(seq_base(fx) + 3),
		     (unsigned long long)s);
}

/* Part of a record read, the rest must be pending. */
BODY(s_pending)
{
	srv_send_str(fx, p, "0123456789abcdefghij");
}

BODY(c_pending)
{
	char buf[8];
	ssize_t ret;

	ret = rd(fx, p->s, buf, 5);
	if (expect_rc(fx, "recv 5", ret, 5) == 0 && memcmp(buf, "01234", 5))
		fail(fx, "recv 5: wrong bytes");
	expect_rc(fx, "gnutls_record_check_pending",
		  (ssize_t)gnutls_record_check_pending(p->s), 15);
	expect_str(fx, "recv rest", p->s, "56789abcdefghij");
	expect_rc(fx, "gnutls_record_check_pending at the end",
		  (ssize_t)gnutls_record_check_pending(p->s), 0);
}

/* ------------------------------------------------------------------ */
/* the table */

static const struct bcase cases[] = {
	{ "close-notify", VBOTH, s_close_notify, c_close_notify,
	  .what = "data, close_notify: recv gives the data, then 0, 0" },
	{ "eof-without-close-notify", VBOTH, s_eof_no_close_notify, c_eof_no_close_notify,
	  .fx = FX_WAIT,
	  .what = "data, TCP FIN without close_notify: PREMATURE_TERMINATION" },
	{ "eof-without-close-notify-user-server", VBOTH, s_eof_no_close_notify, c_eof_no_close_notify,
	  .srv = SRV_USER,
	  .fx = FX_WAIT,
	  .what = "the same with a userspace server" },
	{ "app-data-after-close-notify", VBOTH, s_after_close_notify, c_close_notify,
	  .srv = SRV_USER,
	  .what = "close_notify then nothing: recv gives 0, and 0 again" },
	{ "app-data-after-close-notify-ktls", VBOTH, s_after_close_notify, c_close_notify,
	  .what = "close_notify then application data (server kernel TX): 0, 0" },
	{ "bye-rdwr", VBOTH, s_bye_rdwr, c_bye_rdwr,
	  .what = "the observer's gnutls_bye(SHUT_RDWR) returns 0" },
	{ "warning-alert", V12, s_alert, c_warning_alert,
	  .in.alert = { GNUTLS_AL_WARNING, GNUTLS_A_NO_RENEGOTIATION },
	  .what = "warning no_renegotiation then data: WARNING_ALERT_RECEIVED, data" },
	{ "warning-alert-user-canceled", V12, s_alert, c_warning_alert,
	  .in.alert = { GNUTLS_AL_WARNING, GNUTLS_A_USER_CANCELED },
	  .what = "warning user_canceled then data: WARNING_ALERT_RECEIVED, data" },
	{ "tls13-warning-alert", V13, s_alert, c_warning_alert,
	  .in.alert = { GNUTLS_AL_WARNING, GNUTLS_A_NO_RENEGOTIATION },
	  .what = "TLS 1.3 warning alert: FATAL_ALERT_RECEIVED, INVALID_SESSION" },
	{ "tls13-warning-alert-user-canceled", V13, s_alert, c_warning_alert,
	  .in.alert = { GNUTLS_AL_WARNING, GNUTLS_A_USER_CANCELED },
	  .what = "TLS 1.3 warning user_canceled: as userspace GnuTLS" },
	{ "fatal-alert", VBOTH, s_alert, c_fatal_alert,
	  .in.alert = { GNUTLS_AL_FATAL, GNUTLS_A_INTERNAL_ERROR },
	  .what = "fatal internal_error: FATAL_ALERT_RECEIVED, INVALID_SESSION" },
	{ "observer-sends-alert", VBOTH, s_observer_alert, c_observer_alert,
	  .srv = SRV_USER,
	  .what = "the observer sends data and a fatal access_denied" },
	{ "bad-record-mac", VBOTH, s_raw, c_raw,
	  .srv = SRV_USER,
	  .fx = FX_WAIT,
	  .in.raw = &raw_in[RAW_BAD_MAC],
	  .what = "raw 23/3,3/64 + garbage: DECRYPTION_FAILED, INVALID_SESSION" },
	{ "record-overflow", VBOTH, s_raw, c_raw,
	  .srv = SRV_USER,
	  .fx = FX_WAIT,
	  .in.raw = &raw_in[RAW_OVERFLOW],
	  .what = "raw record of 2^14+2049 bytes: RECORD_OVERFLOW, INVALID_SESSION" },
	{ "truncated-then-eof", VBOTH, s_raw, c_raw,
	  .srv = SRV_USER,
	  .fx = FX_WAIT,
	  .in.raw = &raw_in[RAW_TRUNCATED],
	  .what = "raw header of 100, 10 bytes, FIN: UNEXPECTED_PACKET_LENGTH" },
	/* known_diff (kernel): TLS 1.2: the kernel does not reject a record
	 * shorter than the AEAD overhead; it waits for more bytes, and at
	 * EOF reports a truncated record (UNEXPECTED_PACKET_LENGTH) where
	 * userspace says DECRYPTION_FAILED.  An error, never data. */
	{ "short-record", VBOTH, s_raw, c_raw,
	  .srv = SRV_USER,
	  .fx = FX_WAIT,
	  .in.raw = &raw_in[RAW_SHORT],
	  .known_diff = KD_V12,
	  .diff_note = "TLS 1.2 KTLS: the kernel waits for the rest of the short record; "
		"at EOF: UNEXPECTED_PACKET_LENGTH",
	  .what = "raw record of 5 bytes (< tag): DECRYPTION_FAILED" },
	{ "bad-header-version", VBOTH, s_raw, c_raw,
	  .srv = SRV_USER,
	  .fx = FX_WAIT,
	  .in.raw = &raw_in[RAW_BAD_VERSION],
	  .what = "raw record with version 3,1: UNSUPPORTED_VERSION_PACKET" },
	/* known_diff (documented): the kernel authenticates a record before
	 * it looks at its type, so a forged record of an unknown type is a
	 * DECRYPTION_FAILED rather than an UNEXPECTED_PACKET; both end the
	 * session */
	{ "raw-outer-type-99", VBOTH, s_raw, c_raw,
	  .srv = SRV_USER,
	  .fx = FX_WAIT,
	  .in.raw = &raw_in[RAW_OUTER_TYPE_99],
	  .known_diff = KD_BOTH,
	  .diff_note = "KTLS: DECRYPTION_FAILED, userspace: UNEXPECTED_PACKET",
	  .what = "raw record of type 99: UNEXPECTED_PACKET" },
	{ "unexpected-type-20", VBOTH, s_typed, c_typed,
	  .fx = FX_KTLS_TX,
	  .in.type = 20,
	  .what = "encrypted change_cipher_spec {1}: UNEXPECTED_PACKET, data" },
	{ "unexpected-type-24", VBOTH, s_typed, c_typed,
	  .fx = FX_KTLS_TX,
	  .in.type = 24,
	  .what = "encrypted heartbeat request: UNEXPECTED_PACKET, data" },
	{ "unexpected-type-99", VBOTH, s_typed, c_typed,
	  .fx = FX_KTLS_TX,
	  .in.type = 99,
	  .what = "encrypted type 99: UNEXPECTED_PACKET, data (1.2: INVALID_SESSION)" },
	{ "unexpected-type-255", VBOTH, s_typed, c_typed,
	  .fx = FX_KTLS_TX,
	  .in.type = 255,
	  .what = "encrypted type 255: UNEXPECTED_PACKET, data (1.2: INVALID_SESSION)" },
	/* known_diff (kernel): TLS 1.2, type 0: the kernel's RX refuses a
	 * record of type 0 as EBADMSG (DECRYPTION_FAILED); both end the
	 * session */
	{ "unexpected-type-0", VBOTH, s_typed, c_typed,
	  .fx = FX_KTLS_TX,
	  .in.type = 0,
	  .known_diff = KD_V12,
	  .diff_note = "TLS 1.2 KTLS: DECRYPTION_FAILED, userspace: UNEXPECTED_PACKET",
	  .what = "encrypted type 0: UNEXPECTED_PACKET, data (1.2: INVALID_SESSION)" },
	{ "handshake-after-handshake-1", VBOTH, s_hs_after_hs, c_hs_after_hs,
	  .fx = FX_KTLS_TX,
	  .in.type = 1,
	  .what = "a ClientHello after the handshake: UNEXPECTED_PACKET, data" },
	{ "handshake-after-handshake-2", VBOTH, s_hs_after_hs, c_hs_after_hs,
	  .fx = FX_KTLS_TX,
	  .in.type = 2,
	  .what = "a ServerHello after the handshake: UNEXPECTED_PACKET, data" },
	{ "handshake-after-handshake-20", VBOTH, s_hs_after_hs, c_hs_after_hs,
	  .fx = FX_KTLS_TX,
	  .in.type = 20,
	  .what = "a Finished after the handshake: UNEXPECTED_PACKET, data" },
	{ "key-update-bad-length", V13, s_ku_malformed, c_ku_malformed,
	  .fx = FX_KTLS_TX,
	  .in.ku = &ku_bad[KU_BAD_LENGTH],
	  .what = "KeyUpdate of 2 bytes: "
		"UNEXPECTED_PACKET_LENGTH (decode_error)" },
	{ "key-update-bad-value", V13, s_ku_malformed, c_ku_malformed,
	  .fx = FX_KTLS_TX,
	  .in.ku = &ku_bad[KU_BAD_VALUE],
	  .what = "KeyUpdate request 5: "
		"RECEIVED_ILLEGAL_PARAMETER (illegal_parameter)" },
	{ "key-update-trailing-message", V13, s_ku_malformed, c_ku_malformed,
	  .fx = FX_KTLS_TX,
	  .in.ku = &ku_bad[KU_TRAILING],
	  .what = "KeyUpdate + another "
		"message in one record: an error (3.7.9: the next record fails to "
		"decrypt), never data" },
	{ "key-update-after-truncated", V13, s_ku_malformed, c_ku_malformed,
	  .fx = FX_KTLS_TX,
	  .in.ku = &ku_bad[KU_AFTER_OTHER],
	  .what = "a message whose length runs into "
		"the KeyUpdate: UNEXPECTED_PACKET_LENGTH" },
	/* --- forged records (userspace server, its own keys): lengths,
	 *     types and contents GnuTLS never sends; the observer answers a
	 *     fatal error with gnutls_alert_send_appropriate() and the
	 *     server must receive that alert --- */
	{ "every-content-type", VBOTH, s_all_types, c_all_types,
	  .fx = FX_MANUAL,
	  .what = "every content type 0..255 but 21-23 (1.3: and 0), 1 byte: "
		"UNEXPECTED_PACKET; 1.3 and 1.2 types 20/24: data goes on, else "
		"INVALID_SESSION (a new connection per type)" },
	{ "every-post-handshake-hs-type", VBOTH, s_all_hs_types, c_all_hs_types,
	  .srv = SRV_USER,
	  .fx = FX_WAIT | FX_QUIET,
	  .what = "every illegal post-handshake "
		"handshake type 0..255: UNEXPECTED_PACKET, data goes on" },
	/* known_diff (kernel >= 6.14): see key-update-split */
	{ "tls12-handshake-type-24", V12, s_hs_after_hs, c_hs_after_hs,
	  .fx = FX_KTLS_TX,
	  .in.type = 24,
	  .known_diff = KD_V12 | KD_REKEY_KERNEL,
	  .diff_note = "KTLS on kernels >= 6.14: the kernel "
		"takes it for a KeyUpdate and stops reading: PULL_ERROR",
	  .what = "TLS 1.2 handshake record of type 24 (KeyUpdate does not exist "
		"in 1.2): UNEXPECTED_PACKET, data" },
	{ "zero-length-ccs", VBOTH, s_forged, c_forged,
	  .srv = SRV_USER,
	  .fx = FX_WAIT | FX_ALONE,
	  .in.forged = &forged[F_EMPTY_CCS],
	  .what = "empty change_cipher_spec record: UNEXPECTED_PACKET, data" },
	{ "zero-length-alert", VBOTH, s_forged, c_forged,
	  .srv = SRV_USER,
	  .fx = FX_WAIT | FX_ALONE,
	  .in.forged = &forged[F_EMPTY_ALERT],
	  .what = "empty alert record: UNEXPECTED_PACKET_LENGTH, "
		"INVALID_SESSION; decode_error sent" },
	/* TLS 1.3 forbids empty handshake fragments (RFC 8446 5.1):
	 * UNEXPECTED_PACKET, after which the session is over.  (The KTLS data
	 * fast path used to skip the record and deliver the next data.) */
	{ "zero-length-handshake", VBOTH, s_forged, c_forged,
	  .srv = SRV_USER,
	  .fx = FX_WAIT | FX_ALONE,
	  .in.forged = &forged[F_EMPTY_HS],
	  .what = "empty handshake record: 1.2 skipped; 1.3 UNEXPECTED_PACKET and "
		"the next data lost (userspace)" },
	{ "zero-length-appdata", VBOTH, s_forged, c_forged,
	  .srv = SRV_USER,
	  .fx = FX_WAIT | FX_ALONE,
	  .in.forged = &forged[F_EMPTY_APPDATA],
	  .what = "empty application data record: skipped, data, EOF" },
	{ "zero-length-heartbeat", VBOTH, s_forged, c_forged,
	  .srv = SRV_USER,
	  .fx = FX_WAIT | FX_ALONE,
	  .in.forged = &forged[F_EMPTY_HEARTBEAT],
	  .what = "empty heartbeat record: UNEXPECTED_PACKET, data" },
	{ "zero-length-type-99", VBOTH, s_forged, c_forged,
	  .srv = SRV_USER,
	  .fx = FX_WAIT | FX_ALONE,
	  .in.forged = &forged[F_EMPTY_99],
	  .what = "empty record of type 99: UNEXPECTED_PACKET, then data "
		"(1.2: INVALID_SESSION)" },
	{ "alert-truncated", VBOTH, s_forged, c_forged,
	  .srv = SRV_USER,
	  .fx = FX_WAIT | FX_ALONE,
	  .in.forged = &forged[F_ALERT_SHORT],
	  .what = "alert of 1 byte: UNEXPECTED_PACKET_LENGTH; decode_error sent" },
	{ "alert-oversized", VBOTH, s_forged, c_forged,
	  .srv = SRV_USER,
	  .fx = FX_WAIT | FX_ALONE,
	  .in.forged = &forged[F_ALERT_LONG],
	  .what = "alert of 3 bytes: UNEXPECTED_PACKET_LENGTH; decode_error sent" },
	{ "alert-two-in-one-record", VBOTH, s_forged, c_forged,
	  .srv = SRV_USER,
	  .fx = FX_WAIT | FX_ALONE,
	  .in.forged = &forged[F_ALERT_TWO_IN_ONE],
	  .what = "two alerts in one record: "
		"UNEXPECTED_PACKET_LENGTH; decode_error sent" },
	{ "alert-repeated", VBOTH, s_forged, c_forged,
	  .srv = SRV_USER,
	  .fx = FX_WAIT | FX_ALONE,
	  .in.forged = &forged[F_ALERT_REPEATED],
	  .what = "two warning user_canceled records: WARNING_ALERT_RECEIVED "
		"twice" },
	{ "alert-unknown-description", VBOTH, s_forged, c_forged,
	  .srv = SRV_USER,
	  .fx = FX_WAIT | FX_ALONE,
	  .in.forged = &forged[F_ALERT_UNKNOWN_DESC],
	  .what = "fatal alert 254: FATAL_ALERT_RECEIVED, INVALID_SESSION" },
	{ "alert-unknown-level", VBOTH, s_forged, c_forged,
	  .srv = SRV_USER,
	  .fx = FX_WAIT | FX_ALONE,
	  .in.forged = &forged[F_ALERT_UNKNOWN_LEVEL],
	  .what = "alert level 7: FATAL_ALERT_RECEIVED, INVALID_SESSION" },
	/* known_diff (kernel): after a record fails authentication the
	 * kernel aborts the socket (EBADMSG on every later call), so the
	 * bad_record_mac alert RFC 8446 6.2 asks for cannot be sent:
	 * gnutls_alert_send_appropriate() fails (with DECRYPTION_FAILED, the
	 * send's EBADMSG mapped as for a receive) and the peer sees the
	 * connection fail (PULL_ERROR) instead of the alert */
	{ "tag-flipped", VBOTH, s_forged, c_forged,
	  .srv = SRV_USER,
	  .fx = FX_WAIT | FX_ALONE,
	  .in.forged = &forged[F_TAG_FLIPPED],
	  .known_diff = KD_BOTH,
	  .diff_note = "KTLS: no bad_record_mac alert can be sent after EBADMSG (the "
		"kernel aborts the socket); the peer gets PULL_ERROR",
	  .what = "a valid record with one tag bit flipped: DECRYPTION_FAILED; "
		"bad_record_mac sent" },
	{ "eof-mid-valid-record", VBOTH, s_forged, c_forged,
	  .srv = SRV_USER,
	  .fx = FX_WAIT | FX_ALONE,
	  .in.forged = &forged[F_CUT_VALID_RECORD],
	  .what = "half of a valid record, FIN: UNEXPECTED_PACKET_LENGTH" },
	{ "nst-split", VBOTH, s_forged, c_forged,
	  .srv = SRV_USER,
	  .fx = FX_WAIT | FX_ALONE,
	  .in.forged = &forged[F_NST_SPLIT],
	  .what = "NewSessionTicket in 2 records: 1.3 taken, data; 1.2 "
		"UNEXPECTED_PACKET" },
	{ "nst-coalesced", VBOTH, s_forged, c_forged,
	  .srv = SRV_USER,
	  .fx = FX_WAIT | FX_ALONE,
	  .in.forged = &forged[F_NST_COALESCED],
	  .what = "two NewSessionTickets in 1 record: 1.3 taken, data" },
	{ "nst-split-after-header", VBOTH, s_forged, c_forged,
	  .srv = SRV_USER,
	  .fx = FX_WAIT | FX_ALONE,
	  .in.forged = &forged[F_NST_SPLIT_HEADER],
	  .what = "NewSessionTicket: header, then body in the next record" },
	/* known_diff (kernel >= 6.14): the kernel takes any handshake
	 * record that starts with byte 24 for a whole KeyUpdate and stops
	 * reading (EKEYEXPIRED) until it gets new keys -- also under TLS
	 * 1.2, which has no KeyUpdate.  A KeyUpdate split over two records
	 * (legal, RFC 8446 5.1) then can never be completed: the read fails
	 * with PULL_ERROR (EKEYEXPIRED), where userspace gives
	 * DECRYPTION_FAILED (1.3: the next record is under the old keys) or
	 * UNEXPECTED_PACKET and data (1.2) */
	{ "key-update-split", VBOTH, s_forged, c_forged,
	  .srv = SRV_USER,
	  .fx = FX_WAIT | FX_ALONE,
	  .in.forged = &forged[F_KU_SPLIT],
	  .known_diff = KD_BOTH | KD_REKEY_KERNEL,
	  .diff_note = "KTLS on kernels >= 6.14: PULL_ERROR "
		"(the kernel waits for new keys after the first part)",
	  .what = "KeyUpdate in 2 records: taken (next record under the old "
		"keys: DECRYPTION_FAILED; KTLS on kernel < 6.14: "
		"UNIMPLEMENTED_FEATURE)" },
	{ "nst-and-key-update-coalesced", VBOTH, s_forged, c_forged,
	  .srv = SRV_USER,
	  .fx = FX_WAIT | FX_ALONE,
	  .in.forged = &forged[F_NST_THEN_KU],
	  .what = "NewSessionTicket + KeyUpdate in one "
		"record: both taken, as key-update-split" },
	/* the data fast path and recv_file's splice stand aside while a
	 * handshake message is incomplete (fixed: they delivered 'mid') */
	{ "handshake-interleaved-with-data", VBOTH, s_forged, c_forged,
	  .srv = SRV_USER,
	  .fx = FX_WAIT | FX_ALONE,
	  .in.forged = &forged[F_HS_SPLIT_THEN_DATA],
	  .what = "half a NewSessionTicket, a data record, the rest: "
		"UNEXPECTED_PACKET (1.2: UE, 'mid', UE)" },
	/* known_diff (kernel): as tag-flipped (the kernel reports EBADMSG) */
	{ "tls13-inner-plaintext-all-zero", V13, s_forged, c_forged,
	  .srv = SRV_USER,
	  .fx = FX_WAIT | FX_ALONE,
	  .in.forged = &forged[F_INNER_ALL_ZERO],
	  .known_diff = KD_V13,
	  .diff_note = "KTLS: no alert after EBADMSG, as "
		"tag-flipped",
	  .what = "TLS 1.3 record of zeros only (no content "
		"type): DECRYPTION_FAILED (GnuTLS); bad_record_mac sent" },
	/* as zero-length-handshake */
	{ "tls13-padding-only-handshake", V13, s_forged, c_forged,
	  .srv = SRV_USER,
	  .fx = FX_WAIT | FX_ALONE,
	  .in.forged = &forged[F_PADDING_ONLY_HS],
	  .what = "TLS 1.3 handshake record of padding only: as zero-length-"
		"handshake" },
	{ "appdata-max-size", VBOTH, s_forged_big, c_forged_big,
	  .srv = SRV_USER,
	  .fx = FX_WAIT | FX_ALONE,
	  .in.big = { 16384, 0 },
	  .what = "one record of 2^14 bytes of data: received whole" },
	{ "appdata-max-plus-1", VBOTH, s_forged_big, c_forged_big,
	  .srv = SRV_USER,
	  .fx = FX_WAIT | FX_ALONE,
	  .in.big = { 16385, 0 },
	  .what = "one record of 2^14 + 1 bytes of data: RECORD_OVERFLOW; "
		"record_overflow sent" },
	{ "tls13-appdata-max-with-padding", V13, s_forged_big, c_forged_big,
	  .srv = SRV_USER,
	  .fx = FX_WAIT | FX_ALONE,
	  .in.big = { 16000, 384 },
	  .what = "16000 bytes + 384 padding (= 2^14): received whole" },
	{ "tls13-appdata-padding-overflow", V13, s_forged_big, c_forged_big,
	  .srv = SRV_USER,
	  .fx = FX_WAIT | FX_ALONE,
	  .in.big = { 16000, 385 },
	  .what = "16000 bytes + 385 padding: "
		"RECORD_OVERFLOW; record_overflow sent" },
	/* a userspace server, else the server itself would refuse */
	{ "renegotiation", V12, s_renegotiation, c_renegotiation,
	  .srv = SRV_USER,
	  .what = "HelloRequest: REHANDSHAKE; handshake: 0 (user) / "
		"UNIMPLEMENTED_FEATURE + warning no_renegotiation (ktls)" },
	{ "ticket-resumption", VBOTH, s_tickets, c_tickets,
	  .fx = FX_MANUAL,
	  .what = "ticket from connection 1 resumes connection 2" },
	{ "ticket-after-handshake", V13, s_ticket_late, c_ticket_late,
	  .fx = FX_MANUAL,
	  .what = "the only ticket sent between data after the handshake "
		"(gnutls_session_ticket_send) resumes connection 2" },
	{ "key-update-from-peer", V13, s_key_update, c_key_update,
	  .srv = SRV_USER,
	  .greeting = "before",
	  .what = "server KeyUpdate between data: data intact, or (KTLS, "
		"kernel < 6.14) UNIMPLEMENTED_FEATURE, INVALID_SESSION" },
	{ "key-update-from-peer-request", V13, s_key_update, c_key_update,
	  .srv = SRV_USER,
	  .greeting = "before",
	  .in.ku_flags = GNUTLS_KU_PEER,
	  .what = "the same with update_requested: the observer updates too" },
	{ "key-update-then-poll", V13, s_key_update, c_key_update_poll,
	  .srv = SRV_USER,
	  .greeting = "before",
	  .what = "KeyUpdate, then 'after': poll() wakes the reader "
		"(or, KTLS on kernel < 6.14: UNIMPLEMENTED_FEATURE)" },
	{ "key-update-flood", V13, s_key_update_flood, c_key_update_flood,
	  .srv = SRV_USER,
	  .fx = FX_QUIET,
	  .what = "9 KeyUpdates within a second: the 9th is refused "
		"with TOO_MANY_HANDSHAKE_PACKETS (kernel < 6.14 under KTLS: the "
		"first, UNIMPLEMENTED_FEATURE)" },
	{ "aead-usage-limit", V13, s_usage_limit, c_usage_limit,
	  .srv = SRV_USER,
	  .fx = FX_QUIET | FX_NO_LINGER,
	  .what = "near 2^24 records: automatic key update, data intact (KTLS "
		"on kernel < 6.14: RECORD_LIMIT_REACHED at 2^24.5, nothing lost "
		"before it)" },
	{ "observer-key-update", V13, s_observer_key_update, c_observer_key_update,
	  .srv = SRV_USER,
	  .what = "the observer's own KeyUpdate; returns 0, or (KTLS, kernel "
		"< 6.14) UNIMPLEMENTED_FEATURE; the next send arrives intact" },
	{ "big-record-boundaries", VBOTH, s_big_record, c_big_record,
	  .fx = FX_QUIET,
	  .what = "16384 + 1 byte records read in 100 byte and 64 KiB calls" },
	{ "empty-record", V13, s_empty_record, c_empty_record,
	  .srv = SRV_USER, .fx = FX_ALONE,
	  .what = "a padding-only data record between data is skipped" },
	{ "observer-sends-empty-record", VBOTH, s_observer_empty, c_observer_empty,
	  .srv = SRV_USER,
	  .what = "the observer's gnutls_record_send(\"\", 0): INVALID_REQUEST" },
	/* known_diff (documented): the kernel does not pad records, and a
	 * record with nothing but padding cannot be asked of it */
	{ "observer-sends-padding-only", V13, s_observer_empty, c_observer_empty,
	  .srv = SRV_USER,
	  .in.pad = 16,
	  .known_diff = KD_V13,
	  .diff_note = "KTLS: INVALID_REQUEST "
		"(no padding under kernel TLS)",
	  .what = "the observer's gnutls_record_send2(\"\", 0, pad 16): 0" },
	{ "recv-timeout", VBOTH, s_timeout, c_timeout,
	  .fx = FX_QUIET,
	  .what = "nothing sent: TIMEDOUT, then data" },
	/* known_diff (documented): gnutls_record_recv_file() splices part
	 * of a record and leaves the rest in the kernel (poll() reports it
	 * readable), not in GnuTLS's buffer */
	{ "check-pending", VBOTH, s_pending, c_pending,
	  .fx = FX_QUIET,
	  .known_diff = KD_BOTH | KD_RECV_FILE,
	  .diff_note = "recv_file: 0 pending (the rest is in the kernel)",
	  .what = "5 of 20 bytes read: 15 pending" },
	/* known_diff (documented): the kernel hands over queued data records
	 * merged in one recvmsg, so recv_seq returns them as one record */
	{ "recv-seq", VBOTH, s_three_records, c_recv_seq,
	  .fx = FX_QUIET,
	  .known_diff = KD_BOTH,
	  .diff_note = "KTLS: one call returns 'abbccc' (records merged)",
	  .what = "3 queued records: recv_seq gives each with its number" },
	/* known_diff (documented): the kernel counts the records it reads;
	 * gnutls_record_get_state() does not see them */
	{ "read-state-seq", VBOTH, s_three_records, c_read_state_seq,
	  .fx = FX_QUIET,
	  .known_diff = KD_BOTH,
	  .diff_note = "KTLS: sequence number not advanced per record",
	  .what = "3 records read: gnutls_record_get_state sequence advanced by 3" },
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

/* ------------------------------------------------------------------ */
/* running */

static int make_creds(struct fx *fx)
{
	if (gnutls_certificate_allocate_credentials(&fx->scred) < 0 ||
	    gnutls_certificate_allocate_credentials(&fx->ccred) < 0 ||
	    gnutls_certificate_set_x509_key(fx->scred, &g_crt, 1, g_key) < 0 ||
	    gnutls_session_ticket_key_generate(&fx->ticket_key) < 0)
		return -1;
	return 0;
}

/* The server's side of a case: the fixture's connection (FX_*), the
 * server's half, then the connection stays open until the client is
 * done, so that no RST overtakes what is in flight. */
static void serve(struct fx *fx, const struct bcase *c)
{
	struct peer p = { NULL, -1 };

	if (!(c->fx & FX_MANUAL)) {
		p = srv_open(fx, c->srv);
		if (c->fx & FX_KTLS_TX)
			srv_require_ktls_tx(fx, &p);
		if (c->fx & FX_WAIT)
			sync_wait(fx, IO_TIMEOUT_MS);
		if (!(c->fx & FX_QUIET))
			srv_send_str(fx, &p, c->greeting ? c->greeting :
				     "hello");
		if (c->fx & FX_ALONE)
			sync_wait(fx, IO_TIMEOUT_MS);
	}
	c->server(fx, &p, c);
	if (!(c->fx & (FX_MANUAL | FX_NO_LINGER)))
		sync_wait(fx, IO_TIMEOUT_MS * 2);
}

/* The client's side: the same steps seen from the observer. */
static void observe(struct fx *fx, const struct bcase *c)
{
	struct peer p = { NULL, -1 };

	if (!(c->fx & FX_MANUAL)) {
		p = cli_open(fx, NULL);
		if (c->fx & FX_WAIT)
			sync_send(fx, SYNC_GO);
		if (!(c->fx & FX_QUIET))
			expect_str(fx, "recv#1", p.s, c->greeting ?
				   c->greeting : "hello");
		if (c->fx & FX_ALONE)
			sync_send(fx, SYNC_GO);
	}
	c->client(fx, &p, c);
	if (!(c->fx & FX_MANUAL))
		peer_close(&p);
}

/* 0 pass, 1 fail, 2 known difference (xfail), 3 skip */
static int run_case(const struct opts *o, const struct bcase *c)
{
	const char *obs = o->observer_user ? "user" : "ktls";
	struct fx fx;
	int c2s[2], s2c[2], status = 0, res;
	pid_t pid;
	time_t deadline;

	if (!(c->vers & o->vers)) {
		printf("SKIP: %s %s %s (%s only)\n", c->name, ver_name(o->vers),
		       obs, c->vers == V12 ? "TLS 1.2" : "TLS 1.3");
		return 3;
	}
	memset(&fx, 0, sizeof(fx));
	fx.o = o;
	fx.c = c;
	snprintf(fx.label, sizeof(fx.label), "%s %s %s", c->name,
		 ver_name(o->vers), obs);
	if (make_creds(&fx) < 0) {
		printf("FAIL: %s: credentials\n", fx.label);
		return 1;
	}

	fx.lfd = kt_loopback_listen(&fx.addr, 0, 8);
	if (fx.lfd < 0 || pipe(c2s) < 0 || pipe(s2c) < 0) {
		printf("FAIL: %s: fixture: socket/pipe: %s\n", fx.label,
		       strerror(errno));
		return 1;
	}
	fflush(stdout);

	pid = fork();
	if (pid < 0) {
		printf("FAIL: %s: fork: %s\n", fx.label, strerror(errno));
		return 1;
	}
	if (pid == 0) {
		fx.is_server = 1;
		fx.from_cli = c2s[0];
		fx.to_cli = s2c[1];
		close(c2s[1]);
		close(s2c[0]);
		alarm(CASE_TIMEOUT_S);
		serve(&fx, c);
		/* keep the connections open until the client is done, so
		 * that no RST overtakes what is in flight */
		sync_wait(&fx, CASE_TIMEOUT_S * 1000);
		_exit(fx.failed);
	}
	fx.to_srv = c2s[1];
	fx.from_srv = s2c[0];
	close(c2s[0]);
	close(s2c[1]);
	close(fx.lfd);

	observe(&fx, c);
	sync_send(&fx, SYNC_DONE);

	deadline = time(NULL) + 20;
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (time(NULL) > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			printf("FAIL: %s: the server did not end\n", fx.label);
			fx.failed = 1;
			break;
		}
		usleep(10 * 1000);
	}
	if (WIFSIGNALED(status)) {
		printf("FAIL: %s: the server died of signal %d\n", fx.label,
		       WTERMSIG(status));
		fx.failed = 1;
	} else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		fx.failed = 1;	/* it said why */
	close(fx.to_srv);
	close(fx.from_srv);
	gnutls_certificate_free_credentials(fx.scred);
	gnutls_certificate_free_credentials(fx.ccred);
	gnutls_free(fx.ticket_key.data);

	if (is_known_diff(o, c)) {
		if (fx.failed) {
			printf("  known_diff: %s\n", c->diff_note);
			res = o->strict ? 1 : 2;
		} else {
			/* a stale entry in the table hides the next change */
			printf("XPASS: %s (known_diff no longer differs: %s; "
			       "update the case table)\n", fx.label, c->diff_note);
			res = 1;
		}
	} else if (fx.failed)
		res = 1;
	else {
		printf("PASS: %s\n", fx.label);
		res = 0;
	}
	fflush(stdout);
	return res;
}

/* NAME in the comma-separated list */
static int name_listed(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p = list;

	while ((p = strstr(p, name)) != NULL) {
		if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == 0))
			return 1;
		p += n;
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: ktls-behave --case NAME|all [--tls12|--tls13]\n"
		"                   [--observer ktls|user] "
		"[--kernel-rekey yes|no|auto]\n"
		"                   [--rbuf BYTES] [--reader recv|file] "
		"[--strict] [--auto-warmup]\n"
		"                   [--poll-again] [--skip NAME,...] [--verbose] "
		"[--list]\n");
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "case", required_argument, NULL, 'c' },
		{ "tls12", no_argument, NULL, '2' },
		{ "tls13", no_argument, NULL, '3' },
		{ "observer", required_argument, NULL, 'o' },
		{ "kernel-rekey", required_argument, NULL, 'k' },
		{ "rbuf", required_argument, NULL, 'b' },
		{ "reader", required_argument, NULL, 'r' },
		{ "poll-again", no_argument, NULL, 'P' },
		{ "strict", no_argument, NULL, 's' },
		{ "auto-warmup", no_argument, NULL, 'a' },
		{ "skip", required_argument, NULL, 'S' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "list", no_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct opts o = { .vers = V13, .kernel_rekey = -1, .rbuf = 65536 };
	const char *name = NULL, *skip = NULL;
	int opt, list = 0, fails = 0, xfails = 0, ran = 0;
	unsigned i;

	while ((opt = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			name = optarg;
			break;
		case '2':
			o.vers = V12;
			break;
		case '3':
			o.vers = V13;
			break;
		case 'o':
			if (strcmp(optarg, "user") == 0)
				o.observer_user = 1;
			else if (strcmp(optarg, "ktls") == 0)
				o.observer_user = 0;
			else
				return usage(stderr), 2;
			break;
		case 'k':
			if (strcmp(optarg, "yes") == 0)
				o.kernel_rekey = 1;
			else if (strcmp(optarg, "no") == 0)
				o.kernel_rekey = 0;
			else if (strcmp(optarg, "auto") == 0)
				o.kernel_rekey = -1;
			else
				return usage(stderr), 2;
			break;
		case 'b':
			o.rbuf = strtoul(optarg, NULL, 10);
			if (o.rbuf == 0 || o.rbuf > (1u << 24))
				return usage(stderr), 2;
			break;
		case 'r':
			if (strcmp(optarg, "file") == 0)
				o.reader_file = 1;
			else if (strcmp(optarg, "recv") == 0)
				o.reader_file = 0;
			else
				return usage(stderr), 2;
			break;
		case 'P':
			o.poll_again = 1;
			break;
		case 's':
			o.strict = 1;
			break;
		case 'a':
			o.auto_warm = 1;
			break;
		case 'S':
			skip = optarg;
			break;
		case 'v':
			o.verbose = 1;
			break;
		case 'l':
			list = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc)
		return usage(stderr), 2;
	if (list) {
		for (i = 0; i < NCASES; i++)
			printf("%-38s %-5s %s%s\n", cases[i].name,
			       cases[i].vers == VBOTH ? "both" :
			       ver_name(cases[i].vers), cases[i].what,
			       cases[i].known_diff ? " [known_diff]" : "");
		return 0;
	}
	if (name == NULL)
		return usage(stderr), 2;
	if (o.kernel_rekey < 0)
		o.kernel_rekey = kt_kernel_can_rekey();

	signal(SIGPIPE, SIG_IGN);
	if (gnutls_global_init() < 0 || kt_make_cert(&g_crt, &g_key) < 0) {
		fprintf(stderr, "ktls-behave: cannot set up GnuTLS\n");
		return 1;
	}

	for (i = 0; i < NCASES; i++) {
		int r;

		if (strcmp(name, "all") != 0 && !name_listed(name, cases[i].name))
			continue;
		if (skip && name_listed(skip, cases[i].name))
			continue;
		ran++;
		r = run_case(&o, &cases[i]);
		if (r == 1)
			fails++;
		else if (r == 2)
			xfails++;
	}
	if (ran == 0) {
		fprintf(stderr, "ktls-behave: no case '%s' (see --list)\n", name);
		return 2;
	}
	if (ran > 1)
		printf("# %d case(s), %d failed, %d known_diff\n", ran, fails,
		       xfails);
	gnutls_x509_crt_deinit(g_crt);
	gnutls_x509_privkey_deinit(g_key);
	gnutls_global_deinit();
	return fails ? 1 : 0;
}
