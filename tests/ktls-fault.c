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
 * ktls-fault: an LD_PRELOAD shim that makes chosen socket calls fail, to
 * test how the KTLS backend falls back when the kernel says no.
 *
 * Build: cc -shared -fPIC -O2 -Wall -o ktls-fault.so ktls-fault.c -ldl
 *
 * KTLS_FAULT is a comma-separated list of rules
 *
 *	call[:selector]=ERRNO[@N|@N+]
 *
 *   call      setsockopt getsockopt sendmsg recvmsg sendfile splice fcntl
 *   selector  setsockopt/getsockopt:
 *               ulp     level SOL_TCP, option TCP_ULP
 *               tls_tx  level SOL_TLS, option TLS_TX
 *               tls_rx  level SOL_TLS, option TLS_RX
 *               tls_rx_no_pad  SOL_TLS, TLS_RX_EXPECT_NO_PAD
 *               so_type, so_protocol  SOL_SOCKET, SO_TYPE / SO_PROTOCOL
 *               L/O     any other level/option by number, e.g. 6/31
 *             sendmsg/recvmsg/sendfile/splice (sendfile: the output fd,
 *             splice: either fd):
 *               tls     only sockets that carry the "tls" ULP
 *               tlspeek recvmsg only: "tls" and MSG_PEEK in the flags
 *               any     every call (the default)
 *             fcntl:
 *               setpipe_sz  only F_SETPIPE_SZ
 *   ERRNO     a name (ENOENT, EINVAL, ...) or a number; for recvmsg also
 *             NOCMSG (the real call happens, then msg_controllen = 0: the
 *             control message is stripped) or CTRUNC (the same, and
 *             MSG_CTRUNC in msg_flags)
 *   @N        fail only the Nth matching call (counted from 1, per rule,
 *             per process: a forked child inherits the counts at fork);
 *             @N+ the Nth and every later one; no @: every matching call
 *
 * Examples:
 *   KTLS_FAULT=setsockopt:ulp=ENOENT       no tls module
 *   KTLS_FAULT=setsockopt:tls_tx=EINVAL    the kernel refuses TX keys
 *   KTLS_FAULT=sendmsg:tls=EPIPE@3,recvmsg=EIO@2
 *   KTLS_FAULT=fcntl:setpipe_sz=EPERM      pipes cannot grow
 *   KTLS_FAULT=recvmsg:tls=NOCMSG@2        the record type is lost
 *
 * A failing call does nothing and returns -1 with errno set.  Calls that
 * match no rule go to the real function.  KTLS_FAULT_LOG=1 writes one
 * line to stderr per injected failure.  The rules are parsed once, in a
 * constructor, into static storage; the wrappers then only use atomic
 * counters, getsockopt(2) and write(2), so they are thread-safe and
 * async-signal-safe.  A malformed KTLS_FAULT aborts the process.
 */

#define _GNU_SOURCE

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef SOL_TLS
# define SOL_TLS 282
#endif
#ifndef TCP_ULP
# define TCP_ULP 31
#endif
#define KF_TLS_TX 1			/* TLS_TX, TLS_RX, TLS_RX_EXPECT_NO_PAD */
#define KF_TLS_RX 2
#define KF_TLS_RX_EXPECT_NO_PAD 4

enum kf_call { KF_SETSOCKOPT, KF_GETSOCKOPT, KF_SENDMSG, KF_RECVMSG,
	       KF_SENDFILE, KF_SPLICE, KF_FCNTL, KF_NCALLS };

static const char *const kf_call_names[KF_NCALLS] = {
	"setsockopt", "getsockopt", "sendmsg", "recvmsg", "sendfile", "splice",
	"fcntl"
};

enum kf_sel { KF_SEL_ANY, KF_SEL_OPT, KF_SEL_TLS, KF_SEL_TLS_PEEK };

/* recvmsg "errnos" that let the call happen and then damage its result */
#define KF_NOCMSG (-1)
#define KF_CTRUNC (-2)

struct kf_rule {
	enum kf_call call;
	enum kf_sel sel;
	int level, optname;	/* KF_SEL_OPT */
	int err;
	unsigned long nth;	/* 0: every call */
	int and_later;
	unsigned long count;	/* matching calls so far (atomic) */
};

#define KF_MAX_RULES 32
static struct kf_rule kf_rules[KF_MAX_RULES];
static int kf_nrules;
static int kf_log;

static int (*real_setsockopt)(int, int, int, const void *, socklen_t);
static int (*real_getsockopt)(int, int, int, void *, socklen_t *);
static ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
static ssize_t (*real_recvmsg)(int, struct msghdr *, int);
static ssize_t (*real_sendfile)(int, int, off_t *, size_t);
static ssize_t (*real_sendfile64)(int, int, off_t *, size_t);
static ssize_t (*real_splice)(int, loff_t *, int, loff_t *, size_t,
			      unsigned int);
static int (*real_fcntl)(int, int, ...);
static int (*real_fcntl64)(int, int, ...);

static const struct { const char *name; int err; } kf_errnos[] = {
#define E(x) { #x, x }
	E(EPERM), E(ENOENT), E(EINTR), E(EIO), E(EBADF), E(EAGAIN),
	E(ENOMEM), E(EACCES), E(EFAULT), E(EBUSY), E(EEXIST), E(EINVAL),
	E(ENOSPC), E(EPIPE), E(ENOSYS), E(ENOTSOCK), E(EMSGSIZE),
	E(ENOPROTOOPT), E(EPROTONOSUPPORT), E(EOPNOTSUPP), E(ENOBUFS),
	E(ENOTCONN), E(ETIMEDOUT), E(ECONNRESET), E(EBADMSG), E(EOVERFLOW),
	E(ESPIPE), E(EWOULDBLOCK), E(ECONNABORTED), E(EKEYEXPIRED),
#undef E
};

static void kf_write(const char *s)
{
	ssize_t r = write(2, s, strlen(s));
	(void)r;
}

static void kf_die(const char *what, const char *rule)
{
	kf_write("ktls-fault: ");
	kf_write(what);
	kf_write(": '");
	kf_write(rule);
	kf_write("'\n");
	abort();
}

static void *kf_sym(const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);

	if (p == NULL)
		kf_die("dlsym failed", name);
	return p;
}

static void kf_resolve(void)
{
	real_setsockopt = kf_sym("setsockopt");
	real_getsockopt = kf_sym("getsockopt");
	real_sendmsg = kf_sym("sendmsg");
	real_recvmsg = kf_sym("recvmsg");
	real_sendfile = kf_sym("sendfile");
	real_sendfile64 = dlsym(RTLD_NEXT, "sendfile64");
	if (real_sendfile64 == NULL)
		real_sendfile64 = real_sendfile;
	real_splice = kf_sym("splice");
	real_fcntl = kf_sym("fcntl");
	real_fcntl64 = dlsym(RTLD_NEXT, "fcntl64");
	if (real_fcntl64 == NULL)
		real_fcntl64 = real_fcntl;
}

static int kf_parse_errno(const char *s, const char *rule)
{
	char *end;
	long v;
	size_t i;

	if (strcmp(s, "NOCMSG") == 0)
		return KF_NOCMSG;
	if (strcmp(s, "CTRUNC") == 0)
		return KF_CTRUNC;
	for (i = 0; i < sizeof(kf_errnos) / sizeof(kf_errnos[0]); i++)
		if (strcmp(s, kf_errnos[i].name) == 0)
			return kf_errnos[i].err;
	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v <= 0 || v > 4095)
		kf_die("unknown errno", rule);
	return (int)v;
}

/* "call[:sel]=ERRNO[@N[+]]", modified in place */
static void kf_parse_rule(char *rule, const char *orig)
{
	struct kf_rule *r;
	char *eq, *colon, *at, *sel = NULL;
	int i;

	if (kf_nrules == KF_MAX_RULES)
		kf_die("too many rules", orig);
	r = &kf_rules[kf_nrules];
	memset(r, 0, sizeof(*r));

	eq = strchr(rule, '=');
	if (eq == NULL)
		kf_die("missing '='", orig);
	*eq++ = '\0';
	at = strchr(eq, '@');
	if (at != NULL) {
		char *end;

		*at++ = '\0';
		r->nth = strtoul(at, &end, 10);
		if (end == at || r->nth == 0)
			kf_die("bad @N", orig);
		if (*end == '+') {
			r->and_later = 1;
			end++;
		}
		if (*end != '\0')
			kf_die("bad @N", orig);
	}
	r->err = kf_parse_errno(eq, orig);

	colon = strchr(rule, ':');
	if (colon != NULL) {
		*colon = '\0';
		sel = colon + 1;
	}
	for (i = 0; i < KF_NCALLS; i++)
		if (strcmp(rule, kf_call_names[i]) == 0)
			break;
	if (i == KF_NCALLS)
		kf_die("unknown call", orig);
	r->call = i;
	if (r->err < 0 && r->call != KF_RECVMSG)
		kf_die("NOCMSG/CTRUNC are for recvmsg", orig);

	r->sel = KF_SEL_ANY;
	if (sel == NULL || strcmp(sel, "any") == 0 || *sel == '\0')
		;
	else if (r->call == KF_SETSOCKOPT || r->call == KF_GETSOCKOPT) {
		static const struct {
			const char *name;
			int level, optname;
		} opts[] = {
			{ "ulp", SOL_TCP, TCP_ULP },
			{ "tls_tx", SOL_TLS, KF_TLS_TX },
			{ "tls_rx", SOL_TLS, KF_TLS_RX },
			{ "tls_rx_no_pad", SOL_TLS, KF_TLS_RX_EXPECT_NO_PAD },
			{ "so_type", SOL_SOCKET, SO_TYPE },
			{ "so_protocol", SOL_SOCKET, SO_PROTOCOL },
		};
		size_t o;

		r->sel = KF_SEL_OPT;
		for (o = 0; o < sizeof(opts) / sizeof(opts[0]); o++)
			if (strcmp(sel, opts[o].name) == 0)
				break;
		if (o < sizeof(opts) / sizeof(opts[0])) {
			r->level = opts[o].level;
			r->optname = opts[o].optname;
		} else {
			char *end;

			r->level = (int)strtol(sel, &end, 10);
			if (end == sel || *end != '/')
				kf_die("unknown selector", orig);
			sel = end + 1;
			r->optname = (int)strtol(sel, &end, 10);
			if (end == sel || *end != '\0')
				kf_die("unknown selector", orig);
		}
	} else if (r->call == KF_FCNTL) {
		if (strcmp(sel, "setpipe_sz") != 0)
			kf_die("unknown selector", orig);
		r->sel = KF_SEL_OPT;
		r->optname = F_SETPIPE_SZ;
	} else if (strcmp(sel, "tls") == 0)
		r->sel = KF_SEL_TLS;
	else if (strcmp(sel, "tlspeek") == 0 && r->call == KF_RECVMSG)
		r->sel = KF_SEL_TLS_PEEK;
	else
		kf_die("unknown selector", orig);
	kf_nrules++;
}

__attribute__((constructor))
static void kf_init(void)
{
	static char buf[4096], orig[128];
	const char *env = getenv("KTLS_FAULT");
	const char *log = getenv("KTLS_FAULT_LOG");
	char *save = NULL, *tok;

	kf_resolve();
	kf_log = log != NULL && *log != '\0' && strcmp(log, "0") != 0;
	if (env == NULL || *env == '\0')
		return;
	if (strlen(env) >= sizeof(buf))
		kf_die("KTLS_FAULT too long", "");
	strcpy(buf, env);
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		if (*tok == '\0')
			continue;
		strncpy(orig, tok, sizeof(orig) - 1);
		kf_parse_rule(tok, orig);
	}
}

/* The "tls" ULP on fd, asked of the real getsockopt */
static int kf_fd_is_tls(int fd)
{
	char name[16] = "";
	socklen_t len = sizeof(name) - 1;

	if (real_getsockopt == NULL)
		return 0;
	return real_getsockopt(fd, SOL_TCP, TCP_ULP, name, &len) == 0 &&
	       strcmp(name, "tls") == 0;
}

static void kf_utoa(unsigned long v, char *out)
{
	char tmp[24];
	int n = 0, i = 0;

	do {
		tmp[n++] = '0' + v % 10;
		v /= 10;
	} while (v != 0);
	while (n > 0)
		out[i++] = tmp[--n];
	out[i] = '\0';
}

/* 0: no rule wants this call to fail; else the errno to fail with
 * (KF_NOCMSG/KF_CTRUNC for recvmsg).  fd2: a second fd the "tls"
 * selector may match (splice), or -1; for recvmsg level is the flags. */
static int kf_check(enum kf_call call, int level, int optname, int fd,
		    int fd2)
{
	int i, tls = -1;

	for (i = 0; i < kf_nrules; i++) {
		struct kf_rule *r = &kf_rules[i];
		unsigned long n;

		if (r->call != call)
			continue;
		if (r->sel == KF_SEL_OPT &&
		    (r->level != level || r->optname != optname))
			continue;
		if (r->sel == KF_SEL_TLS_PEEK && !(level & MSG_PEEK))
			continue;
		if (r->sel == KF_SEL_TLS || r->sel == KF_SEL_TLS_PEEK) {
			if (tls < 0)
				tls = kf_fd_is_tls(fd) ||
				      (fd2 >= 0 && kf_fd_is_tls(fd2));
			if (!tls)
				continue;
		}
		n = __atomic_add_fetch(&r->count, 1, __ATOMIC_SEQ_CST);
		if (r->nth != 0 && n != r->nth && !(r->and_later && n > r->nth))
			continue;
		if (kf_log) {
			char num[24];

			kf_write("ktls-fault: failing ");
			kf_write(kf_call_names[call]);
			kf_write(" call #");
			kf_utoa(n, num);
			kf_write(num);
			if (r->err < 0) {
				kf_write(r->err == KF_NOCMSG ? " with NOCMSG"
					 : " with CTRUNC");
			} else {
				kf_write(" with errno ");
				kf_utoa((unsigned long)r->err, num);
				kf_write(num);
			}
			kf_write("\n");
		}
		return r->err;
	}
	return 0;
}

#define KF_FAIL_IF(check) do { \
		int kf_err_ = (check); \
		if (kf_err_ != 0) { \
			errno = kf_err_; \
			return -1; \
		} \
	} while (0)

int setsockopt(int fd, int level, int optname, const void *optval,
	       socklen_t optlen)
{
	KF_FAIL_IF(kf_check(KF_SETSOCKOPT, level, optname, fd, -1));
	if (real_setsockopt == NULL)
		kf_resolve();
	return real_setsockopt(fd, level, optname, optval, optlen);
}

int getsockopt(int fd, int level, int optname, void *optval,
	       socklen_t *optlen)
{
	KF_FAIL_IF(kf_check(KF_GETSOCKOPT, level, optname, fd, -1));
	if (real_getsockopt == NULL)
		kf_resolve();
	return real_getsockopt(fd, level, optname, optval, optlen);
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	KF_FAIL_IF(kf_check(KF_SENDMSG, 0, 0, fd, -1));
	if (real_sendmsg == NULL)
		kf_resolve();
	return real_sendmsg(fd, msg, flags);
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	int err = kf_check(KF_RECVMSG, flags, 0, fd, -1);
	ssize_t ret;

	if (err > 0) {
		errno = err;
		return -1;
	}
	if (real_recvmsg == NULL)
		kf_resolve();
	ret = real_recvmsg(fd, msg, flags);
	if (err < 0 && ret >= 0) {
		msg->msg_controllen = 0;
		if (err == KF_CTRUNC)
			msg->msg_flags |= MSG_CTRUNC;
	}
	return ret;
}

ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
	KF_FAIL_IF(kf_check(KF_SENDFILE, 0, 0, out_fd, -1));
	if (real_sendfile == NULL)
		kf_resolve();
	return real_sendfile(out_fd, in_fd, offset, count);
}

/* on LP64 glibc sendfile64 is the same function under another name */
ssize_t sendfile64(int out_fd, int in_fd, off_t *offset, size_t count)
{
	KF_FAIL_IF(kf_check(KF_SENDFILE, 0, 0, out_fd, -1));
	if (real_sendfile64 == NULL)
		kf_resolve();
	return real_sendfile64(out_fd, in_fd, offset, count);
}

ssize_t splice(int fd_in, loff_t *off_in, int fd_out, loff_t *off_out,
	       size_t len, unsigned int flags)
{
	KF_FAIL_IF(kf_check(KF_SPLICE, 0, 0, fd_out, fd_in));
	if (real_splice == NULL)
		kf_resolve();
	return real_splice(fd_in, off_in, fd_out, off_out, len, flags);
}

/* fcntl is variadic: every command the backend uses takes an int or a
 * pointer, passed on as a long */
static int kf_fcntl(int (*real)(int, int, ...), int fd, int cmd, long arg)
{
	KF_FAIL_IF(kf_check(KF_FCNTL, 0, cmd, fd, -1));
	return real(fd, cmd, arg);
}

/* fcntl and fcntl64: one wrapper, for the real function of each name */
#define KF_FCNTL_WRAPPER(name)						\
	int name(int fd, int cmd, ...)					\
	{								\
		va_list ap;						\
		long arg;						\
									\
		va_start(ap, cmd);					\
		arg = va_arg(ap, long);					\
		va_end(ap);						\
		if (real_##name == NULL)				\
			kf_resolve();					\
		return kf_fcntl(real_##name, fd, cmd, arg);		\
	}
KF_FCNTL_WRAPPER(fcntl)
KF_FCNTL_WRAPPER(fcntl64)
