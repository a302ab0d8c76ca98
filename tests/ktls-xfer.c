/*
 * Copyright (C) 2024 The KTLS offload patch authors
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
 * ktls-xfer: bulk data transfer between a forked TLS server and a TLS
 * client over a real TCP connection on 127.0.0.1.
 *
 * After the handshake both sides assert that
 * gnutls_transport_is_ktls_enabled() reports the expected offload state,
 * and that the negotiated version and cipher are the requested ones.  Then
 * --size bytes are sent in the requested direction(s), either with
 * gnutls_record_send() or with gnutls_record_send_file() from a temporary
 * file.  Both ends hash everything with SHA-256; the server reports its
 * results to the client process through a pipe and the client compares
 * them.  The sender closes with gnutls_bye(GNUTLS_SHUT_WR) and the receiver
 * must see gnutls_record_recv() return 0.  Optionally the kernel's
 * /proc/net/tls_stat counters are checked.
 *
 * Exit status: 0 success, 1 a check failed, 2 usage error.
 *
 * Build: cc ktls-xfer.c $(pkg-config --cflags --libs gnutls) -lpthread
 */

#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/socket.h>
#include <gnutls/x509.h>

#define HASH_LEN 32
#define HOSTNAME "localhost"
#define TLS_STAT_FILE "/proc/net/tls_stat"

/* Bytes of random data in the sendfile source file before the payload;
 * deliberately not page aligned. */
#define FILE_START 12345

#define DIR_C2S 1
#define DIR_S2C 2

#define EXIT_FAIL 1
#define EXIT_USAGE 2

enum role { CLIENT, SERVER };
static const char *const role_name[] = { "client", "server" };

struct cipher_desc {
	const char *name;	/* command line name */
	const char *prio;	/* priority string keyword */
	gnutls_cipher_algorithm_t algo;
};

static const struct cipher_desc ciphers[] = {
	{ "aes-128-gcm", "AES-128-GCM", GNUTLS_CIPHER_AES_128_GCM },
	{ "aes-256-gcm", "AES-256-GCM", GNUTLS_CIPHER_AES_256_GCM },
	{ "aes-128-ccm", "AES-128-CCM", GNUTLS_CIPHER_AES_128_CCM },
	{ "chacha20-poly1305", "CHACHA20-POLY1305",
	 GNUTLS_CIPHER_CHACHA20_POLY1305 },
};

#define N_CIPHERS (sizeof(ciphers) / sizeof(ciphers[0]))

struct opts {
	gnutls_protocol_t version;
	int version_set;
	const struct cipher_desc *cipher;
	int cipher_set;
	const char *prio;
	char prio_buf[256];
	int use_sendfile;
	int offset_null;
	uint64_t file_pos;
	unsigned dirs;
	uint64_t size;
	size_t chunk;
	unsigned expect;
	int check_stat;
	int quiet;
	int json;
	unsigned timeout;
	const char *tmpdir;
};

/* What one side saw in one direction. */
struct dir_result {
	uint64_t bytes;
	unsigned char hash[HASH_LEN];
};

/* Everything one side reports; the server sends it through a pipe. */
struct side_result {
	int ok;			/* no local check failed */
	int handshake_done;
	unsigned flags;		/* gnutls_transport_is_ktls_enabled() */
	int version;
	int cipher;
	struct dir_result sent;
	struct dir_result received;
	double start;		/* CLOCK_MONOTONIC, system wide */
	double end;
	double user;		/* CPU seconds during the transfer */
	double sys;
};

/* One direction of the transfer, as seen by one side. */
struct xfer {
	gnutls_session_t session;
	const struct opts *o;
	const char *who;	/* "client" / "server" */
	const char *dir;	/* "c2s" / "s2c" */
	uint64_t seed;
	int file_fd;		/* sendfile source, or -1 */
	int sock;		/* the TCP socket, to abort on failure */
	struct dir_result res;
	int ret;
};

struct tls_stat {
	int present;
	unsigned long long tx_sw, rx_sw, tx_dev, rx_dev, decrypt_err;
};

static int fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int fail(const char *fmt, ...)
{
	va_list ap;
	char msg[512];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "FAIL: %s\n", msg);
	fflush(stderr);
	return -1;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double tv_sec(const struct timeval *tv)
{
	return tv->tv_sec + tv->tv_usec / 1e6;
}

/* ---- pseudo random data ---- */

static uint64_t xorshift64s(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * UINT64_C(0x2545F4914F6CDD1D);
}

static void fill_random(uint8_t *buf, size_t len, uint64_t *state)
{
	uint64_t v;

	while (len >= sizeof(v)) {
		v = xorshift64s(state);
		memcpy(buf, &v, sizeof(v));
		buf += sizeof(v);
		len -= sizeof(v);
	}
	if (len > 0) {
		v = xorshift64s(state);
		memcpy(buf, &v, len);
	}
}

/* ---- option parsing ---- */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: ktls-xfer [options]\n"
		"  --tls12 | --tls13         protocol version (default 1.3)\n"
		"  --cipher NAME             aes-128-gcm (default), aes-256-gcm,\n"
		"                            aes-128-ccm, chacha20-poly1305\n"
		"  --prio STRING             priority string override\n"
		"  --mode send|sendfile      gnutls_record_send or _send_file\n"
		"  --offset null|ptr         send_file offset argument (default ptr)\n"
		"  --file-pos BYTES          with --offset ptr: file position to\n"
		"                            set beforehand, which must not be\n"
		"                            used nor moved (default 0)\n"
		"  --dir c2s|s2c|both        who sends (default c2s)\n"
		"  --size BYTES[K|M|G]       bytes per direction (default 64M)\n"
		"  --chunk BYTES[K|M|G]      bytes per send call (default 64K)\n"
		"  --expect duplex|none|send|recv\n"
		"                            required KTLS state on both sides\n"
		"                            (default none)\n"
		"  --check-stat              check " TLS_STAT_FILE " deltas\n"
		"  --timeout SECONDS         abort after this long (default 600)\n"
		"  --quiet                   only print failures\n"
		"  --json                    print one JSON result line\n");
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *s == '-')
		return -1;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		end++;
		break;
	case 'm':
	case 'M':
		shift = 20;
		end++;
		break;
	case 'g':
	case 'G':
		shift = 30;
		end++;
		break;
	}
	if (*end != '\0' || v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t) v << shift;
	return 0;
}

static int parse_expect(const char *s, unsigned *out)
{
	if (strcmp(s, "none") == 0)
		*out = 0;
	else if (strcmp(s, "recv") == 0)
		*out = GNUTLS_KTLS_RECV;
	else if (strcmp(s, "send") == 0)
		*out = GNUTLS_KTLS_SEND;
	else if (strcmp(s, "duplex") == 0)
		*out = GNUTLS_KTLS_DUPLEX;
	else
		return -1;
	return 0;
}

static const struct cipher_desc *find_cipher(const char *name)
{
	size_t i;

	for (i = 0; i < N_CIPHERS; i++)
		if (strcmp(ciphers[i].name, name) == 0)
			return &ciphers[i];
	return NULL;
}

static int bad_arg(const char *opt, const char *arg)
{
	fprintf(stderr, "ktls-xfer: invalid argument for --%s: '%s' "
		"(see --help)\n", opt, arg);
	return -1;
}

enum {
	OPT_TLS12 = 256, OPT_TLS13, OPT_CIPHER, OPT_PRIO, OPT_MODE,
	OPT_OFFSET, OPT_FILE_POS, OPT_DIR, OPT_SIZE, OPT_CHUNK, OPT_EXPECT, OPT_CHECK_STAT,
	OPT_TIMEOUT, OPT_QUIET, OPT_JSON, OPT_HELP
};

static const struct option long_opts[] = {
	{ "tls12", no_argument, NULL, OPT_TLS12 },
	{ "tls13", no_argument, NULL, OPT_TLS13 },
	{ "cipher", required_argument, NULL, OPT_CIPHER },
	{ "prio", required_argument, NULL, OPT_PRIO },
	{ "mode", required_argument, NULL, OPT_MODE },
	{ "offset", required_argument, NULL, OPT_OFFSET },
	{ "file-pos", required_argument, NULL, OPT_FILE_POS },
	{ "dir", required_argument, NULL, OPT_DIR },
	{ "size", required_argument, NULL, OPT_SIZE },
	{ "chunk", required_argument, NULL, OPT_CHUNK },
	{ "expect", required_argument, NULL, OPT_EXPECT },
	{ "check-stat", no_argument, NULL, OPT_CHECK_STAT },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "quiet", no_argument, NULL, OPT_QUIET },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 }
};

static int parse_one(struct opts *o, int c, const char *arg)
{
	const char *name = long_opts[c - OPT_TLS12].name;
	uint64_t v;

	switch (c) {
	case OPT_TLS12:
	case OPT_TLS13:
		o->version = c == OPT_TLS12 ? GNUTLS_TLS1_2 : GNUTLS_TLS1_3;
		o->version_set = 1;
		return 0;
	case OPT_CIPHER:
		o->cipher = find_cipher(arg);
		o->cipher_set = 1;
		return o->cipher ? 0 : bad_arg(name, arg);
	case OPT_PRIO:
		o->prio = arg;
		return 0;
	case OPT_MODE:
		if (strcmp(arg, "send") != 0 && strcmp(arg, "sendfile") != 0)
			return bad_arg(name, arg);
		o->use_sendfile = strcmp(arg, "sendfile") == 0;
		return 0;
	case OPT_OFFSET:
		if (strcmp(arg, "null") != 0 && strcmp(arg, "ptr") != 0)
			return bad_arg(name, arg);
		o->offset_null = strcmp(arg, "null") == 0;
		return 0;
	case OPT_FILE_POS:
		if (parse_size(arg, &v) < 0 || v > INT64_MAX / 2)
			return bad_arg(name, arg);
		o->file_pos = v;
		return 0;
	case OPT_DIR:
		if (strcmp(arg, "c2s") == 0)
			o->dirs = DIR_C2S;
		else if (strcmp(arg, "s2c") == 0)
			o->dirs = DIR_S2C;
		else if (strcmp(arg, "both") == 0)
			o->dirs = DIR_C2S | DIR_S2C;
		else
			return bad_arg(name, arg);
		return 0;
	case OPT_SIZE:
		if (parse_size(arg, &v) < 0 || v > INT64_MAX / 2)
			return bad_arg(name, arg);
		o->size = v;
		return 0;
	case OPT_CHUNK:
		if (parse_size(arg, &v) < 0 || v == 0 || v > (1u << 30))
			return bad_arg(name, arg);
		o->chunk = v;
		return 0;
	case OPT_EXPECT:
		return parse_expect(arg, &o->expect) < 0 ?
		    bad_arg(name, arg) : 0;
	case OPT_TIMEOUT:
		if (parse_size(arg, &v) < 0 || v > 86400)
			return bad_arg(name, arg);
		o->timeout = v;
		return 0;
	case OPT_CHECK_STAT:
		o->check_stat = 1;
		return 0;
	case OPT_QUIET:
		o->quiet = 1;
		return 0;
	case OPT_JSON:
		o->json = 1;
		return 0;
	case OPT_HELP:
		usage(stdout);
		exit(0);
	}
	usage(stderr);
	return -1;
}

static int parse_opts(struct opts *o, int argc, char **argv)
{
	int c;

	memset(o, 0, sizeof(*o));
	o->version = GNUTLS_TLS1_3;
	o->cipher = &ciphers[0];
	o->dirs = DIR_C2S;
	o->size = 64 << 20;
	o->chunk = 64 << 10;
	o->timeout = 600;
	o->tmpdir = getenv("TMPDIR");
	if (o->tmpdir == NULL || *o->tmpdir == '\0')
		o->tmpdir = "/tmp";

	while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		if (c < OPT_TLS12 || c > OPT_HELP) {
			usage(stderr);
			return -1;
		}
		if (parse_one(o, c, optarg) < 0)
			return -1;
	}
	if (optind != argc) {
		fprintf(stderr, "ktls-xfer: unexpected argument '%s'\n",
			argv[optind]);
		return -1;
	}

	if (o->prio == NULL) {
		snprintf(o->prio_buf, sizeof(o->prio_buf),
			 "NORMAL:-VERS-ALL:+VERS-TLS1.%d:-CIPHER-ALL:+%s",
			 o->version == GNUTLS_TLS1_2 ? 2 : 3, o->cipher->prio);
		o->prio = o->prio_buf;
		o->version_set = o->cipher_set = 1;
	}
	return 0;
}

/* ---- /proc/net/tls_stat ---- */

static int read_tls_stat(struct tls_stat *st)
{
	FILE *f;
	char name[64];
	unsigned long long v;

	memset(st, 0, sizeof(*st));
	f = fopen(TLS_STAT_FILE, "r");
	if (f == NULL) {
		if (errno == ENOENT)
			return 0;	/* tls module not loaded (yet) */
		return fail("open %s: %s", TLS_STAT_FILE, strerror(errno));
	}
	st->present = 1;
	while (fscanf(f, "%63s %llu", name, &v) == 2) {
		if (strcmp(name, "TlsTxSw") == 0)
			st->tx_sw = v;
		else if (strcmp(name, "TlsRxSw") == 0)
			st->rx_sw = v;
		else if (strcmp(name, "TlsTxDevice") == 0)
			st->tx_dev = v;
		else if (strcmp(name, "TlsRxDevice") == 0)
			st->rx_dev = v;
		else if (strcmp(name, "TlsDecryptError") == 0)
			st->decrypt_err = v;
	}
	fclose(f);
	return 0;
}

static void tls_stat_delta(const struct tls_stat *a, const struct tls_stat *b,
			   struct tls_stat *d)
{
	d->present = b->present;
	d->tx_sw = b->tx_sw - a->tx_sw;
	d->rx_sw = b->rx_sw - a->rx_sw;
	d->tx_dev = b->tx_dev - a->tx_dev;
	d->rx_dev = b->rx_dev - a->rx_dev;
	d->decrypt_err = b->decrypt_err - a->decrypt_err;
}

/* One connection: each of its two endpoints has its own TX/RX context. */
#define KTLS_CONTEXTS 2

static int check_one_stat(const char *what, unsigned long long delta,
			  int expected)
{
	if (expected && delta < KTLS_CONTEXTS)
		return fail("tls_stat %s increased by %llu, expected >= %d",
			    what, delta, KTLS_CONTEXTS);
	if (!expected && delta != 0)
		return fail("tls_stat %s increased by %llu, expected 0",
			    what, delta);
	return 0;
}

static int check_tls_stat(const struct opts *o, const struct tls_stat *d)
{
	int ret = 0;

	if (!o->quiet)
		printf("tls_stat: present=%d TxSw+%llu RxSw+%llu "
		       "TxDevice+%llu RxDevice+%llu DecryptError+%llu\n",
		       d->present, d->tx_sw, d->rx_sw, d->tx_dev, d->rx_dev,
		       d->decrypt_err);
	if (!d->present && o->expect != 0)
		return fail("%s missing but KTLS expected", TLS_STAT_FILE);
	if (check_one_stat("TX (TlsTxSw+TlsTxDevice)", d->tx_sw + d->tx_dev,
			   o->expect & GNUTLS_KTLS_SEND) < 0)
		ret = -1;
	if (check_one_stat("RX (TlsRxSw+TlsRxDevice)", d->rx_sw + d->rx_dev,
			   o->expect & GNUTLS_KTLS_RECV) < 0)
		ret = -1;
	if (d->decrypt_err != 0)
		ret = fail("tls_stat TlsDecryptError increased by %llu",
			   d->decrypt_err);
	return ret;
}

/* ---- credentials ---- */

static int gfail(const char *what, int ret)
{
	return fail("%s: %s", what, gnutls_strerror(ret));
}

#define CHECK(call) do { \
		int _r = (call); \
		if (_r < 0) { \
			ret = gfail(#call, _r); \
			goto out; \
		} \
	} while (0)

/* Self-signed ECDSA P-256 certificate for HOSTNAME; usable with TLS 1.3
 * and with the TLS 1.2 ECDHE-ECDSA suites. */
static int make_cert(gnutls_x509_crt_t *pcrt, gnutls_x509_privkey_t *pkey)
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
	CHECK(gnutls_x509_crt_set_dn(crt, "CN=" HOSTNAME, &err));
	CHECK(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME,
		HOSTNAME, strlen(HOSTNAME), GNUTLS_FSAN_SET));
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

/* Server credentials hold the key; the client trusts exactly that cert. */
static int make_creds(gnutls_certificate_credentials_t *scred,
		      gnutls_certificate_credentials_t *ccred)
{
	gnutls_x509_crt_t crt = NULL;
	gnutls_x509_privkey_t key = NULL;
	int ret = -1;

	*scred = *ccred = NULL;
	if (make_cert(&crt, &key) < 0)
		return -1;
	CHECK(gnutls_certificate_allocate_credentials(scred));
	CHECK(gnutls_certificate_allocate_credentials(ccred));
	CHECK(gnutls_certificate_set_x509_key(*scred, &crt, 1, key));
	CHECK(gnutls_certificate_set_x509_trust(*ccred, &crt, 1));
	ret = 0;
 out:
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(key);
	return ret;
}

/* ---- session ---- */

static int session_open(gnutls_session_t *ps, enum role role, int fd,
			gnutls_certificate_credentials_t cred,
			const struct opts *o)
{
	gnutls_session_t s = NULL;
	const char *err = NULL;
	int ret = -1;

	CHECK(gnutls_init(&s, role == SERVER ? GNUTLS_SERVER : GNUTLS_CLIENT));
	ret = gnutls_priority_set_direct(s, o->prio, &err);
	if (ret < 0) {
		ret = fail("%s: priority '%s' rejected at '%s': %s",
			   role_name[role], o->prio, err ? err : "",
			   gnutls_strerror(ret));
		goto out;
	}
	CHECK(gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred));
	if (role == CLIENT) {
		CHECK(gnutls_server_name_set(s, GNUTLS_NAME_DNS, HOSTNAME,
					     strlen(HOSTNAME)));
		gnutls_session_set_verify_cert(s, HOSTNAME, 0);
	}
	gnutls_transport_set_int(s, fd);
	gnutls_handshake_set_timeout(s, GNUTLS_DEFAULT_HANDSHAKE_TIMEOUT);

	do {
		ret = gnutls_handshake(s);
	} while (ret < 0 && gnutls_error_is_fatal(ret) == 0);
	if (ret < 0) {
		ret = fail("%s: handshake: %s", role_name[role],
			   gnutls_strerror(ret));
		goto out;
	}
	*ps = s;
	return 0;
 out:
	if (s)
		gnutls_deinit(s);
	return ret;
}

/* ---- transfer ---- */

static int xfail(const struct xfer *x, const char *what, long long ret)
{
	if (ret < 0 && ret > INT32_MIN)
		return fail("%s %s: %s: %s", x->who, x->dir, what,
			    gnutls_strerror((int)ret));
	return fail("%s %s: %s: returned %lld", x->who, x->dir, what, ret);
}

static int is_retry(ssize_t ret)
{
	return ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED;
}

static int hash_init(const struct xfer *x, gnutls_hash_hd_t *h)
{
	int ret = gnutls_hash_init(h, GNUTLS_DIG_SHA256);

	return ret < 0 ? xfail(x, "gnutls_hash_init", ret) : 0;
}

static int hash_update(const struct xfer *x, gnutls_hash_hd_t h,
		       const void *buf, size_t len)
{
	int ret = gnutls_hash(h, buf, len);

	return ret < 0 ? xfail(x, "gnutls_hash", ret) : 0;
}

/* Create the sendfile source: FILE_START bytes of junk then the payload
 * (hashed into x->res.hash).  With --offset null the file position is set
 * to the payload; with --offset ptr to --file-pos, where it must stay.
 * The file is unlinked immediately. */
static int file_prepare(struct xfer *x)
{
	const struct opts *o = x->o;
	char path[4096];
	uint8_t *buf;
	uint64_t left = o->size + FILE_START, state = x->seed ^ 0xf11e;
	gnutls_hash_hd_t h;
	size_t n, skip;
	off_t pos;
	int fd, ret = -1;

	snprintf(path, sizeof(path), "%s/ktls-xfer.XXXXXX", o->tmpdir);
	fd = mkstemp(path);
	if (fd < 0)
		return fail("%s: mkstemp %s: %s", x->who, path,
			    strerror(errno));
	unlink(path);
	buf = malloc(o->chunk);
	if (buf == NULL) {
		close(fd);
		return fail("%s: out of memory", x->who);
	}
	if (hash_init(x, &h) < 0)
		goto out_noh;

	while (left > 0) {
		n = left < o->chunk ? left : o->chunk;
		fill_random(buf, n, &state);
		if (write(fd, buf, n) != (ssize_t) n) {
			ret = fail("%s: write %s: %s", x->who, path,
				   strerror(errno));
			goto out;
		}
		/* the first FILE_START bytes are not part of the payload */
		skip = o->size + FILE_START - left;
		skip = skip < FILE_START ? FILE_START - skip : 0;
		if (skip < n && hash_update(x, h, buf + skip, n - skip) < 0)
			goto out;
		left -= n;
	}
	pos = lseek(fd, o->offset_null ? FILE_START : (off_t)o->file_pos,
		    SEEK_SET);
	if (pos < 0) {
		ret = fail("%s: lseek: %s", x->who, strerror(errno));
		goto out;
	}
	x->file_fd = fd;
	ret = 0;
 out:
	gnutls_hash_deinit(h, x->res.hash);
 out_noh:
	free(buf);
	if (ret < 0)
		close(fd);
	return ret;
}

static int send_buf(struct xfer *x, const uint8_t *buf, size_t len)
{
	ssize_t ret;

	while (len > 0) {
		ret = gnutls_record_send(x->session, buf, len);
		if (is_retry(ret))
			continue;
		if (ret <= 0 || (size_t) ret > len)
			return xfail(x, "gnutls_record_send", ret);
		buf += ret;
		len -= ret;
		x->res.bytes += ret;
	}
	return 0;
}

static int send_mem(struct xfer *x)
{
	const struct opts *o = x->o;
	uint64_t left = o->size, state = x->seed;
	gnutls_hash_hd_t h;
	uint8_t *buf;
	size_t n;
	int ret = -1;

	buf = malloc(o->chunk);
	if (buf == NULL)
		return fail("%s: out of memory", x->who);
	if (hash_init(x, &h) < 0)
		goto out_noh;
	while (left > 0) {
		n = left < o->chunk ? left : o->chunk;
		fill_random(buf, n, &state);
		if (hash_update(x, h, buf, n) < 0 || send_buf(x, buf, n) < 0)
			goto out;
		left -= n;
	}
	ret = 0;
 out:
	gnutls_hash_deinit(h, x->res.hash);
 out_noh:
	free(buf);
	return ret;
}

/* The position gnutls_record_send_file() must advance: the file position
 * with offset == NULL, else *offset (then the file position must stay). */
static off_t file_pos(int fd)
{
	return lseek(fd, 0, SEEK_CUR);
}

static int send_file(struct xfer *x)
{
	const struct opts *o = x->o;
	uint64_t left = o->size;
	off_t off = FILE_START, before, after, fpos = file_pos(x->file_fd);
	off_t *poff = o->offset_null ? NULL : &off;
	size_t n;
	ssize_t ret;

	while (left > 0) {
		n = left < o->chunk ? left : o->chunk;
		before = poff ? off : file_pos(x->file_fd);
		ret = gnutls_record_send_file(x->session, x->file_fd, poff, n);
		after = poff ? off : file_pos(x->file_fd);
		if (is_retry(ret))
			ret = 0;
		else if (ret <= 0 || (size_t) ret > n)
			return xfail(x, "gnutls_record_send_file", ret);
		if (after - before != ret)
			return fail("%s %s: send_file %s advanced by %lld, "
				    "returned %zd", x->who, x->dir,
				    poff ? "offset" : "file position",
				    (long long)(after - before), ret);
		if (poff && file_pos(x->file_fd) != fpos)
			return fail("%s %s: send_file with offset moved the "
				    "file position from %lld to %lld", x->who,
				    x->dir, (long long)fpos,
				    (long long)file_pos(x->file_fd));
		left -= ret;
		x->res.bytes += ret;
	}
	return 0;
}

static int send_bye(struct xfer *x)
{
	int ret;

	do {
		ret = gnutls_bye(x->session, GNUTLS_SHUT_WR);
	} while (is_retry(ret));
	return ret < 0 ? xfail(x, "gnutls_bye", ret) : 0;
}

static int xfer_send(struct xfer *x)
{
	int ret;

	ret = x->file_fd >= 0 ? send_file(x) : send_mem(x);
	if (ret < 0)
		return ret;
	return send_bye(x);
}

static int xfer_recv(struct xfer *x)
{
	gnutls_hash_hd_t h;
	size_t len = x->o->chunk;
	uint8_t *buf;
	ssize_t ret;

	buf = malloc(len);
	if (buf == NULL)
		return fail("%s: out of memory", x->who);
	if (hash_init(x, &h) < 0) {
		free(buf);
		return -1;
	}
	for (;;) {
		ret = gnutls_record_recv(x->session, buf, len);
		if (ret == 0)
			break;	/* close_notify */
		if (is_retry(ret))
			continue;
		if (ret < 0) {
			ret = xfail(x, "gnutls_record_recv (waiting for data "
				    "and close_notify)", ret);
			break;
		}
		if (hash_update(x, h, buf, ret) < 0) {
			ret = -1;
			break;
		}
		x->res.bytes += ret;
	}
	gnutls_hash_deinit(h, x->res.hash);
	free(buf);
	return ret < 0 ? -1 : 0;
}

/* Shut the socket down after a failure so that the other thread and the
 * peer see an error instead of waiting for data that will never come. */
static int xfer_abort(const struct xfer *x)
{
	shutdown(x->sock, SHUT_RDWR);
	return -1;
}

static void *send_thread(void *arg)
{
	struct xfer *x = arg;

	x->ret = xfer_send(x);
	if (x->ret < 0)
		xfer_abort(x);
	return NULL;
}

/* Run the sending and/or receiving half; both at once in two threads. */
static int run_xfers(struct xfer *tx, struct xfer *rx)
{
	pthread_t th;
	int ret;

	if (tx && rx) {
		ret = pthread_create(&th, NULL, send_thread, tx);
		if (ret != 0)
			return fail("%s: pthread_create: %s", tx->who,
				    strerror(ret));
		rx->ret = xfer_recv(rx);
		if (rx->ret < 0)
			xfer_abort(rx);
		ret = pthread_join(th, NULL);
		if (ret != 0)
			return fail("%s: pthread_join: %s", tx->who,
				    strerror(ret));
	} else if (tx) {
		tx->ret = xfer_send(tx);
	} else if (rx) {
		rx->ret = xfer_recv(rx);
	}
	return (tx && tx->ret < 0) || (rx && rx->ret < 0) ? -1 : 0;
}

static void xfer_init(struct xfer *x, enum role role, unsigned dir,
		      const struct opts *o)
{
	memset(x, 0, sizeof(*x));
	x->o = o;
	x->who = role_name[role];
	x->dir = dir == DIR_C2S ? "c2s" : "s2c";
	x->seed = dir == DIR_C2S ? UINT64_C(0x9e3779b97f4a7c15) :
	    UINT64_C(0xd1b54a32d192ed03);
	x->file_fd = -1;
}

/* Handshake, check nothing yet (the client compares), transfer. */
static int run_side(enum role role, int fd,
		    gnutls_certificate_credentials_t cred,
		    const struct opts *o, struct side_result *res)
{
	unsigned tx_dir = role == CLIENT ? DIR_C2S : DIR_S2C;
	unsigned rx_dir = role == CLIENT ? DIR_S2C : DIR_C2S;
	struct xfer tx, rx;
	struct rusage ru0, ru1;
	gnutls_session_t s = NULL;
	int sending = o->dirs & tx_dir, receiving = o->dirs & rx_dir;
	int ret;

	memset(res, 0, sizeof(*res));
	xfer_init(&tx, role, tx_dir, o);
	xfer_init(&rx, role, rx_dir, o);
	if (sending && o->use_sendfile && file_prepare(&tx) < 0)
		return -1;

	ret = session_open(&s, role, fd, cred, o);
	if (ret < 0)
		goto out;
	res->handshake_done = 1;
	res->flags = gnutls_transport_is_ktls_enabled(s);
	res->version = gnutls_protocol_get_version(s);
	res->cipher = gnutls_cipher_get(s);
	tx.session = rx.session = s;
	tx.sock = rx.sock = fd;

	if (getrusage(RUSAGE_SELF, &ru0) < 0) {
		ret = fail("getrusage: %s", strerror(errno));
		goto out;
	}
	res->start = now();
	ret = run_xfers(sending ? &tx : NULL, receiving ? &rx : NULL);
	res->end = now();
	if (getrusage(RUSAGE_SELF, &ru1) < 0) {
		ret = fail("getrusage: %s", strerror(errno));
		goto out;
	}
	res->user = tv_sec(&ru1.ru_utime) - tv_sec(&ru0.ru_utime);
	res->sys = tv_sec(&ru1.ru_stime) - tv_sec(&ru0.ru_stime);
	res->sent = tx.res;
	res->received = rx.res;
 out:
	if (s)
		gnutls_deinit(s);
	if (tx.file_fd >= 0)
		close(tx.file_fd);
	res->ok = ret == 0;
	return ret;
}

/* ---- processes and sockets ---- */

static int listen_socket(int *pfd, struct sockaddr_in *addr)
{
	socklen_t len = sizeof(*addr);
	int fd;

	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return fail("socket: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)addr, sizeof(*addr)) < 0 ||
	    listen(fd, 1) < 0 ||
	    getsockname(fd, (struct sockaddr *)addr, &len) < 0) {
		close(fd);
		return fail("bind/listen on 127.0.0.1: %s", strerror(errno));
	}
	*pfd = fd;
	return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t ret;

	while (len > 0) {
		ret = write(fd, p, len);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret <= 0)
			return -1;
		p += ret;
		len -= ret;
	}
	return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	ssize_t ret;

	while (len > 0) {
		ret = read(fd, p, len);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret <= 0)
			return -1;
		p += ret;
		len -= ret;
	}
	return 0;
}

/* Child: accept one connection, serve it, report through the pipe. */
static int server_main(int lfd, int report_fd,
		       gnutls_certificate_credentials_t cred,
		       const struct opts *o)
{
	struct side_result res;
	int fd, ret;

	memset(&res, 0, sizeof(res));
	fd = accept(lfd, NULL, NULL);
	close(lfd);
	if (fd < 0)
		return fail("server: accept: %s", strerror(errno));
	ret = run_side(SERVER, fd, cred, o, &res);
	close(fd);
	if (write_all(report_fd, &res, sizeof(res)) < 0)
		ret = fail("server: writing results: %s", strerror(errno));
	return ret;
}

static int client_connect(const struct sockaddr_in *addr)
{
	int fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return fail("socket: %s", strerror(errno));
	if (connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0) {
		close(fd);
		return fail("connect: %s", strerror(errno));
	}
	return fd;
}

/* Parent: connect and run the client, then collect the server's report. */
static int client_main(pid_t child, const struct sockaddr_in *addr,
		       int report_fd, gnutls_certificate_credentials_t cred,
		       const struct opts *o, struct side_result *c,
		       struct side_result *s)
{
	int fd, ret = 0, status;

	memset(c, 0, sizeof(*c));
	memset(s, 0, sizeof(*s));
	fd = client_connect(addr);
	if (fd < 0) {
		kill(child, SIGTERM);
		ret = -1;
	} else {
		ret = run_side(CLIENT, fd, cred, o, c);
		close(fd);	/* unblocks the server if we failed */
	}
	if (read_all(report_fd, s, sizeof(*s)) < 0) {
		memset(s, 0, sizeof(*s));
		ret = fail("server: no results (server process failed)");
	}
	if (waitpid(child, &status, 0) < 0)
		return fail("waitpid: %s", strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (WIFSIGNALED(status))
			fail("server process killed by signal %d",
			     WTERMSIG(status));
		else
			fail("server process exited with status %d",
			     WEXITSTATUS(status));
		ret = -1;
	}
	return ret;
}

/* ---- result checks ---- */

static int check_side(const char *who, const struct side_result *r,
		      const struct opts *o)
{
	int ret = 0;

	if (!r->handshake_done)
		return -1;
	if (r->flags != o->expect)
		ret = fail("ktls flags %s=%u expected=%u", who, r->flags,
			   o->expect);
	if (o->version_set && r->version != (int)o->version)
		ret = fail("version %s=%s expected=%s", who,
			   gnutls_protocol_get_name(r->version),
			   gnutls_protocol_get_name(o->version));
	if (o->cipher_set && r->cipher != (int)o->cipher->algo)
		ret = fail("cipher %s=%s expected=%s", who,
			   gnutls_cipher_get_name(r->cipher),
			   gnutls_cipher_get_name(o->cipher->algo));
	return ret;
}

static int check_dir(const char *dir, const struct dir_result *sent,
		     const struct dir_result *recvd, const struct opts *o)
{
	int ret = 0;

	if (sent->bytes != o->size)
		ret = fail("byte count %s sent=%" PRIu64 " expected=%" PRIu64,
			   dir, sent->bytes, o->size);
	if (recvd->bytes != sent->bytes)
		ret = fail("byte count %s received=%" PRIu64 " sent=%" PRIu64,
			   dir, recvd->bytes, sent->bytes);
	if (memcmp(sent->hash, recvd->hash, HASH_LEN) != 0)
		ret = fail("hash mismatch %s", dir);
	return ret;
}

static int check_results(const struct opts *o, const struct side_result *c,
			 const struct side_result *s)
{
	int ret = 0;

	if (check_side("client", c, o) < 0)
		ret = -1;
	if (check_side("server", s, o) < 0)
		ret = -1;
	if (!c->ok || !s->ok)
		return -1;	/* the failing side said why */
	if ((o->dirs & DIR_C2S) &&
	    check_dir("c2s", &c->sent, &s->received, o) < 0)
		ret = -1;
	if ((o->dirs & DIR_S2C) &&
	    check_dir("s2c", &s->sent, &c->received, o) < 0)
		ret = -1;
	return ret;
}

/* ---- reporting ---- */

static const char *dir_name(unsigned dirs)
{
	return dirs == DIR_C2S ? "c2s" : dirs == DIR_S2C ? "s2c" : "both";
}

static void format_size(char *buf, size_t len, uint64_t size)
{
	if (size != 0 && size % (1 << 20) == 0)
		snprintf(buf, len, "%" PRIu64 "MiB", size >> 20);
	else if (size != 0 && size % (1 << 10) == 0)
		snprintf(buf, len, "%" PRIu64 "KiB", size >> 10);
	else
		snprintf(buf, len, "%" PRIu64 "B", size);
}

static void lowercase(char *dst, size_t len, const char *src)
{
	size_t i;

	for (i = 0; i + 1 < len && src && src[i]; i++)
		dst[i] = src[i] >= 'A' && src[i] <= 'Z' ? src[i] - 'A' + 'a' :
		    src[i];
	dst[i] = '\0';
}

static void report(const struct opts *o, const struct side_result *c,
		   const struct side_result *s, const struct tls_stat *d)
{
	double start = c->start < s->start ? c->start : s->start;
	double end = c->end > s->end ? c->end : s->end;
	double wall = end - start;
	uint64_t bytes = o->size * (o->dirs == (DIR_C2S | DIR_S2C) ? 2 : 1);
	double mbps = wall > 0 ? bytes / wall / 1e6 : 0;
	const char *mode = o->use_sendfile ?
	    (o->offset_null ? "sendfile-null" : "sendfile-ptr") : "send";
	char size[32], cipher[64];

	if (o->json) {
		printf("{\"ok\":true,\"version\":\"%s\",\"cipher\":\"%s\","
		       "\"mode\":\"%s\",\"dir\":\"%s\",\"size\":%" PRIu64 ","
		       "\"chunk\":%zu,\"bytes\":%" PRIu64 ",\"wall_s\":%.6f,"
		       "\"mbps\":%.2f,\"expect\":%u,"
		       "\"client\":{\"ktls\":%u,\"user_s\":%.6f,"
		       "\"sys_s\":%.6f},"
		       "\"server\":{\"ktls\":%u,\"user_s\":%.6f,"
		       "\"sys_s\":%.6f}",
		       gnutls_protocol_get_name(c->version),
		       gnutls_cipher_get_name(c->cipher), mode,
		       dir_name(o->dirs), o->size, o->chunk, bytes, wall,
		       mbps, o->expect, c->flags, c->user, c->sys, s->flags,
		       s->user, s->sys);
		if (o->check_stat)
			printf(",\"tls_stat\":{\"present\":%s,\"tx_sw\":%llu,"
			       "\"rx_sw\":%llu,\"tx_device\":%llu,"
			       "\"rx_device\":%llu,\"decrypt_error\":%llu}",
			       d->present ? "true" : "false", d->tx_sw,
			       d->rx_sw, d->tx_dev, d->rx_dev,
			       d->decrypt_err);
		printf("}\n");
	}
	if (o->quiet)
		return;
	format_size(size, sizeof(size), o->size);
	lowercase(cipher, sizeof(cipher), gnutls_cipher_get_name(c->cipher));
	printf("ok: %s %s %s %s %s flags c=%u s=%u %.3fs %.1f MB/s "
	       "cpu c=%.2fu+%.2fs s=%.2fu+%.2fs\n",
	       c->version == GNUTLS_TLS1_2 ? "tls1.2" :
	       c->version == GNUTLS_TLS1_3 ? "tls1.3" :
	       gnutls_protocol_get_name(c->version),
	       cipher, mode, dir_name(o->dirs),
	       size, c->flags, s->flags, wall, mbps, c->user, c->sys,
	       s->user, s->sys);
}

/* ---- main ---- */

static void on_alarm(int sig)
{
	static const char msg[] = "FAIL: timeout (see --timeout)\n";

	(void)sig;
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(EXIT_FAIL);
	_exit(EXIT_FAIL);
}

static int run(const struct opts *o)
{
	gnutls_certificate_credentials_t scred, ccred;
	struct side_result c, s;
	struct tls_stat st0, st1, delta;
	struct sockaddr_in addr;
	int lfd = -1, pfd[2], ret;
	pid_t pid;

	memset(&delta, 0, sizeof(delta));
	if (o->check_stat && read_tls_stat(&st0) < 0)
		return -1;
	if (make_creds(&scred, &ccred) < 0)
		goto out_creds;
	if (listen_socket(&lfd, &addr) < 0)
		goto out_creds;
	if (pipe(pfd) < 0) {
		fail("pipe: %s", strerror(errno));
		close(lfd);
		goto out_creds;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		fail("fork: %s", strerror(errno));
		close(lfd);
		close(pfd[0]);
		close(pfd[1]);
		goto out_creds;
	}
	if (pid == 0) {
		alarm(o->timeout);
		close(pfd[0]);
		ret = server_main(lfd, pfd[1], scred, o);
		close(pfd[1]);
		gnutls_certificate_free_credentials(scred);
		gnutls_certificate_free_credentials(ccred);
		exit(ret < 0 ? EXIT_FAIL : 0);
	}
	close(lfd);
	close(pfd[1]);
	ret = client_main(pid, &addr, pfd[0], ccred, o, &c, &s);
	close(pfd[0]);
	gnutls_certificate_free_credentials(scred);
	gnutls_certificate_free_credentials(ccred);

	if (check_results(o, &c, &s) < 0)
		ret = -1;
	if (o->check_stat) {
		if (read_tls_stat(&st1) < 0)
			return -1;
		tls_stat_delta(&st0, &st1, &delta);
		if (check_tls_stat(o, &delta) < 0)
			ret = -1;
	}
	if (ret == 0)
		report(o, &c, &s, &delta);
	return ret;

 out_creds:
	if (scred)
		gnutls_certificate_free_credentials(scred);
	if (ccred)
		gnutls_certificate_free_credentials(ccred);
	return -1;
}

int main(int argc, char **argv)
{
	struct opts o;

	if (parse_opts(&o, argc, argv) < 0)
		return EXIT_USAGE;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_alarm);
	alarm(o.timeout);
	return run(&o) < 0 ? EXIT_FAIL : 0;
}
