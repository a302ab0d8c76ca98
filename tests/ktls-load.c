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
 * ktls-load: many TLS connections in one process (client and server
 * threads over 127.0.0.1), or one connection whose outcome is asserted
 * exactly (the rows of tests/ktls-fault-cases).
 *
 * Each connection: handshake (with --resume every connection after the
 * first resumes from a session ticket, and must be resumed); the client's
 * gnutls_transport_is_ktls_enabled() must be --expect and must agree with
 * the kernel (getsockopt SOL_TLS TLS_TX/TLS_RX, called as a raw syscall so
 * that the fault shim cannot lie about it); the client sends --size bytes
 * (gnutls_record_send, or gnutls_record_send_file from a memfd) and the
 * server sends --size bytes back; every byte is compared with the
 * deterministic stream it must be; both sides close with close_notify.
 * With --duplex the client sends from a second thread while it receives;
 * with --recv-file it receives with gnutls_record_recv_file() into a
 * memfd (splice(2) under KTLS RX) and reads that back.
 *
 * Load: --conns N connections, --par P of them at a time (P client
 * threads, each with its server thread).  --check-leaks runs a warm-up
 * round first, then compares the number of open fds (/proc/self/fd) and
 * the heap in use (mallinfo2) before and after the N connections: fds
 * must be equal, the heap may not grow by more than --max-heap-growth.
 * --timeout is a watchdog (the process fails if it is still running),
 * not a timed assertion.
 *
 * Fault rows (one connection, --server-user so that the server stays in
 * userspace and faults injected with tests/ktls-fault.so hit the client
 * only; the server then also decrypts in userspace what the client's
 * kernel encrypted):
 *   --fail OP=ERROR   the client's first fatal error must be ERROR
 *                     (a GnuTLS error name, e.g. GNUTLS_E_PUSH_ERROR) in
 *                     OP (handshake|send|recv); bytes delivered before it
 *                     must still be the exact prefix of the stream
 *   --expect-retry OP OP must have returned GNUTLS_E_AGAIN/INTERRUPTED at
 *                     least once (and been retried); everything must
 *                     still arrive
 *
 * Exit status: 0 success, 1 a check failed, 2 usage error.
 */

#define _GNU_SOURCE

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
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
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
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
#define K_TLS_TX 1
#define K_TLS_RX 2

#define IO_TIMEOUT_MS 60000
#define CHUNK 16384

enum op { OP_NONE, OP_HANDSHAKE, OP_SEND, OP_RECV, OP_N };
static const char *const op_names[OP_N] = {
	"none", "handshake", "send", "recv"
};
enum mode { M_SEND, M_SENDFILE, M_MIXED, M_SENDFILE_PIPE };

static struct {
	const char *prio;
	unsigned conns, par, warmup;
	size_t size;
	int resume, duplex, server_user, check_leaks, verbose, recv_file;
	enum mode mode;
	int expect;		/* ktls flags of the client */
	enum op fail_op;	/* --fail */
	int fail_code;
	enum op retry_op;	/* --expect-retry */
	long max_heap_growth;
	unsigned timeout;
	unsigned record_timeout;	/* ms, 0: none */
} opt = {
	.prio = "NORMAL:-VERS-ALL:+VERS-TLS1.3",
	.conns = 1, .par = 1, .size = 65536, .expect = -1,
	.max_heap_growth = 64 * 1024, .timeout = 1800, .warmup = 2,
	.record_timeout = IO_TIMEOUT_MS,
};

static gnutls_certificate_credentials_t scred, ccred;
static gnutls_datum_t ticket_key;
static int lfd = -1;
static volatile int stopping;	/* the listener is being shut down */
static unsigned connected, served;	/* connections, per side (atomic) */
static struct sockaddr_in laddr;
static int file_fd = -1;	/* the c2s stream, for send_file */

/* The session data the client resumes from (the first connection's). */
static pthread_mutex_t sdata_lock = PTHREAD_MUTEX_INITIALIZER;
static gnutls_datum_t sdata;

/* ------------------------------------------------------------------ */

static void watchdog(int sig)
{
	static const char msg[] = "FAIL: ktls-load: watchdog: still running "
				  "after --timeout seconds\n";
	ssize_t r = write(1, msg, sizeof(msg) - 1);

	(void)sig;
	(void)r;
	_exit(1);
}

/* Many small handshakes: no Nagle delays */
static void nodelay(int fd)
{
	int one = 1;

	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* The kernel's view of one direction: keys installed or not.  With a
 * buffer of just struct tls_crypto_info (version, cipher) the kernel
 * answers EBUSY when it has no keys. */
static int kernel_has_keys(int fd, int optname)
{
	uint16_t info[2] = { 0, 0 };
	socklen_t len = sizeof(info);

	return syscall(SYS_getsockopt, fd, SOL_TLS, optname, info, &len) == 0 &&
	       info[1] != 0;
}

struct conn {
	unsigned index;
	int fd;
	gnutls_session_t s;
	/* client results */
	enum op err_op;
	int err_code;
	unsigned retries[OP_N];
	uint64_t sent, received;
	int resumed;
	int send_ret;		/* duplex: the sender thread's outcome */
};

/* A GnuTLS call's result: retried when temporary (counted), else the
 * first fatal error is recorded.  Returns 1 to retry, 0 ok, -1 error. */
static int outcome(struct conn *c, enum op op, ssize_t ret)
{
	if (ret >= 0)
		return 0;
	if (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED) {
		__atomic_add_fetch(&c->retries[op], 1, __ATOMIC_SEQ_CST);
		return 1;
	}
	if (c->err_op == OP_NONE) {
		c->err_op = op;
		c->err_code = (int)ret;
	}
	return -1;
}

/* --- server ---------------------------------------------------------- */

/* One connection, server side; -1 when the listener was shut down. */
static int serve_one(void)
{
	unsigned char *buf;
	gnutls_session_t s = NULL;
	struct kt_stream rx, tx;
	uint64_t got = 0, off = 0;
	ssize_t ret;
	size_t bad, done;
	int fd;

	fd = accept(lfd, NULL, NULL);
	if (fd < 0 && stopping)
		return -1;
	buf = malloc(CHUNK);
	nodelay(fd);
	if (fd < 0 || buf == NULL) {
		kt_fail("server: accept: %s", strerror(errno));
		free(buf);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	/* without --resume no tickets: in TLS 1.3 a NewSessionTicket makes
	 * a blocking gnutls_record_recv() return GNUTLS_E_AGAIN, which would
	 * hide whether an injected EAGAIN reached the application */
	if (gnutls_init(&s, GNUTLS_SERVER |
			(opt.resume ? 0 : GNUTLS_NO_TICKETS)) < 0 ||
	    gnutls_priority_set_direct(s, opt.prio, NULL) < 0 ||
	    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, scred) < 0 ||
	    (opt.resume &&
	     gnutls_session_ticket_enable_server(s, &ticket_key) < 0)) {
		kt_fail("server: session setup");
		goto out;
	}
	if (opt.server_user) {
		kt_set_user_transport(s, fd);
	} else
		gnutls_transport_set_int(s, fd);
	gnutls_handshake_set_timeout(s, IO_TIMEOUT_MS);
	gnutls_record_set_timeout(s, IO_TIMEOUT_MS);
	do {
		ret = gnutls_handshake(s);
	} while (ret < 0 && !gnutls_error_is_fatal(ret));
	if (ret < 0)
		goto out;	/* the client's row says what it expects */

	/* receive the client's stream until close_notify or an error:
	 * what arrives must be its exact prefix */
	kt_stream_init(&rx, KT_SEED_C2S);
	for (;;) {
		ret = gnutls_record_recv(s, buf, CHUNK);
		if (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED)
			continue;
		if (ret <= 0)
			break;
		if ((bad = kt_stream_check(&rx, buf, ret)) != 0) {
			kt_fail("server: byte %llu of the client's "
			     "stream is wrong",
			     (unsigned long long)(got + bad - 1));
			goto out;
		}
		got += ret;
	}
	if (ret < 0 || got != opt.size) {
		/* expected when the client's row ends in an error */
		if (opt.fail_op == OP_NONE)
			kt_fail("server: received %llu of %zu bytes, "
			     "then %s", (unsigned long long)got,
			     opt.size, ret < 0 ? kt_ename(ret) : "EOF");
		goto out;
	}
	kt_stream_init(&tx, KT_SEED_S2C);
	while (off < opt.size) {
		size_t n = opt.size - off < CHUNK ? opt.size - off : CHUNK;

		kt_stream_fill(&tx, buf, n);
		for (done = 0; done < n; done += ret) {
			ret = gnutls_record_send(s, buf + done, n - done);
			if (ret == GNUTLS_E_AGAIN ||
			    ret == GNUTLS_E_INTERRUPTED)
				ret = 0;
			else if (ret < 0) {
				if (opt.fail_op == OP_NONE)
					kt_fail("server: send: %s", kt_ename(ret));
				goto out;
			}
		}
		off += n;
	}
	do {
		ret = gnutls_bye(s, GNUTLS_SHUT_WR);
	} while (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED);
 out:
	if (s)
		gnutls_deinit(s);
	close(fd);
	free(buf);
	__atomic_add_fetch(&served, 1, __ATOMIC_SEQ_CST);
	return 0;
}

/* Until the servers have finished every connection the clients made. */
static void wait_servers(void)
{
	while (__atomic_load_n(&served, __ATOMIC_SEQ_CST) !=
	       __atomic_load_n(&connected, __ATOMIC_SEQ_CST))
		usleep(1000);
}

/* Each thread gets its GnuTLS random generator context (kept until
 * gnutls_global_deinit) before anything is measured. */
static void thread_init(void)
{
	unsigned char b;

	gnutls_rnd(GNUTLS_RND_NONCE, &b, 1);
}

static void *server_loop(void *arg)
{
	(void)arg;
	thread_init();
	while (serve_one() == 0)
		;
	return NULL;
}

/* --- client ---------------------------------------------------------- */

static int use_sendfile(const struct conn *c)
{
	return opt.mode == M_SENDFILE || (opt.mode == M_MIXED && c->index % 2);
}

/* --mode sendfile-pipe: gnutls_record_send_file() from a pipe (offset
 * NULL), which a thread fills with the stream */
struct pipe_feed {
	int fd;
	size_t size;
};

static void *pipe_feeder(void *arg)
{
	struct pipe_feed *f = arg;
	unsigned char *buf = malloc(CHUNK);
	struct kt_stream st;
	size_t off = 0, n, done;
	ssize_t w = 1;

	kt_stream_init(&st, KT_SEED_C2S);
	while (buf && off < f->size && w > 0) {
		n = f->size - off < CHUNK ? f->size - off : CHUNK;
		kt_stream_fill(&st, buf, n);
		for (done = 0; done < n; done += w)
			if ((w = write(f->fd, buf + done, n - done)) <= 0)
				break;
		off += done;
	}
	free(buf);
	close(f->fd);
	return NULL;
}

static int client_send_pipe(struct conn *c)
{
	struct pipe_feed f = { -1, opt.size };
	int p[2], r = 0;
	pthread_t th;
	ssize_t ret;

	if (pipe(p) < 0)
		return -1;
	f.fd = p[1];
	if (pthread_create(&th, NULL, pipe_feeder, &f) != 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	while (c->sent < opt.size) {
		ret = gnutls_record_send_file(c->s, p[0], NULL,
					      opt.size - c->sent);
		r = outcome(c, OP_SEND, ret);
		if (r > 0)
			continue;
		if (r < 0 || ret == 0)
			break;
		c->sent += ret;
	}
	close(p[0]);	/* the feeder stops on EPIPE */
	pthread_join(th, NULL);
	return r;
}

static int client_send(struct conn *c)
{
	unsigned char *buf = malloc(CHUNK);
	struct kt_stream st;
	uint64_t bstart = 0, bend = 0;	/* the stream's bytes in buf */
	ssize_t ret;
	int r = 0;

	kt_stream_init(&st, KT_SEED_C2S);
	if (opt.mode == M_SENDFILE_PIPE)
		r = client_send_pipe(c);
	else while (r >= 0 && c->sent < opt.size) {
		size_t n = opt.size - c->sent < CHUNK ?
			   opt.size - c->sent : CHUNK;

		if (use_sendfile(c)) {
			off_t off = c->sent;

			ret = gnutls_record_send_file(c->s, file_fd, &off, n);
			if (ret >= 0 && (uint64_t)off != c->sent + ret) {
				kt_fail("conn %u: send_file: offset %lld after "
				     "%zd bytes from %llu", c->index,
				     (long long)off, ret,
				     (unsigned long long)c->sent);
				r = -1;
				break;
			}
		} else {
			if (c->sent == bend) {
				kt_stream_fill(&st, buf, n);
				bstart = c->sent;
				bend = c->sent + n;
			}
			ret = gnutls_record_send(c->s, buf + (c->sent - bstart),
						 bend - c->sent);
		}
		r = outcome(c, OP_SEND, ret);
		if (r != 0)
			continue;	/* retry, or the loop ends */
		c->sent += ret;
	}
	if (r >= 0) {
		do {
			ret = gnutls_bye(c->s, GNUTLS_SHUT_WR);
		} while ((r = outcome(c, OP_SEND, ret)) > 0);
	}
	free(buf);
	if (r < 0)	/* let the server end */
		shutdown(c->fd, SHUT_WR);
	return r;
}

static void *client_send_thread(void *arg)
{
	struct conn *c = arg;

	c->send_ret = client_send(c);
	return NULL;
}

static int client_recv(struct conn *c)
{
	unsigned char *buf = malloc(CHUNK);
	struct kt_stream st;
	ssize_t ret;
	size_t bad;
	int r;

	int mfd = -1;

	kt_stream_init(&st, KT_SEED_S2C);

	if (opt.recv_file && (mfd = memfd_create("ktls-load-rx", 0)) < 0) {
		kt_fail("memfd_create: %s", strerror(errno));
		free(buf);
		return -1;
	}
	for (;;) {
		if (opt.recv_file) {
			/* into a file (splice(2) under KTLS), read back */
			off_t off = 0;

			ret = kt_recv_file(c->s, mfd, &off, CHUNK);
			if (ret > 0 && (off != ret ||
					pread(mfd, buf, ret, 0) != ret)) {
				kt_fail("conn %u: recv_file: %zd bytes, offset "
				     "%lld, or pread failed", c->index, ret,
				     (long long)off);
				r = -1;
				break;
			}
		} else
			ret = gnutls_record_recv(c->s, buf, CHUNK);
		r = outcome(c, OP_RECV, ret);
		if (r > 0)
			continue;
		if (r < 0 || ret == 0)
			break;
		if ((bad = kt_stream_check(&st, buf, ret))) {
			kt_fail("conn %u: client: byte %llu of the server's "
			     "stream is wrong", c->index,
			     (unsigned long long)(c->received + bad - 1));
			r = -1;
			break;
		}
		c->received += ret;
	}
	if (mfd >= 0)
		close(mfd);
	free(buf);
	return r;
}

static void client_check_flags(struct conn *c)
{
	int flags = gnutls_transport_is_ktls_enabled(c->s);
	int ktx = kernel_has_keys(c->fd, K_TLS_TX);
	int krx = kernel_has_keys(c->fd, K_TLS_RX);

	if (opt.expect >= 0 && flags != opt.expect)
		kt_fail("conn %u: gnutls_transport_is_ktls_enabled() = %d, "
		     "expected %d", c->index, flags, opt.expect);
	if (!!(flags & GNUTLS_KTLS_SEND) != ktx ||
	    !!(flags & GNUTLS_KTLS_RECV) != krx)
		kt_fail("conn %u: gnutls_transport_is_ktls_enabled() = %d but "
		     "the kernel has TX keys: %s, RX keys: %s", c->index,
		     flags, ktx ? "yes" : "no", krx ? "yes" : "no");
}

static void run_client(struct conn *c)
{
	ssize_t ret;
	int r;

	c->fd = kt_connect(&laddr, 0);
	nodelay(c->fd);
	if (c->fd < 0) {
		kt_fail("conn %u: connect: %s", c->index, strerror(errno));
		return;
	}
	__atomic_add_fetch(&connected, 1, __ATOMIC_SEQ_CST);
	if (gnutls_init(&c->s, GNUTLS_CLIENT) < 0 ||
	    gnutls_priority_set_direct(c->s, opt.prio, NULL) < 0 ||
	    gnutls_credentials_set(c->s, GNUTLS_CRD_CERTIFICATE, ccred) < 0 ||
	    gnutls_server_name_set(c->s, GNUTLS_NAME_DNS, "localhost", 9) < 0) {
		kt_fail("conn %u: client session setup", c->index);
		return;
	}
	if (opt.resume) {
		pthread_mutex_lock(&sdata_lock);
		if (sdata.data &&
		    gnutls_session_set_data(c->s, sdata.data, sdata.size) < 0)
			kt_fail("conn %u: gnutls_session_set_data", c->index);
		pthread_mutex_unlock(&sdata_lock);
	}
	gnutls_transport_set_int(c->s, c->fd);
	gnutls_handshake_set_timeout(c->s, IO_TIMEOUT_MS);
	gnutls_record_set_timeout(c->s, opt.record_timeout);
	do {
		ret = gnutls_handshake(c->s);
	} while ((r = outcome(c, OP_HANDSHAKE, ret)) > 0);
	if (r < 0)
		return;
	c->resumed = gnutls_session_is_resumed(c->s);
	client_check_flags(c);

	if (opt.duplex) {
		pthread_t th;

		if ((r = pthread_create(&th, NULL, client_send_thread, c))) {
			kt_fail("pthread_create: %s", strerror(r));
			return;
		}
		client_recv(c);
		pthread_join(th, NULL);
	} else if (client_send(c) == 0)
		client_recv(c);

	/* a TLS 1.3 ticket arrives after the handshake: take the data
	 * once the connection has read everything */
	if (opt.resume && c->err_op == OP_NONE) {
		pthread_mutex_lock(&sdata_lock);
		if (sdata.data == NULL &&
		    gnutls_session_get_data2(c->s, &sdata) < 0)
			kt_fail("conn %u: gnutls_session_get_data2", c->index);
		pthread_mutex_unlock(&sdata_lock);
	}
}

/* One connection, client side (a server thread serves it).  Returns 0
 * when its outcome is the expected one. */
static int one_conn(unsigned index, int first)
{
	struct conn c;
	int bad = 0;

	memset(&c, 0, sizeof(c));
	c.index = index;
	c.fd = -1;
	run_client(&c);
	if (c.s)
		gnutls_deinit(c.s);
	if (c.fd >= 0)
		close(c.fd);

	if (opt.fail_op != OP_NONE) {
		if (c.err_op != opt.fail_op || c.err_code != opt.fail_code) {
			kt_fail("conn %u: expected %s to fail with %s, got %s%s%s",
			     index, op_names[opt.fail_op],
			     kt_ename(opt.fail_code),
			     c.err_op == OP_NONE ? "no error" :
			     op_names[c.err_op], c.err_op == OP_NONE ? "" :
			     ": ", c.err_op == OP_NONE ? "" :
			     kt_ename(c.err_code));
			bad = 1;
		}
	} else if (c.err_op != OP_NONE) {
		kt_fail("conn %u: %s: %s (sent %llu, received %llu)", index,
		     op_names[c.err_op], kt_ename(c.err_code),
		     (unsigned long long)c.sent,
		     (unsigned long long)c.received);
		bad = 1;
	} else if (c.sent != opt.size || c.received != opt.size) {
		kt_fail("conn %u: sent %llu, received %llu, expected %zu each",
		     index, (unsigned long long)c.sent,
		     (unsigned long long)c.received, opt.size);
		bad = 1;
	}
	if (opt.retry_op != OP_NONE && c.retries[opt.retry_op] == 0) {
		kt_fail("conn %u: %s never returned GNUTLS_E_AGAIN/INTERRUPTED",
		     index, op_names[opt.retry_op]);
		bad = 1;
	}
	if (opt.resume && !first && c.err_op == OP_NONE && !c.resumed) {
		kt_fail("conn %u: not resumed", index);
		bad = 1;
	}
	if (opt.verbose)
		printf("conn %u: resumed %d, sent %llu, received %llu, "
		       "retries send %u recv %u, error %s%s%s\n", index,
		       c.resumed, (unsigned long long)c.sent,
		       (unsigned long long)c.received, c.retries[OP_SEND],
		       c.retries[OP_RECV], op_names[c.err_op],
		       c.err_op ? " " : "", c.err_op ? kt_ename(c.err_code) : "");
	return bad ? -1 : 0;
}

/* --- rounds ------------------------------------------------------------ */

/* --par client threads and as many server threads live through the whole
 * run (GnuTLS 3.7.9 keeps a random generator context per thread until
 * gnutls_global_deinit(), so new threads would look like a leak).  The
 * clients take connection numbers from a counter; the main thread
 * measures between the phases (barriers). */
static pthread_barrier_t phase_barrier;
static unsigned next_conn, phase_end[2], warmup_each;

static void *client_worker(void *arg)
{
	unsigned ph, i, n;

	(void)arg;
	thread_init();
	for (ph = 0; ph < 2; ph++) {
		pthread_barrier_wait(&phase_barrier);
		/* warm-up: every client thread makes its own connections */
		for (n = 0; ph == 0 && n < warmup_each; n++)
			one_conn(__atomic_fetch_add(&next_conn, 1,
						    __ATOMIC_SEQ_CST), 0);
		while (ph == 1 && (i = __atomic_fetch_add(&next_conn, 1,
				   __ATOMIC_SEQ_CST)) < phase_end[ph])
			one_conn(i, 0);
		pthread_barrier_wait(&phase_barrier);
	}
	return NULL;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;	/* the directory's own fd */
}

static long heap_in_use(void)
{
	struct mallinfo2 mi;

	malloc_trim(0);
	mi = mallinfo2();
	return (long)(mi.uordblks + mi.hblkhd);
}

static long rss_kib(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* --- setup ------------------------------------------------------------- */

static int make_creds(void)
{
	return kt_make_x509_creds(&scred, &ccred) < 0 ||
	       gnutls_session_ticket_key_generate(&ticket_key) < 0 ? -1 : 0;
}

static int make_file(void)
{
	unsigned char *buf = malloc(CHUNK);
	struct kt_stream st;
	size_t off = 0, n;

	kt_stream_init(&st, KT_SEED_C2S);
	file_fd = memfd_create("ktls-load", 0);
	if (file_fd < 0 || buf == NULL)
		return -1;
	while (off < opt.size) {
		n = opt.size - off < CHUNK ? opt.size - off : CHUNK;
		kt_stream_fill(&st, buf, n);
		if (write(file_fd, buf, n) != (ssize_t)n)
			return -1;
		off += n;
	}
	free(buf);
	return 0;
}

static int make_listener(void)
{
	lfd = kt_loopback_listen(&laddr, 0, 1024);
	return lfd < 0 ? -1 : 0;
}

static enum op parse_op(const char *s, size_t n)
{
	int i;

	for (i = OP_HANDSHAKE; i < OP_N; i++)
		if (strlen(op_names[i]) == n && strncmp(s, op_names[i], n) == 0)
			return i;
	return OP_NONE;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: ktls-load [--tls12|--tls13] [--conns N] [--par P]\n"
		"         [--size BYTES] [--resume]\n"
		"         [--mode send|sendfile|mixed|sendfile-pipe]\n"
		"         [--duplex] [--server-user]\n"
		"         [--expect none|recv|send|duplex] [--check-leaks]\n"
		"         [--warmup N] [--max-heap-growth BYTES]\n"
		"         [--fail OP=GNUTLS_E_...] [--expect-retry OP]\n"
		"         [--timeout S] [--record-timeout MS] [--recv-file]\n"
		"         [--verbose]\n"
		"  OP: handshake|send|recv\n");
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "tls12", no_argument, NULL, '2' },
		{ "tls13", no_argument, NULL, '3' },
		{ "conns", required_argument, NULL, 'n' },
		{ "par", required_argument, NULL, 'p' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "size", required_argument, NULL, 's' },
		{ "mode", required_argument, NULL, 'm' },
		{ "resume", no_argument, NULL, 'r' },
		{ "duplex", no_argument, NULL, 'd' },
		{ "server-user", no_argument, NULL, 'u' },
		{ "expect", required_argument, NULL, 'e' },
		{ "check-leaks", no_argument, NULL, 'l' },
		{ "max-heap-growth", required_argument, NULL, 'g' },
		{ "fail", required_argument, NULL, 'f' },
		{ "expect-retry", required_argument, NULL, 'R' },
		{ "timeout", required_argument, NULL, 't' },
		{ "record-timeout", required_argument, NULL, 'T' },
		{ "recv-file", no_argument, NULL, 'F' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	static const char *const flag_names[] = {
		"none", "recv", "send", "duplex"
	};
	int c, i, fds0 = 0, fds1 = 0;
	long heap0 = 0, heap1 = 0, rss0 = 0, rss1 = 0;
	pthread_t *srv_th, *cli_th;
	unsigned first;
	struct timespec t0, t1;
	const char *eq;

	while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		switch (c) {
		case '2':
			opt.prio = "NORMAL:-VERS-ALL:+VERS-TLS1.2";
			break;
		case '3':
			opt.prio = "NORMAL:-VERS-ALL:+VERS-TLS1.3";
			break;
		case 'n':
			opt.conns = strtoul(optarg, NULL, 10);
			break;
		case 'p':
			opt.par = strtoul(optarg, NULL, 10);
			break;
		case 'w':
			opt.warmup = strtoul(optarg, NULL, 10);
			break;
		case 's':
			opt.size = strtoul(optarg, NULL, 10);
			break;
		case 'm':
			opt.mode = !strcmp(optarg, "send") ? M_SEND :
				   !strcmp(optarg, "sendfile") ? M_SENDFILE :
				   !strcmp(optarg, "mixed") ? M_MIXED :
				   !strcmp(optarg, "sendfile-pipe") ?
				   M_SENDFILE_PIPE : -1;
			if ((int)opt.mode < 0)
				return usage(stderr), 2;
			break;
		case 'r':
			opt.resume = 1;
			break;
		case 'd':
			opt.duplex = 1;
			break;
		case 'u':
			opt.server_user = 1;
			break;
		case 'e':
			for (i = 0; i < 4; i++)
				if (strcmp(optarg, flag_names[i]) == 0)
					opt.expect = i;
			if (opt.expect < 0)
				return usage(stderr), 2;
			break;
		case 'l':
			opt.check_leaks = 1;
			break;
		case 'g':
			opt.max_heap_growth = strtol(optarg, NULL, 10);
			break;
		case 'f':
			eq = strchr(optarg, '=');
			if (eq == NULL ||
			    (opt.fail_op = parse_op(optarg, eq - optarg)) ==
			    OP_NONE || kt_error_code(eq + 1, &opt.fail_code) < 0)
				return usage(stderr), 2;
			break;
		case 'R':
			opt.retry_op = parse_op(optarg, strlen(optarg));
			if (opt.retry_op == OP_NONE)
				return usage(stderr), 2;
			break;
		case 't':
			opt.timeout = strtoul(optarg, NULL, 10);
			break;
		case 'F':
			opt.recv_file = 1;
			break;
		case 'T':
			opt.record_timeout = strtoul(optarg, NULL, 10);
			break;
		case 'v':
			opt.verbose = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || opt.conns == 0 || opt.par == 0 ||
	    opt.size == 0 || (opt.fail_op != OP_NONE && opt.conns != 1))
		return usage(stderr), 2;

	/* freed chunks held in glibc's per-thread caches would count as
	 * heap in use: measure without them */
	if (opt.check_leaks && getenv("KTLS_LOAD_REEXEC") == NULL) {
		setenv("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0", 1);
		setenv("KTLS_LOAD_REEXEC", "1", 1);
		execv("/proc/self/exe", argv);
		printf("FAIL: ktls-load: execv: %s\n", strerror(errno));
		return 1;
	}
	kt_fail_limit(20);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, watchdog);
	alarm(opt.timeout);
	if (gnutls_global_init() < 0 || make_creds() < 0 || make_file() < 0 ||
	    make_listener() < 0) {
		printf("FAIL: ktls-load: setup: %s\n", strerror(errno));
		return 1;
	}

	srv_th = calloc(opt.par, sizeof(*srv_th));
	cli_th = calloc(opt.par, sizeof(*cli_th));
	pthread_barrier_init(&phase_barrier, NULL, opt.par + 1);
	for (i = 0; i < (int)opt.par; i++)
		if (pthread_create(&srv_th[i], NULL, server_loop, NULL) ||
		    pthread_create(&cli_th[i], NULL, client_worker, NULL)) {
			printf("FAIL: ktls-load: pthread_create\n");
			return 1;
		}
	first = 0;
	if (opt.resume) {
		one_conn(first++, 1);	/* the ticket */
		opt.conns--;
	}
	next_conn = first;
	warmup_each = opt.check_leaks ? opt.warmup : 0;
	pthread_barrier_wait(&phase_barrier);	/* warm-up */
	pthread_barrier_wait(&phase_barrier);
	wait_servers();
	phase_end[1] = next_conn + opt.conns;
	if (opt.check_leaks) {
		fds0 = count_fds();
		heap0 = heap_in_use();
		rss0 = rss_kib();
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_barrier_wait(&phase_barrier);	/* the connections */
	pthread_barrier_wait(&phase_barrier);
	wait_servers();
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (opt.check_leaks) {
		fds1 = count_fds();
		heap1 = heap_in_use();
		rss1 = rss_kib();
	}
	stopping = 1;
	shutdown(lfd, SHUT_RDWR);
	for (i = 0; i < (int)opt.par; i++) {
		pthread_join(cli_th[i], NULL);
		pthread_join(srv_th[i], NULL);
	}
	free(srv_th);
	free(cli_th);
	pthread_barrier_destroy(&phase_barrier);

	printf("ktls-load: %u connection(s), %u at a time, %zu bytes each "
	       "way, %s%s%s: %.1f s\n", opt.conns, opt.par, opt.size,
	       opt.prio + strlen("NORMAL:-VERS-ALL:+VERS-"),
	       opt.resume ? ", resumed" : "", opt.duplex ? ", duplex" : "",
	       (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	if (opt.check_leaks) {
		printf("ktls-load: fds %d -> %d, heap in use %ld -> %ld "
		       "(%+ld bytes), RSS %ld -> %ld KiB\n", fds0, fds1,
		       heap0, heap1, heap1 - heap0, rss0, rss1);
		if (fds0 < 0 || fds1 != fds0)
			kt_fail("open fds: %d before, %d after", fds0, fds1);
		if (heap1 - heap0 > opt.max_heap_growth)
			kt_fail("heap in use grew by %ld bytes (limit %ld)",
			     heap1 - heap0, opt.max_heap_growth);
	}

	close(lfd);
	close(file_fd);
	gnutls_free(sdata.data);
	gnutls_free(ticket_key.data);
	gnutls_certificate_free_credentials(scred);
	gnutls_certificate_free_credentials(ccred);
	gnutls_global_deinit();
	if (kt_failures())
		printf("ktls-load: %u failure(s)\n", kt_failures());
	else
		printf("PASS: ktls-load\n");
	return kt_failures() ? 1 : 0;
}
