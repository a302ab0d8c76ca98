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
 * The payload of each direction is a deterministic stream (xorshift64*,
 * one seed per direction, independent of --chunk and --mode), so that a
 * side running alone (--role server|client) checks what it received
 * against the stream it regenerates itself: no hash exchange is needed
 * between two separate ktls-xfer processes, which may even use different
 * libgnutls builds.  With --peer-raw the peer is another program
 * (openssl s_server/s_client, fed with --gen-file): the side prints the
 * sha256 of what it sent and received and checks --expect-sha256.
 *
 * --nonblock makes both sockets non-blocking: every call then loops on
 * GNUTLS_E_AGAIN with poll(); the partial sends and AGAINs are counted.
 * Without it a GNUTLS_E_AGAIN is a failure.  --transport selects how the
 * socket is given to GnuTLS (custom push/pull functions disable KTLS).
 * --resume runs a second connection resumed from a session ticket; both
 * directions are then closed with close_notify so that a TLS 1.3 client
 * always reads (and processes) the NewSessionTicket.  --key-update N makes
 * the senders update their TLS 1.3 keys every N bytes, at most one update
 * per --ku-pace ms (GnuTLS refuses more than 8 KeyUpdates per second from
 * a peer).
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
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
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

#include "ktls-common.h"

#define TLS_STAT_FILE "/proc/net/tls_stat"

/* Bytes of random data in the sendfile source file before the payload;
 * deliberately not page aligned. */
#define FILE_START 12345

#ifndef MIN
# define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif

#define DIR_C2S 1
#define DIR_S2C 2

/* The payload stream of each direction. */

#define GEN_BUF (64 << 10)

#define EXIT_FAIL 1
#define EXIT_USAGE 2

/* An error already reported with kt_fail(): not a GnuTLS error code. */
#define E_REPORTED (-999999)

/* How long a client keeps retrying a refused connect (--role client). */
#define CONNECT_RETRY_S 10

enum role { CLIENT, SERVER };
static const char *const role_name[] = { "client", "server" };

/* --role, --transport, --expect-ku: indexes into the choice lists */
enum { ROLE_BOTH, ROLE_SERVER, ROLE_CLIENT };
enum { T_INT, T_INT2, T_PTR, T_CUSTOM };
enum { KU_OK, KU_ERROR };

static const char *const mode_choices[] = { "send", "sendfile", NULL };
/* --recv-mode: gnutls_record_recv, or _recv_file into a file or a pipe */
enum { RM_RECV, RM_FILE, RM_PIPE };
static const char *const recv_mode_choices[] = {
	"recv", "file", "pipe", NULL
};
static const char *const offset_choices[] = { "ptr", "null", NULL };
static const char *const dir_choices[] = { "c2s", "s2c", "both", NULL };
/* index == gnutls_transport_ktls_enable_flags_t */
static const char *const expect_choices[] = {
	"none", "recv", "send", "duplex", NULL
};
/* index - 1 == the client's flags when the transfer ended */
static const char *const expect_end_choices[] = {
	"same", "none", "recv", "send", "duplex", NULL
};
static const char *const transport_choices[] = {
	"int", "int2", "ptr", "custom", NULL
};
static const char *const role_choices[] = {
	"both", "server", "client", NULL
};
static const char *const ku_choices[] = { "ok", "error", NULL };

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
#define N_OPTDEFS 37

struct opts {
	/* set by the option table */
	int tls12, tls13;
	const char *prio;
	int use_sendfile;
	int offset_null;
	uint64_t file_pos;
	int dir_idx;
	uint64_t size;
	uint64_t chunk;
	int expect;		/* gnutls_transport_ktls_enable_flags_t */
	int expect_end;		/* 0: = expect; else 1 + the client's flags */
	int check_stat;
	int quiet;
	int json;
	uint64_t timeout;
	int nonblock;
	uint64_t sndbuf;
	int expect_partial;
	int transport;
	int resume;
	int role;
	uint64_t port;
	int peer_raw;
	const char *expect_sha256;
	const char *gen_file;
	uint64_t ku_every;
	int ku_peer;
	int expect_ku;
	uint64_t ku_pace;
	int recv_mode;
	int recv_offset_null;
	const char *recv_dir;
	int expect_file_error;
	int recv_append;
	int flag_ktls;
	/* derived */
	unsigned char seen[N_OPTDEFS];
	gnutls_protocol_t version;
	int version_set;
	const struct cipher_desc *cipher;
	int cipher_set;
	unsigned dirs;
	unsigned conns;		/* connections: 2 with --resume */
	unsigned char expect_hash[KT_HASH_LEN];
	char prio_buf[256];
	const char *tmpdir;
};

/* What one side saw in one direction. */
struct dir_result {
	uint64_t bytes;
	unsigned char hash[KT_HASH_LEN];
};

/* Counters of one direction of one side. */
struct xstats {
	uint64_t partial;	/* sends that took 0 < n < asked bytes */
	uint64_t again;		/* GNUTLS_E_AGAIN results */
	uint64_t ku_ok;		/* gnutls_session_key_update() successes */
	uint64_t ku_fail;	/* ... and failures */
	int ku_err;		/* the last failure */
	uint64_t ph_msgs;	/* TLS 1.3 tickets and KeyUpdates received */
	uint64_t file_err;	/* gnutls_record_recv_file: GNUTLS_E_FILE_ERROR */
};

/* Everything one side reports; the server sends it through a pipe. */
struct side_result {
	int ok;			/* no local check failed */
	int handshake_done;
	unsigned flags;		/* gnutls_transport_is_ktls_enabled() */
	unsigned end_flags;	/* ... when the transfer has ended */
	int version;
	int cipher;
	int resumed;
	uint64_t hs_again;	/* GNUTLS_E_AGAIN during the handshake */
	struct xstats tx, rx;
	struct dir_result sent;
	struct dir_result received;
	double start;		/* CLOCK_MONOTONIC, system wide */
	double end;
	double user;		/* CPU seconds during the transfer */
	double sys;
};

/* The counters printed and put in the JSON output, per side. */
static const struct {
	const char *name;
	size_t off;
} counters[] = {
	{ "partial_sends", offsetof(struct side_result, tx.partial) },
	{ "again_send", offsetof(struct side_result, tx.again) },
	{ "again_recv", offsetof(struct side_result, rx.again) },
	{ "again_handshake", offsetof(struct side_result, hs_again) },
	{ "ku_ok", offsetof(struct side_result, tx.ku_ok) },
	{ "ku_fail", offsetof(struct side_result, tx.ku_fail) },
	{ "posthandshake_msgs", offsetof(struct side_result, rx.ph_msgs) },
};

#define N_COUNTERS (sizeof(counters) / sizeof(counters[0]))

static uint64_t counter(const struct side_result *r, size_t i)
{
	uint64_t v;

	memcpy(&v, (const char *)r + counters[i].off, sizeof(v));
	return v;
}

/* One direction of the transfer (or the handshake), as seen by one side. */
struct xfer {
	gnutls_session_t session;
	const struct opts *o;
	const char *who;	/* "client" / "server" */
	const char *dir;	/* "c2s" / "s2c" / "handshake" */
	uint64_t seed;
	uint64_t size;		/* bytes to send; to receive with --peer-raw */
	int file_fd;		/* sendfile source, or -1 */
	int sock;		/* the TCP socket, to poll and abort */
	int threaded;		/* the other direction runs concurrently */
	int bye_after;		/* receiver sends close_notify when done */
	const uint64_t *ph_count;	/* post-handshake messages received */
	uint64_t ph_seen;	/* ... as of the last retry() */
	uint64_t ku_pos;	/* where the last key update was done */
	double ku_time;		/* and when */
	struct dir_result res;
	struct xstats st;
	int ret;
};

/* One connection's parameters besides the options. */
struct conn {
	unsigned index;			/* 1: the resumed connection */
	const gnutls_datum_t *ticket_key;	/* server with --resume */
	gnutls_datum_t *sdata;		/* client with --resume */
};

struct tls_stat {
	int present;
	unsigned long long tx_sw, rx_sw, tx_dev, rx_dev, decrypt_err;
};

static double tv_sec(const struct timeval *tv)
{
	return tv->tv_sec + tv->tv_usec / 1e6;
}

/* ---- the deterministic payload stream ---- */

static uint64_t dir_seed(unsigned dir)
{
	return dir == DIR_C2S ? KT_SEED_C2S : KT_SEED_S2C;
}

/* ---- option parsing ---- */

enum okind { O_FLAG, O_SIZE, O_CHOICE, O_STR, O_CIPHER, O_HELP };

struct optdef {
	const char *name;
	enum okind kind;
	size_t off;		/* the field in struct opts */
	const char *const *choices;	/* O_CHOICE: index stored as int */
	uint64_t min, max;	/* O_SIZE */
	const char *arg;	/* for --help */
	const char *help;
};

#define OPT(name, kind, field, choices, min, max, arg, help) \
	{ name, kind, offsetof(struct opts, field), choices, min, max, \
	  arg, help }
#define FLAG(name, field, help) OPT(name, O_FLAG, field, NULL, 0, 0, "", help)
#define SIZE(name, field, min, max, arg, help) \
	OPT(name, O_SIZE, field, NULL, min, max, arg, help)
#define CHOICE(name, field, choices, help) \
	OPT(name, O_CHOICE, field, choices, 0, 0, NULL, help)
#define STR(name, field, arg, help) \
	OPT(name, O_STR, field, NULL, 0, 0, arg, help)
#define BIG (UINT64_C(1) << 62)

static const struct optdef optdefs[N_OPTDEFS] = {
	FLAG("tls12", tls12, "TLS 1.2"),
	FLAG("tls13", tls13, "TLS 1.3 (default)"),
	OPT("cipher", O_CIPHER, cipher, NULL, 0, 0, "NAME",
	    "aes-128-gcm (default), aes-256-gcm,\n"
	    "aes-128-ccm, chacha20-poly1305"),
	STR("prio", prio, "STRING", "priority string override"),
	CHOICE("mode", use_sendfile, mode_choices,
	       "gnutls_record_send or _send_file"),
	CHOICE("offset", offset_null, offset_choices,
	       "send_file offset argument (default ptr)"),
	SIZE("file-pos", file_pos, 0, BIG, "BYTES",
	     "with --offset ptr: file position to\n"
	     "set beforehand, which must not be\n"
	     "used nor moved (default 0)"),
	CHOICE("dir", dir_idx, dir_choices, "who sends (default c2s)"),
	SIZE("size", size, 0, BIG, "BYTES[K|M|G]",
	     "bytes per direction (default 64M)"),
	SIZE("chunk", chunk, 1, 1 << 30, "BYTES[K|M|G]",
	     "bytes per send call (default 64K)"),
	CHOICE("expect", expect, expect_choices,
	       "required KTLS state on both sides\n(default none)"),
	CHOICE("expect-end", expect_end, expect_end_choices,
	       "the client's KTLS state when the\n"
	       "transfer has ended, the server's its\n"
	       "mirror image (ktls = auto moves\n"
	       "directions; default same: --expect)"),
	FLAG("check-stat", check_stat, "check " TLS_STAT_FILE " deltas"),
	SIZE("timeout", timeout, 0, 86400, "SECONDS",
	     "abort after this long (default 600)"),
	FLAG("quiet", quiet, "only print failures"),
	FLAG("json", json, "print one JSON result line per connection"),
	FLAG("nonblock", nonblock,
	     "non-blocking sockets, poll() on GNUTLS_E_AGAIN"),
	SIZE("sndbuf", sndbuf, 0, 1 << 30, "BYTES",
	     "SO_SNDBUF of the sockets; small values\n"
	     "make KTLS accept only part of a write"),
	FLAG("expect-partial", expect_partial,
	     "fail unless a send took only part of\nits buffer (receivers wait 300 ms\n"
	     "before their first read)"),
	CHOICE("transport", transport, transport_choices,
	       "gnutls_transport_set_int (default),\n"
	       "_set_int2 (with a dup()ed write fd),\n"
	       "_set_ptr, or own push/pull functions"),
	FLAG("resume", resume,
	     "server issues tickets; a second\n"
	     "connection resumes the first"),
	CHOICE("role", role, role_choices,
	       "both: fork both sides (default);\n"
	       "server/client: one side, on --port"),
	SIZE("port", port, 0, 65535, "N", "127.0.0.1 port of --role server|client"),
	FLAG("peer-raw", peer_raw,
	     "the peer is not ktls-xfer: receive\n"
	     "--size bytes, print sha256 of the data"),
	STR("expect-sha256", expect_sha256, "HEX",
	    "with --peer-raw: hash of the data to\nreceive"),
	STR("gen-file", gen_file, "PATH",
	    "only write the --size bytes the --dir\n"
	    "(c2s or s2c) side sends to PATH"),
	SIZE("key-update", ku_every, 1, BIG, "BYTES[K|M|G]",
	     "senders call gnutls_session_key_update\nevery BYTES sent"),
	FLAG("key-update-peer", ku_peer, "... with GNUTLS_KU_PEER"),
	CHOICE("expect-ku", expect_ku, ku_choices,
	       "ok: key updates work (default);\n"
	       "error: they fail with\n"
	       "GNUTLS_E_UNIMPLEMENTED_FEATURE and\n"
	       "the session stays usable"),
	SIZE("ku-pace", ku_pace, 0, 60000, "MS",
	     "min. time between key updates (300)"),
	CHOICE("recv-mode", recv_mode, recv_mode_choices,
	       "receive with gnutls_record_recv\n"
	       "(default), or gnutls_record_recv_file\n"
	       "into a file or a pipe"),
	CHOICE("recv-offset", recv_offset_null, offset_choices,
	       "--recv-mode file: offset argument\n"
	       "(default ptr; the file position must\n"
	       "stay) or NULL (it must advance)"),
	STR("recv-dir", recv_dir, "DIR",
	    "--recv-mode file: where the file is\n(default $TMPDIR)"),
	FLAG("flag-ktls", flag_ktls,
	     "both sides: gnutls_init() with\nGNUTLS_ENABLE_KTLS"),
	FLAG("recv-append", recv_append,
	     "--recv-mode file --recv-offset null:\n"
	     "the file is opened O_APPEND (which\n"
	     "splice(2) refuses)"),
	FLAG("expect-file-error", expect_file_error,
	     "--recv-mode file: require\n"
	     "GNUTLS_E_FILE_ERROR with ENOSPC (a full\n"
	     "--recv-dir), then receive the rest with\n"
	     "gnutls_record_recv: no byte may be lost"),
	OPT("help", O_HELP, quiet, NULL, 0, 0, "", "this help"),
};

static void usage(FILE *out)
{
	const struct optdef *d;
	const char *const *c;
	const char *h;
	char head[64];
	size_t n;

	fprintf(out, "usage: ktls-xfer [options]\n");
	for (d = optdefs; d < optdefs + N_OPTDEFS; d++) {
		n = snprintf(head, sizeof(head), "  --%s", d->name);
		if (d->choices)
			for (c = d->choices; *c && n < sizeof(head); c++)
				n += snprintf(head + n, sizeof(head) - n,
					      "%c%s", c == d->choices ?
					      ' ' : '|', *c);
		else if (*d->arg)
			snprintf(head + n, sizeof(head) - n, " %s", d->arg);
		fprintf(out, "%-28s", head);
		if (strlen(head) >= 27)
			fprintf(out, "\n%28s", "");
		for (h = d->help; *h; h++)
			if (*h == '\n')
				fprintf(out, "\n%28s", "");
			else
				fputc(*h, out);
		fputc('\n', out);
	}
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

static int parse_one(struct opts *o, const struct optdef *d, const char *arg)
{
	void *field = (char *)o + d->off;
	const char *const *c;
	uint64_t v;

	switch (d->kind) {
	case O_FLAG:
		*(int *)field = 1;
		return 0;
	case O_SIZE:
		if (parse_size(arg, &v) < 0 || v < d->min || v > d->max)
			return bad_arg(d->name, arg);
		*(uint64_t *)field = v;
		return 0;
	case O_CHOICE:
		for (c = d->choices; *c; c++)
			if (strcmp(*c, arg) == 0) {
				*(int *)field = c - d->choices;
				return 0;
			}
		return bad_arg(d->name, arg);
	case O_STR:
		*(const char **)field = arg;
		return 0;
	case O_CIPHER:
		o->cipher = find_cipher(arg);
		return o->cipher ? 0 : bad_arg(d->name, arg);
	case O_HELP:
		usage(stdout);
		exit(0);
	}
	return -1;
}

static int parse_hash(const char *s, unsigned char *out)
{
	unsigned i, v;

	if (strlen(s) != 2 * KT_HASH_LEN)
		return -1;
	for (i = 0; i < KT_HASH_LEN; i++) {
		if (sscanf(s + 2 * i, "%2x", &v) != 1 ||
		    !strchr("0123456789abcdefABCDEF", s[2 * i]) ||
		    !strchr("0123456789abcdefABCDEF", s[2 * i + 1]))
			return -1;
		out[i] = v;
	}
	return 0;
}

#define SEEN(o, field) opt_seen(o, offsetof(struct opts, field))

static int opt_seen(const struct opts *o, size_t off)
{
	size_t i;

	for (i = 0; i < N_OPTDEFS; i++)
		if (optdefs[i].off == off && o->seen[i])
			return 1;
	return 0;
}

static int usage_error(const char *msg)
{
	fprintf(stderr, "ktls-xfer: %s (see --help)\n", msg);
	return -1;
}

/* Combinations that make no sense. */
static int check_opts(struct opts *o)
{
	if (o->tls12 && o->tls13)
		return usage_error("--tls12 and --tls13 exclude each other");
	if ((o->role == ROLE_BOTH) == SEEN(o, port))
		return usage_error("--role server|client need --port, "
				   "--role both takes none");
	if (o->role == ROLE_CLIENT && o->port == 0)
		return usage_error("--role client needs a --port");
	if (o->peer_raw && o->role == ROLE_BOTH)
		return usage_error("--peer-raw needs --role server|client");
	if (o->peer_raw && o->resume)
		return usage_error("--peer-raw and --resume exclude each other");
	if (o->expect_sha256 && !o->peer_raw)
		return usage_error("--expect-sha256 goes with --peer-raw");
	if (o->expect_sha256 && parse_hash(o->expect_sha256,
					   o->expect_hash) < 0)
		return bad_arg("expect-sha256", o->expect_sha256);
	if ((SEEN(o, ku_peer) || SEEN(o, expect_ku) || SEEN(o, ku_pace)) &&
	    o->ku_every == 0)
		return usage_error("--key-update-peer, --expect-ku and "
				   "--ku-pace go with --key-update");
	if (o->recv_append && !o->recv_offset_null)
		return usage_error("--recv-append needs --recv-offset null");
	if ((SEEN(o, recv_offset_null) || o->recv_dir ||
	     o->expect_file_error) && o->recv_mode != RM_FILE)
		return usage_error("--recv-offset, --recv-dir and "
				   "--expect-file-error go with "
				   "--recv-mode file");
	if (o->gen_file && o->dirs == (DIR_C2S | DIR_S2C))
		return usage_error("--gen-file needs --dir c2s or s2c");
	return 0;
}

static int parse_opts(struct opts *o, int argc, char **argv)
{
	struct option lo[N_OPTDEFS + 1];
	size_t i;
	int c;

	memset(o, 0, sizeof(*o));
	memset(lo, 0, sizeof(lo));
	o->cipher = &ciphers[0];
	o->size = 64 << 20;
	o->chunk = 64 << 10;
	o->timeout = 600;
	o->ku_pace = 300;
	o->tmpdir = getenv("TMPDIR");
	if (o->tmpdir == NULL || *o->tmpdir == '\0')
		o->tmpdir = "/tmp";
	for (i = 0; i < N_OPTDEFS; i++) {
		lo[i].name = optdefs[i].name;
		lo[i].has_arg = optdefs[i].kind == O_FLAG ||
		    optdefs[i].kind == O_HELP ? no_argument :
		    required_argument;
		lo[i].val = 256 + i;
	}

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (c < 256 || c >= 256 + N_OPTDEFS) {
			usage(stderr);
			return -1;
		}
		o->seen[c - 256] = 1;
		if (parse_one(o, &optdefs[c - 256], optarg) < 0)
			return -1;
	}
	if (optind != argc) {
		fprintf(stderr, "ktls-xfer: unexpected argument '%s'\n",
			argv[optind]);
		return -1;
	}

	o->version = o->tls12 ? GNUTLS_TLS1_2 : GNUTLS_TLS1_3;
	o->version_set = o->tls12 || o->tls13;
	o->cipher_set = SEEN(o, cipher);
	o->dirs = o->dir_idx + 1;
	o->conns = o->resume ? 2 : 1;
	if (check_opts(o) < 0)
		return -1;

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
		return kt_fail("open %s: %s", TLS_STAT_FILE, strerror(errno));
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

/* The flags one side must report when the transfer has ended: the
 * client's --expect-end, the server's its mirror image. */
static unsigned end_expected(const struct opts *o, int server)
{
	unsigned f;

	if (o->expect_end == 0)
		return o->expect;
	f = o->expect_end - 1;
	if (server)
		f = ((f & GNUTLS_KTLS_RECV) ? GNUTLS_KTLS_SEND : 0) |
		    ((f & GNUTLS_KTLS_SEND) ? GNUTLS_KTLS_RECV : 0);
	return f;
}

/* How many of this process's endpoints end with direction dir offloaded. */
static int stat_contexts(const struct opts *o, unsigned dir)
{
	int n = 0;

	if (o->role != ROLE_SERVER && (end_expected(o, 0) & dir))
		n++;
	if (o->role != ROLE_CLIENT && (end_expected(o, 1) & dir))
		n++;
	return n;
}

static int check_one_stat(const char *what, unsigned long long delta,
			  int expected)
{
	if (expected && delta < (unsigned)expected)
		return kt_fail("tls_stat %s increased by %llu, expected >= %d",
			    what, delta, expected);
	if (!expected && delta != 0)
		return kt_fail("tls_stat %s increased by %llu, expected 0",
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
	if (!d->present && (stat_contexts(o, GNUTLS_KTLS_SEND) ||
			    stat_contexts(o, GNUTLS_KTLS_RECV)))
		return kt_fail("%s missing but KTLS expected", TLS_STAT_FILE);
	if (check_one_stat("TX (TlsTxSw+TlsTxDevice)", d->tx_sw + d->tx_dev,
			   stat_contexts(o, GNUTLS_KTLS_SEND)) < 0)
		ret = -1;
	if (check_one_stat("RX (TlsRxSw+TlsRxDevice)", d->rx_sw + d->rx_dev,
			   stat_contexts(o, GNUTLS_KTLS_RECV)) < 0)
		ret = -1;
	if (d->decrypt_err != 0)
		ret = kt_fail("tls_stat TlsDecryptError increased by %llu",
			   d->decrypt_err);
	return ret;
}

/* ---- credentials ---- */

#define CHECK KT_CHECK

/* ---- waiting on non-blocking sockets ---- */

static int xfail(const struct xfer *x, const char *what, long long ret)
{
	if (ret == E_REPORTED)
		return -1;
	if (ret < 0 && ret > INT32_MIN)
		return kt_fail("%s %s: %s: %s", x->who, x->dir, what,
			    gnutls_strerror((int)ret));
	return kt_fail("%s %s: %s: returned %lld", x->who, x->dir, what, ret);
}

/* Counts the TLS 1.3 post-handshake messages a session receives. */
static int ph_hook(gnutls_session_t s, unsigned htype, unsigned when,
		   unsigned incoming, const gnutls_datum_t *msg)
{
	uint64_t *n = gnutls_session_get_ptr(s);

	(void)when;
	(void)msg;
	if (incoming && (htype == GNUTLS_HANDSHAKE_NEW_SESSION_TICKET ||
			 htype == GNUTLS_HANDSHAKE_KEY_UPDATE))
		(*n)++;
	return 0;
}

/* After a call returned *ret: 1 to call again (with --nonblock once
 * poll() says the socket is ready), else 0.  GNUTLS_E_AGAIN on a blocking
 * socket, or a poll() failure, is reported and turns *ret into
 * E_REPORTED.  Except: gnutls_record_recv() returns GNUTLS_E_AGAIN, even
 * on blocking sockets, after it processed a TLS 1.3 post-handshake
 * message (NewSessionTicket, KeyUpdate); it is then called again at once
 * (what follows may be buffered already; polling could hang).  A thread
 * sharing the session with another one polls for its natural event:
 * gnutls_record_get_direction() is per session and the other thread
 * changes it. */
static int retry(struct xfer *x, ssize_t *ret, const char *what,
		 short natural)
{
	struct pollfd pfd;
	uint64_t ph = x->ph_count ? *x->ph_count : 0;
	int after_ph = natural == POLLIN && ph != x->ph_seen;

	x->ph_seen = ph;
	if (*ret == GNUTLS_E_INTERRUPTED || (*ret == GNUTLS_E_AGAIN &&
					     after_ph))
		return 1;
	if (*ret != GNUTLS_E_AGAIN)
		return 0;
	x->st.again++;
	if (!x->o->nonblock) {
		kt_fail("GNUTLS_E_AGAIN on a blocking socket (%s %s: %s)",
		     x->who, x->dir, what);
		*ret = E_REPORTED;
		return 0;
	}
	pfd.fd = x->sock;
	pfd.events = x->threaded ? natural :
	    gnutls_record_get_direction(x->session) ? POLLOUT : POLLIN;
	while (poll(&pfd, 1, -1) < 0)
		if (errno != EINTR) {
			kt_fail("%s %s: poll: %s", x->who, x->dir,
			     strerror(errno));
			*ret = E_REPORTED;
			return 0;
		}
	return 1;
}

/* ---- transports ---- */

/* Hands fd to the session as --transport says; *wfd gets the extra
 * descriptor of int2 (closed by the caller), else -1. */
static int set_transport(gnutls_session_t s, int fd, const struct opts *o,
			 int *wfd)
{
	*wfd = -1;
	switch (o->transport) {
	case T_INT:
		gnutls_transport_set_int(s, fd);
		break;
	case T_INT2:
		*wfd = dup(fd);
		if (*wfd < 0)
			return kt_fail("dup: %s", strerror(errno));
		gnutls_transport_set_int2(s, fd, *wfd);
		break;
	case T_CUSTOM:
		kt_set_user_transport(s, fd);
		break;
	case T_PTR:
		gnutls_transport_set_ptr(s, (gnutls_transport_ptr_t)(long)fd);
		break;
	}
	return 0;
}

/* ---- session ---- */

static int session_open(gnutls_session_t *ps, int *wfd, enum role role,
			int fd, gnutls_certificate_credentials_t cred,
			const struct opts *o, const struct conn *cn,
			uint64_t *ph_count, struct side_result *res)
{
	gnutls_session_t s = NULL;
	struct xfer hs;
	const char *err = NULL;
	ssize_t ret = -1;

	CHECK(gnutls_init(&s, (role == SERVER ? GNUTLS_SERVER : GNUTLS_CLIENT)
			  | (o->nonblock ? GNUTLS_NONBLOCK : 0)
			  | (o->flag_ktls ? GNUTLS_ENABLE_KTLS : 0)));
	ret = gnutls_priority_set_direct(s, o->prio, &err);
	if (ret < 0) {
		ret = kt_fail("%s: priority '%s' rejected at '%s': %s",
			   role_name[role], o->prio, err ? err : "",
			   gnutls_strerror(ret));
		goto out;
	}
	CHECK(gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred));
	if (role == CLIENT) {
		CHECK(gnutls_server_name_set(s, GNUTLS_NAME_DNS, KT_HOSTNAME,
					     strlen(KT_HOSTNAME)));
		/* alone, the client does not know the server's key */
		if (o->role == ROLE_BOTH)
			gnutls_session_set_verify_cert(s, KT_HOSTNAME, 0);
		if (cn->index > 0)
			CHECK(gnutls_session_set_data(s, cn->sdata->data,
						      cn->sdata->size));
	} else if (cn->ticket_key) {
		CHECK(gnutls_session_ticket_enable_server(s, cn->ticket_key));
	}
	gnutls_session_set_ptr(s, ph_count);
	gnutls_handshake_set_hook_function(s, GNUTLS_HANDSHAKE_ANY,
					   GNUTLS_HOOK_POST, ph_hook);
	if (set_transport(s, fd, o, wfd) < 0)
		goto out;
	/* GnuTLS's default (40 s), scaled: a peer under valgrind in a TCG
	 * guest starts slowly */
	gnutls_handshake_set_timeout(s, 40000 * kt_slow());

	memset(&hs, 0, sizeof(hs));
	hs.session = s;
	hs.o = o;
	hs.who = role_name[role];
	hs.dir = "handshake";
	hs.sock = fd;
	do
		ret = gnutls_handshake(s);
	while (retry(&hs, &ret, "gnutls_handshake", 0) ||
	       (ret < 0 && ret != E_REPORTED && !gnutls_error_is_fatal(ret)));
	res->hs_again = hs.st.again;
	if (ret < 0) {
		ret = xfail(&hs, "gnutls_handshake", ret);
		goto out;
	}
	res->resumed = gnutls_session_is_resumed(s) != 0;
	if (cn->index > 0 && !res->resumed) {
		ret = kt_fail("not resumed (%s, connection %u)", role_name[role],
			   cn->index);
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
	struct kt_stream junk, data;
	gnutls_hash_hd_t h;
	off_t pos;
	int fd, ret;

	snprintf(path, sizeof(path), "%s/ktls-xfer.XXXXXX", o->tmpdir);
	fd = mkstemp(path);
	if (fd < 0)
		return kt_fail("%s: mkstemp %s: %s", x->who, path,
			    strerror(errno));
	unlink(path);
	if (hash_init(x, &h) < 0) {
		close(fd);
		return -1;
	}
	kt_stream_init(&junk, x->seed ^ 0xf11e);
	kt_stream_init(&data, x->seed);
	ret = kt_stream_out(&junk, FILE_START, fd, NULL);
	if (ret == 0)
		ret = kt_stream_out(&data, x->size, fd, h);
	gnutls_hash_deinit(h, x->res.hash);
	if (ret < 0) {
		close(fd);
		return kt_fail("%s: writing %s failed", x->who, path);
	}
	pos = lseek(fd, o->offset_null ? FILE_START : (off_t)o->file_pos,
		    SEEK_SET);
	if (pos < 0) {
		close(fd);
		return kt_fail("%s: lseek: %s", x->who, strerror(errno));
	}
	x->file_fd = fd;
	return 0;
}

static void sleep_s(double s)
{
	struct timespec ts;

	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* --key-update: at most one per --ku-pace ms (the peer counts them). */
static int key_update(struct xfer *x, uint64_t pos)
{
	const struct opts *o = x->o;
	double wait = x->ku_time + o->ku_pace / 1000.0 - kt_now();
	ssize_t ret;

	if (x->ku_time > 0 && wait > 0)
		sleep_s(wait);
	do
		ret = gnutls_session_key_update(x->session,
						o->ku_peer ? GNUTLS_KU_PEER : 0);
	while (retry(x, &ret, "gnutls_session_key_update", POLLOUT));
	x->ku_time = kt_now();
	if (ret == E_REPORTED)
		return -1;
	if (ret == 0) {
		x->st.ku_ok++;
		if (o->expect_ku == KU_ERROR)
			return kt_fail("%s %s: gnutls_session_key_update at byte "
				    "%" PRIu64 " succeeded (--expect-ku error)",
				    x->who, x->dir, pos);
		return 0;
	}
	x->st.ku_fail++;
	x->st.ku_err = ret;
	if (o->expect_ku == KU_OK || ret != GNUTLS_E_UNIMPLEMENTED_FEATURE)
		return kt_fail("%s %s: gnutls_session_key_update at byte %" PRIu64
			    ": %s (--expect-ku %s)", x->who, x->dir, pos,
			    gnutls_strerror(ret), ku_choices[o->expect_ku]);
	if (x->st.ku_fail == 1 && !o->quiet)
		printf("%s %s: gnutls_session_key_update at byte %" PRIu64
		       ": %s (as expected); continuing\n", x->who, x->dir,
		       pos, gnutls_strerror(ret));
	return 0;
}

/* How many bytes to send from pos on: up to --chunk, and not past the
 * next --key-update point; does the key update due at pos first. */
static int next_piece(struct xfer *x, uint64_t pos, size_t *n)
{
	uint64_t every = x->o->ku_every, len = x->size - pos;

	if (len > x->o->chunk)
		len = x->o->chunk;
	if (every == 0) {
		*n = len;
		return 0;
	}
	if (pos > 0 && pos % every == 0 && pos != x->ku_pos) {
		x->ku_pos = pos;
		if (key_update(x, pos) < 0)
			return -1;
	}
	if (len > every - pos % every)
		len = every - pos % every;
	*n = len;
	return 0;
}

static int send_buf(struct xfer *x, const uint8_t *buf, size_t len)
{
	ssize_t ret;

	while (len > 0) {
		do
			ret = gnutls_record_send(x->session, buf, len);
		while (retry(x, &ret, "gnutls_record_send", POLLOUT));
		if (ret <= 0 || (size_t) ret > len)
			return xfail(x, "gnutls_record_send", ret);
		if ((size_t) ret < len)
			x->st.partial++;
		buf += ret;
		len -= ret;
		x->res.bytes += ret;
	}
	return 0;
}

static int send_mem(struct xfer *x)
{
	struct kt_stream st;
	gnutls_hash_hd_t h;
	uint8_t *buf;
	size_t n;
	int ret = -1;

	buf = malloc(x->o->chunk);
	if (buf == NULL)
		return kt_fail("%s: out of memory", x->who);
	if (hash_init(x, &h) < 0)
		goto out_noh;
	kt_stream_init(&st, x->seed);
	while (x->res.bytes < x->size) {
		if (next_piece(x, x->res.bytes, &n) < 0)
			goto out;
		kt_stream_fill(&st, buf, n);
		if (hash_update(x, h, buf, n) < 0 || send_buf(x, buf, n) < 0)
			goto out;
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
	off_t off = FILE_START, before, after, fpos = file_pos(x->file_fd);
	off_t *poff = o->offset_null ? NULL : &off;
	size_t n;
	ssize_t ret;

	while (x->res.bytes < x->size) {
		if (next_piece(x, x->res.bytes, &n) < 0)
			return -1;
		before = poff ? off : file_pos(x->file_fd);
		do
			ret = gnutls_record_send_file(x->session, x->file_fd,
						      poff, n);
		while (retry(x, &ret, "gnutls_record_send_file", POLLOUT));
		after = poff ? off : file_pos(x->file_fd);
		if (ret <= 0 || (size_t) ret > n)
			return xfail(x, "gnutls_record_send_file", ret);
		if ((size_t) ret < n)
			x->st.partial++;
		if (after - before != ret)
			return kt_fail("%s %s: send_file %s advanced by %lld, "
				    "returned %zd", x->who, x->dir,
				    poff ? "offset" : "file position",
				    (long long)(after - before), ret);
		if (poff && file_pos(x->file_fd) != fpos)
			return kt_fail("%s %s: send_file with offset moved the "
				    "file position from %lld to %lld", x->who,
				    x->dir, (long long)fpos,
				    (long long)file_pos(x->file_fd));
		x->res.bytes += ret;
	}
	return 0;
}

static int send_bye(struct xfer *x)
{
	ssize_t ret;

	do
		ret = gnutls_bye(x->session, GNUTLS_SHUT_WR);
	while (retry(x, &ret, "gnutls_bye", POLLOUT));
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

/* --recv-mode pipe: the pipe's reader hashes what comes out of it. */
struct pipe_reader {
	struct xfer *x;
	int fd;
	gnutls_hash_hd_t h;
	uint64_t bytes;
	int ret;
};

static void *pipe_reader(void *arg)
{
	struct pipe_reader *pr = arg;
	uint8_t buf[GEN_BUF];
	ssize_t n;

	while ((n = read(pr->fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			pr->ret = kt_fail("%s: reading the pipe: %s", pr->x->who,
				       strerror(errno));
			break;
		}
		if (hash_update(pr->x, pr->h, buf, n) < 0) {
			pr->ret = -1;
			break;
		}
		pr->bytes += n;
	}
	return NULL;
}

/* Hash [start, start + len) of fd, which must end there. */
static int hash_file(struct xfer *x, gnutls_hash_hd_t h, int fd, off_t start,
		     uint64_t len)
{
	uint8_t buf[GEN_BUF];
	struct stat sb;
	ssize_t n;

	if (fstat(fd, &sb) < 0 ||
	    (uint64_t)sb.st_size != (len ? start + len : 0))
		return kt_fail("%s %s: the file has %lld bytes, expected %llu",
			    x->who, x->dir, (long long)sb.st_size,
			    (unsigned long long)(len ? start + len : 0));
	while (len > 0) {
		n = pread(fd, buf, MIN(len, sizeof(buf)), start);
		if (n <= 0)
			return kt_fail("%s: pread: %s", x->who,
				    n ? strerror(errno) : "EOF");
		if (hash_update(x, h, buf, n) < 0)
			return -1;
		start += n;
		len -= n;
	}
	return 0;
}

/* gnutls_record_recv_file() until close_notify (*eof set) or, with
 * --expect-file-error, the first GNUTLS_E_FILE_ERROR.  Checks that the
 * offset or the file position advanced exactly as reported and hashes
 * what arrived in the file or the pipe. */
static int recv_file_mode(struct xfer *x, gnutls_hash_hd_t h, int *eof)
{
	const struct opts *o = x->o;
	int pipe_mode = o->recv_mode == RM_PIPE;
	int use_off = !pipe_mode && !o->recv_offset_null;
	/* the offset starts elsewhere than the file position */
	off_t start = use_off ? FILE_START : o->recv_append ? 0 : 123;
	off_t off = start, fpos, now;
	struct pipe_reader pr = { .x = x, .h = h };
	pthread_t thr;
	char path[4096];
	int fd, pfd[2], ret = 0;
	uint64_t bytes = 0;
	ssize_t n;

	/* kt_recv_file(): looked up at run time, so that this program also
	 * runs against libraries without it (Debian's libgnutls30 in
	 * tests/interop, upstream's in bench/anchor) as long as
	 * --recv-mode file|pipe is not used */
	if (!kt_have_recv_file())
		return kt_fail("%s: the library has no gnutls_record_recv_file",
			    x->who);
	if (pipe_mode) {
		if (pipe(pfd) < 0)
			return kt_fail("%s: pipe: %s", x->who, strerror(errno));
		pr.fd = pfd[0];
		fd = pfd[1];
		if (pthread_create(&thr, NULL, pipe_reader, &pr) != 0)
			return kt_fail("%s: pthread_create failed", x->who);
	} else {
		snprintf(path, sizeof(path), "%s/ktls-xfer-recv.XXXXXX",
			 o->recv_dir ? o->recv_dir : o->tmpdir);
		fd = mkstemp(path);
		if (fd < 0)
			return kt_fail("%s: mkstemp %s: %s", x->who, path,
				    strerror(errno));
		unlink(path);
		if (lseek(fd, use_off ? 77 : start, SEEK_SET) < 0)
			return kt_fail("%s: lseek: %s", x->who, strerror(errno));
		if (o->recv_append && fcntl(fd, F_SETFL, O_APPEND) < 0)
			return kt_fail("%s: O_APPEND: %s", x->who, strerror(errno));
	}
	fpos = lseek(fd, 0, SEEK_CUR);

	*eof = 0;
	for (;;) {
		errno = 0;
		do
			n = kt_recv_file(x->session, fd, use_off ? &off : NULL,
				      o->chunk);
		while (retry(x, &n, "gnutls_record_recv_file", POLLIN));
		if (n == 0) {
			*eof = 1;
			break;
		}
		if (n == GNUTLS_E_FILE_ERROR && o->expect_file_error) {
			x->st.file_err++;
			if (errno != ENOSPC)
				ret = kt_fail("%s %s: GNUTLS_E_FILE_ERROR with "
					   "errno %s, expected ENOSPC", x->who,
					   x->dir, strerror(errno));
			break;
		}
		if (n < 0 || (uint64_t)n > o->chunk) {
			ret = xfail(x, "gnutls_record_recv_file", n);
			break;
		}
		bytes += n;
		now = pipe_mode ? 0 : lseek(fd, 0, SEEK_CUR);
		if (use_off && (off != start + (off_t)bytes || now != fpos))
			ret = kt_fail("%s %s: recv_file offset at %lld, file "
				   "position %lld; expected %lld and %lld",
				   x->who, x->dir, (long long)off,
				   (long long)now, (long long)(start + bytes),
				   (long long)fpos);
		else if (!use_off && !pipe_mode && now != start + (off_t)bytes)
			ret = kt_fail("%s %s: recv_file moved the file position "
				   "to %lld, expected %lld", x->who, x->dir,
				   (long long)now, (long long)(start + bytes));
		if (ret < 0)
			break;
	}
	if (pipe_mode) {
		close(fd);
		pthread_join(thr, NULL);
		close(pfd[0]);
		if (ret == 0 && pr.ret < 0)
			ret = -1;
		if (ret == 0 && pr.bytes != bytes)
			ret = kt_fail("%s %s: %llu bytes came out of the pipe, "
				   "recv_file reported %llu", x->who, x->dir,
				   (unsigned long long)pr.bytes,
				   (unsigned long long)bytes);
	} else {
		if (ret == 0)
			ret = hash_file(x, h, fd, start, bytes);
		close(fd);
	}
	x->res.bytes += bytes;
	if (ret == 0 && o->expect_file_error && !x->st.file_err)
		ret = kt_fail("%s %s: no GNUTLS_E_FILE_ERROR (the directory "
			   "was not full)", x->who, x->dir);
	return ret;
}

/* Until close_notify; with --peer-raw until --size bytes (then
 * close_notify, EOF after them is fine too). */
static int xfer_recv(struct xfer *x)
{
	const struct opts *o = x->o;
	gnutls_hash_hd_t h;
	size_t len = o->chunk, n;
	uint8_t *buf;
	ssize_t ret = 0;

	buf = malloc(len);
	if (buf == NULL)
		return kt_fail("%s: out of memory", x->who);
	if (hash_init(x, &h) < 0) {
		free(buf);
		return -1;
	}
	/* --expect-partial: the peer's first send must find the window
	 * full, whoever the scheduler runs first (a receiver that keeps
	 * up lets every send through whole). */
	if (o->expect_partial)
		poll(NULL, 0, 300);
	if (o->recv_mode != RM_RECV) {
		int eof;

		ret = recv_file_mode(x, h, &eof);
		if (ret < 0 || eof)
			goto done;
	}
	while (!o->peer_raw || x->res.bytes < x->size) {
		n = len;
		if (o->peer_raw && x->size - x->res.bytes < n)
			n = x->size - x->res.bytes;
		do
			ret = gnutls_record_recv(x->session, buf, n);
		while (retry(x, &ret, "gnutls_record_recv", POLLIN));
		if (ret == 0)
			break;	/* close_notify */
		if (ret == GNUTLS_E_PREMATURE_TERMINATION && o->peer_raw &&
		    x->res.bytes >= x->size) {
			ret = 0;
			break;
		}
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
 done:
	gnutls_hash_deinit(h, x->res.hash);
	free(buf);
	if (ret >= 0 && x->bye_after)
		ret = send_bye(x);
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

/* Run the sending and/or receiving half; both at once in two threads,
 * except with --key-update: GnuTLS's key update (sent or received)
 * replaces the session's epoch, which races with a send or receive in
 * another thread (seen: "Decryption has failed", SIGSEGV, with Debian's
 * libgnutls30 too).  Then the client sends first (data, close_notify),
 * and receives after; the server the other way round. */
static int run_xfers(struct xfer *tx, struct xfer *rx, enum role role)
{
	pthread_t th;
	int ret;

	if (tx && rx && tx->o->ku_every) {
		if (role == CLIENT && (tx->ret = xfer_send(tx)) < 0)
			return xfer_abort(tx);
		if ((rx->ret = xfer_recv(rx)) < 0)
			return xfer_abort(rx);
		if (role == SERVER && (tx->ret = xfer_send(tx)) < 0)
			return xfer_abort(tx);
	} else if (tx && rx) {
		tx->threaded = rx->threaded = 1;
		ret = pthread_create(&th, NULL, send_thread, tx);
		if (ret != 0)
			return kt_fail("%s: pthread_create: %s", tx->who,
				    strerror(ret));
		rx->ret = xfer_recv(rx);
		if (rx->ret < 0)
			xfer_abort(rx);
		ret = pthread_join(th, NULL);
		if (ret != 0)
			return kt_fail("%s: pthread_join: %s", tx->who,
				    strerror(ret));
	} else if (tx) {
		tx->ret = xfer_send(tx);
	} else if (rx) {
		rx->ret = xfer_recv(rx);
	}
	return (tx && tx->ret < 0) || (rx && rx->ret < 0) ? -1 : 0;
}

/* With --resume each side sends and receives close_notify even in the
 * direction without data, so that the client reads the TLS 1.3 ticket. */
static void xfer_init(struct xfer *x, enum role role, unsigned dir,
		      const struct opts *o)
{
	memset(x, 0, sizeof(*x));
	x->o = o;
	x->who = role_name[role];
	x->dir = dir == DIR_C2S ? "c2s" : "s2c";
	x->seed = dir_seed(dir);
	x->size = o->dirs & dir ? o->size : 0;
	x->file_fd = -1;
}

/* The client keeps the session for the next connection. */
static int save_session(gnutls_session_t s, const struct conn *cn)
{
	int ret;

	if (cn->sdata == NULL || cn->index > 0)
		return 0;
	ret = gnutls_session_get_data2(s, cn->sdata);
	if (ret < 0)
		return kt_gfail("client: gnutls_session_get_data2", ret);
	return 0;
}

/* Handshake, check nothing yet (the client compares), transfer. */
static int run_side(enum role role, int fd,
		    gnutls_certificate_credentials_t cred,
		    const struct opts *o, const struct conn *cn,
		    struct side_result *res)
{
	unsigned tx_dir = role == CLIENT ? DIR_C2S : DIR_S2C;
	unsigned rx_dir = role == CLIENT ? DIR_S2C : DIR_C2S;
	struct xfer tx, rx;
	struct rusage ru0, ru1;
	gnutls_session_t s = NULL;
	int sending = (o->dirs & tx_dir) || o->resume;
	int receiving = (o->dirs & rx_dir) || o->resume;
	uint64_t ph_count = 0;
	int ret, ret2, wfd = -1;

	memset(res, 0, sizeof(*res));
	xfer_init(&tx, role, tx_dir, o);
	xfer_init(&rx, role, rx_dir, o);
	rx.bye_after = o->peer_raw && !sending;
	if (sending && o->use_sendfile && file_prepare(&tx) < 0)
		return -1;
	if (o->peer_raw)
		rx.size = o->size;	/* what to read */

	ret = session_open(&s, &wfd, role, fd, cred, o, cn, &ph_count, res);
	if (ret < 0)
		goto out;
	res->handshake_done = 1;
	ret = gnutls_transport_is_ktls_enabled(s);
	res->flags = ret < 0 ? 0 : ret;	/* < 0: a library without KTLS */
	res->version = gnutls_protocol_get_version(s);
	res->cipher = gnutls_cipher_get(s);
	tx.session = rx.session = s;
	tx.sock = rx.sock = fd;
	rx.ph_count = &ph_count;
	rx.ph_seen = ph_count;

	if (getrusage(RUSAGE_SELF, &ru0) < 0) {
		ret = kt_fail("getrusage: %s", strerror(errno));
		goto out;
	}
	res->start = kt_now();
	ret = run_xfers(sending ? &tx : NULL, receiving ? &rx : NULL, role);
	res->end = kt_now();
	ret2 = gnutls_transport_is_ktls_enabled(s);
	res->end_flags = ret2 < 0 ? 0 : ret2;
	if (ret == 0)
		ret = save_session(s, cn);
	if (getrusage(RUSAGE_SELF, &ru1) < 0) {
		ret = kt_fail("getrusage: %s", strerror(errno));
		goto out;
	}
	res->user = tv_sec(&ru1.ru_utime) - tv_sec(&ru0.ru_utime);
	res->sys = tv_sec(&ru1.ru_stime) - tv_sec(&ru0.ru_stime);
	res->sent = tx.res;
	res->received = rx.res;
	res->tx = tx.st;
	res->rx = rx.st;
	res->rx.ph_msgs = ph_count;
 out:
	if (s)
		gnutls_deinit(s);
	if (wfd >= 0)
		close(wfd);
	if (tx.file_fd >= 0)
		close(tx.file_fd);
	res->ok = ret == 0;
	return ret;
}

/* ---- processes and sockets ---- */

static int listen_socket(int *pfd, struct sockaddr_in *addr, unsigned port)
{
	*pfd = kt_loopback_listen(addr, port, 2);
	if (*pfd < 0)
		return kt_fail("bind/listen on 127.0.0.1:%u: %s", port,
			    strerror(errno));
	return 0;
}

/* A connected socket gets O_NONBLOCK with --nonblock, and --sndbuf. */
static int prepare_socket(int fd, const struct opts *o)
{
	int fl = fcntl(fd, F_GETFL), sz = o->sndbuf;

	if (o->nonblock && (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0))
		return kt_fail("fcntl O_NONBLOCK: %s", strerror(errno));
	if (sz && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)) < 0)
		return kt_fail("setsockopt SO_SNDBUF: %s", strerror(errno));
	return 0;
}

static int check_alone(enum role role, const struct opts *o,
		       const struct side_result *r, unsigned conn);

/* Accept --resume ? 2 : 1 connections and serve them (results in s[]);
 * report each through the pipe, or (report_fd < 0, --role server) check
 * it.  Stops at the first failure. */
static int server_main(int lfd, int report_fd,
		       gnutls_certificate_credentials_t cred,
		       const struct opts *o, struct side_result *s)
{
	gnutls_datum_t key = { NULL, 0 };
	struct conn cn = { 0, o->resume ? &key : NULL, NULL };
	int fd, ret = 0;

	if (o->resume && (ret = gnutls_session_ticket_key_generate(&key)) < 0)
		ret = kt_gfail("gnutls_session_ticket_key_generate", ret);
	for (cn.index = 0; ret == 0 && cn.index < o->conns; cn.index++) {
		memset(&s[cn.index], 0, sizeof(s[cn.index]));
		fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			ret = kt_fail("server: accept: %s", strerror(errno));
		else if ((ret = prepare_socket(fd, o)) == 0)
			ret = run_side(SERVER, fd, cred, o, &cn, &s[cn.index]);
		if (fd >= 0)
			close(fd);
		if (report_fd < 0) {
			if (check_alone(SERVER, o, &s[cn.index], cn.index) < 0)
				ret = -1;
		} else if (kt_write_all(report_fd, &s[cn.index],
				     sizeof(s[cn.index])) < 0) {
			ret = kt_fail("server: writing results: %s",
				   strerror(errno));
		}
	}
	close(lfd);
	gnutls_free(key.data);
	return ret;
}

static int client_connect(const struct sockaddr_in *addr,
			  const struct opts *o)
{
	/* --role client may start before the server listens */
	int fd = kt_connect(addr, o->role == ROLE_CLIENT ? CONNECT_RETRY_S : 0);

	if (fd < 0)
		return kt_fail("connect: %s", strerror(errno));
	if (prepare_socket(fd, o) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Run the client side of each connection (--resume: two, the second
 * resuming the first); returns how many were attempted in *done. */
static int client_conns(const struct sockaddr_in *addr,
			gnutls_certificate_credentials_t cred,
			const struct opts *o, struct side_result *c,
			unsigned *done)
{
	gnutls_datum_t sdata = { NULL, 0 };
	struct conn cn = { 0, NULL, o->resume ? &sdata : NULL };
	int fd, ret = 0;

	for (*done = 0; ret == 0 && *done < o->conns; (*done)++) {
		cn.index = *done;
		memset(&c[*done], 0, sizeof(c[*done]));
		fd = client_connect(addr, o);
		if (fd < 0)
			ret = -1;
		else {
			ret = run_side(CLIENT, fd, cred, o, &cn, &c[*done]);
			close(fd);	/* unblocks the server if we failed */
		}
		if (o->role == ROLE_CLIENT &&
		    check_alone(CLIENT, o, &c[*done], cn.index) < 0)
			ret = -1;
	}
	gnutls_free(sdata.data);
	return ret;
}

/* Parent: connect and run the client, then collect the server's reports
 * (one per connection the client attempted). */
static int client_main(pid_t child, const struct sockaddr_in *addr,
		       int report_fd, gnutls_certificate_credentials_t cred,
		       const struct opts *o, struct side_result *c,
		       struct side_result *s)
{
	unsigned i, done;
	int ret, status, killed = 0;

	ret = client_conns(addr, cred, o, c, &done);
	for (i = 0; i < done; i++)
		if (kt_read_all(report_fd, &s[i], sizeof(s[i])) < 0) {
			memset(&s[i], 0, sizeof(s[i]));
			ret = kt_fail("server: no results (server process "
				   "failed)");
			break;
		}
	if (done < o->conns || i < done) {
		/* the server may wait for a connection that never comes */
		kill(child, SIGTERM);
		killed = 1;
	}
	if (waitpid(child, &status, 0) < 0)
		return kt_fail("waitpid: %s", strerror(errno));
	if (killed && WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM)
		return -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (WIFSIGNALED(status))
			kt_fail("server process killed by signal %d",
			     WTERMSIG(status));
		else
			kt_fail("server process exited with status %d",
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
	if (r->flags != (unsigned)o->expect)
		ret = kt_fail("ktls flags %s=%u expected=%u", who, r->flags,
			   o->expect);
	if (r->end_flags != end_expected(o, !strcmp(who, "server")))
		ret = kt_fail("ktls flags %s at the end=%u expected=%u", who,
			   r->end_flags, end_expected(o, !strcmp(who, "server")));
	if (o->version_set && r->version != (int)o->version)
		ret = kt_fail("version %s=%s expected=%s", who,
			   gnutls_protocol_get_name(r->version),
			   gnutls_protocol_get_name(o->version));
	if (o->cipher_set && r->cipher != (int)o->cipher->algo)
		ret = kt_fail("cipher %s=%s expected=%s", who,
			   gnutls_cipher_get_name(r->cipher),
			   gnutls_cipher_get_name(o->cipher->algo));
	return ret;
}

static int check_dir(const char *dir, const struct dir_result *sent,
		     const struct dir_result *recvd, uint64_t size)
{
	int ret = 0;

	if (sent->bytes != size)
		ret = kt_fail("byte count %s sent=%" PRIu64 " expected=%" PRIu64,
			   dir, sent->bytes, size);
	if (recvd->bytes != sent->bytes)
		ret = kt_fail("byte count %s received=%" PRIu64 " sent=%" PRIu64,
			   dir, recvd->bytes, sent->bytes);
	if (memcmp(sent->hash, recvd->hash, KT_HASH_LEN) != 0)
		ret = kt_fail("hash mismatch %s", dir);
	return ret;
}

/* With --resume the directions without data carry close_notify only. */
static int check_results(const struct opts *o, const struct side_result *c,
			 const struct side_result *s)
{
	static const char *const names[] = { "", "c2s", "s2c" };
	unsigned d;
	int ret = 0;

	if (check_side("client", c, o) < 0)
		ret = -1;
	if (check_side("server", s, o) < 0)
		ret = -1;
	if (!c->ok || !s->ok)
		return -1;	/* the failing side said why */
	for (d = DIR_C2S; d <= DIR_S2C; d++)
		if (((o->dirs & d) || o->resume) &&
		    check_dir(names[d], d == DIR_C2S ? &c->sent : &s->sent,
			      d == DIR_C2S ? &s->received : &c->received,
			      o->dirs & d ? o->size : 0) < 0)
			ret = -1;
	return ret;
}

/* --role server|client: what this side sent and received, against the
 * streams it regenerates or (--peer-raw) --expect-sha256. */
static int check_alone(enum role role, const struct opts *o,
		       const struct side_result *r, unsigned conn)
{
	unsigned tx_dir = role == CLIENT ? DIR_C2S : DIR_S2C;
	unsigned rx_dir = tx_dir ^ (DIR_C2S | DIR_S2C);
	const struct dir_result *d[2] = { &r->sent, &r->received };
	uint64_t want[2] = { o->dirs & tx_dir ? o->size : 0,
		o->dirs & rx_dir ? o->size : 0 };
	unsigned char expect[KT_HASH_LEN];
	char h[2 * KT_HASH_LEN + 1];
	int i, ret = check_side(role_name[role], r, o);

	if (!r->ok)
		return -1;
	for (i = 0; i < 2; i++) {
		const char *what = i ? "received" : "sent";

		if (!(o->dirs & (i ? rx_dir : tx_dir)) && !o->resume)
			continue;
		kt_hex(h, d[i]->hash);
		if (!o->quiet)
			printf("%s conn %u %s: sha256=%s bytes=%" PRIu64 "\n",
			       role_name[role], conn, what, h, d[i]->bytes);
		if (d[i]->bytes != want[i])
			ret = kt_fail("%s %s %" PRIu64 " bytes, expected %" PRIu64,
				   role_name[role], what, d[i]->bytes,
				   want[i]);
		if (i == 0 || (o->peer_raw && !o->expect_sha256))
			continue;
		if (o->peer_raw)
			memcpy(expect, o->expect_hash, KT_HASH_LEN);
		else if (kt_stream_hash(dir_seed(rx_dir), want[1], -1, expect) < 0)
			return -1;
		if (memcmp(expect, d[i]->hash, KT_HASH_LEN) != 0)
			ret = kt_fail("%s: hash mismatch of the received data",
				   role_name[role]);
	}
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

/* One connection; r[CLIENT] or r[SERVER] is NULL with --role. */
static void report(const struct opts *o, unsigned conn,
		   const struct side_result *const r[2],
		   const struct tls_stat *d)
{
	const struct side_result *a = r[CLIENT] ? r[CLIENT] : r[SERVER];
	double start = a->start, end = a->end, wall;
	uint64_t bytes = o->size * (o->dirs == (DIR_C2S | DIR_S2C) ? 2 : 1);
	const char *mode = o->use_sendfile ?
	    (o->offset_null ? "sendfile-null" : "sendfile-ptr") : "send";
	char size[32], cipher[64];
	size_t i;
	int k;

	for (k = CLIENT; k <= SERVER; k++)
		if (r[k]) {
			start = r[k]->start < start ? r[k]->start : start;
			end = r[k]->end > end ? r[k]->end : end;
		}
	wall = end - start;
	if (o->json) {
		printf("{\"ok\":true,\"version\":\"%s\",\"cipher\":\"%s\","
		       "\"mode\":\"%s\",\"dir\":\"%s\",\"size\":%" PRIu64 ","
		       "\"chunk\":%" PRIu64 ",\"bytes\":%" PRIu64 ","
		       "\"wall_s\":%.6f,\"mbps\":%.2f,\"expect\":%d,"
		       "\"role\":\"%s\",\"transport\":\"%s\","
		       "\"nonblock\":%s,\"conn\":%u,\"key_update\":%" PRIu64,
		       gnutls_protocol_get_name(a->version),
		       gnutls_cipher_get_name(a->cipher), mode,
		       dir_name(o->dirs), o->size, o->chunk, bytes, wall,
		       wall > 0 ? bytes / wall / 1e6 : 0, o->expect,
		       role_choices[o->role], transport_choices[o->transport],
		       o->nonblock ? "true" : "false", conn, o->ku_every);
		for (k = CLIENT; k <= SERVER; k++) {
			if (!r[k])
				continue;
			printf(",\"%s\":{\"ktls\":%u,\"user_s\":%.6f,"
			       "\"sys_s\":%.6f,\"resumed\":%s", role_name[k],
			       r[k]->flags, r[k]->user, r[k]->sys,
			       r[k]->resumed ? "true" : "false");
			for (i = 0; i < N_COUNTERS; i++)
				printf(",\"%s\":%" PRIu64, counters[i].name,
				       counter(r[k], i));
			printf("}");
		}
		if (o->check_stat && d)
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
	lowercase(cipher, sizeof(cipher), gnutls_cipher_get_name(a->cipher));
	printf("ok: %s %s %s %s %s flags",
	       a->version == GNUTLS_TLS1_2 ? "tls1.2" :
	       a->version == GNUTLS_TLS1_3 ? "tls1.3" :
	       gnutls_protocol_get_name(a->version),
	       cipher, mode, dir_name(o->dirs), size);
	for (k = CLIENT; k <= SERVER; k++)
		if (r[k])
			printf(" %c=%u", role_name[k][0], r[k]->flags);
	printf(" %.3fs %.1f MB/s cpu", wall, wall > 0 ? bytes / wall / 1e6 : 0);
	for (k = CLIENT; k <= SERVER; k++)
		if (r[k])
			printf(" %c=%.2fu+%.2fs", role_name[k][0], r[k]->user,
			       r[k]->sys);
	if (o->transport != T_INT)
		printf(" transport=%s", transport_choices[o->transport]);
	if (o->resume)
		printf(" conn=%u%s", conn, a->resumed ? " resumed" : "");
	printf("\n");
	if (!o->nonblock && !o->ku_every)
		return;
	printf("io:");
	for (i = 0; i < N_COUNTERS; i++) {
		printf(" %s", counters[i].name);
		for (k = CLIENT; k <= SERVER; k++)
			if (r[k])
				printf(" %c=%" PRIu64, role_name[k][0],
				       counter(r[k], i));
	}
	for (k = CLIENT; k <= SERVER; k++)
		if (r[k] && r[k]->tx.ku_fail)
			printf(" %c_ku_error=\"%s\"", role_name[k][0],
			       gnutls_strerror(r[k]->tx.ku_err));
	printf("\n");
}

/* c[] and s[] have a slot per connection, zero if unused. */
static int check_partial(const struct opts *o, const struct side_result *c,
			 const struct side_result *s)
{
	uint64_t partial = 0;
	size_t i;

	for (i = 0; i < o->conns; i++)
		partial += c[i].tx.partial + s[i].tx.partial;
	if (o->expect_partial && partial == 0)
		return kt_fail("--expect-partial: no send took only part of its "
			    "buffer");
	return 0;
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

/* --gen-file: the stream the --dir side sends. */
static int gen_file(const struct opts *o)
{
	unsigned char hash[KT_HASH_LEN];
	char h[2 * KT_HASH_LEN + 1];
	int fd, ret;

	fd = open(o->gen_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return kt_fail("open %s: %s", o->gen_file, strerror(errno));
	ret = kt_stream_hash(dir_seed(o->dirs), o->size, fd, hash);
	if (close(fd) < 0 && ret == 0)
		ret = kt_fail("close %s: %s", o->gen_file, strerror(errno));
	if (ret < 0)
		return ret;
	kt_hex(h, hash);
	printf("sha256=%s bytes=%" PRIu64 "\n", h, o->size);
	return 0;
}

/* --role both: fork the server; the parent is the client and checks. */
static int run_both(const struct opts *o,
		    gnutls_certificate_credentials_t scred,
		    gnutls_certificate_credentials_t ccred,
		    struct side_result *c, struct side_result *s)
{
	struct sockaddr_in addr;
	int lfd, pfd[2], ret;
	pid_t pid;

	if (listen_socket(&lfd, &addr, 0) < 0)
		return -1;
	if (pipe(pfd) < 0) {
		close(lfd);
		return kt_fail("pipe: %s", strerror(errno));
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(lfd);
		close(pfd[0]);
		close(pfd[1]);
		return kt_fail("fork: %s", strerror(errno));
	}
	if (pid == 0) {
		alarm(o->timeout);
		close(pfd[0]);
		ret = server_main(lfd, pfd[1], scred, o, s);
		close(pfd[1]);
		gnutls_certificate_free_credentials(scred);
		gnutls_certificate_free_credentials(ccred);
		exit(ret < 0 ? EXIT_FAIL : 0);
	}
	close(lfd);
	close(pfd[1]);
	ret = client_main(pid, &addr, pfd[0], ccred, o, c, s);
	close(pfd[0]);
	return ret;
}

static int run(const struct opts *o)
{
	gnutls_certificate_credentials_t scred, ccred;
	struct side_result c[2], s[2];
	struct tls_stat st0, st1, delta;
	struct sockaddr_in addr;
	unsigned i, done = o->conns;
	int lfd, ret;

	memset(&delta, 0, sizeof(delta));
	memset(c, 0, sizeof(c));
	memset(s, 0, sizeof(s));
	if (o->check_stat && read_tls_stat(&st0) < 0)
		return -1;
	if (kt_make_x509_creds(&scred, &ccred) < 0) {
		ret = -1;
		goto out;
	}
	switch (o->role) {
	case ROLE_BOTH:
		ret = run_both(o, scred, ccred, c, s);
		for (i = 0; i < o->conns; i++)
			if (check_results(o, &c[i], &s[i]) < 0)
				ret = -1;
		break;
	case ROLE_SERVER:
		ret = listen_socket(&lfd, &addr, o->port);
		if (ret < 0)
			break;
		if (!o->quiet)
			printf("listening on 127.0.0.1:%u\n",
			       ntohs(addr.sin_port));
		fflush(stdout);
		ret = server_main(lfd, -1, scred, o, s);
		break;
	default:
		kt_loopback_addr(&addr, o->port);
		ret = client_conns(&addr, ccred, o, c, &done);
		break;
	}
	if (ret == 0 && check_partial(o, c, s) < 0)
		ret = -1;
	if (o->check_stat) {
		if (read_tls_stat(&st1) < 0)
			ret = -1;
		tls_stat_delta(&st0, &st1, &delta);
		if (check_tls_stat(o, &delta) < 0)
			ret = -1;
	}
	for (i = 0; ret == 0 && i < o->conns; i++)
		report(o, i, (const struct side_result *const[2]){
		       o->role != ROLE_SERVER ? &c[i] : NULL,
		       o->role != ROLE_CLIENT ? &s[i] : NULL }, &delta);
 out:
	if (scred)
		gnutls_certificate_free_credentials(scred);
	if (ccred)
		gnutls_certificate_free_credentials(ccred);
	return ret;
}

int main(int argc, char **argv)
{
	struct opts o;

	if (parse_opts(&o, argc, argv) < 0)
		return EXIT_USAGE;
	if (o.gen_file)
		return gen_file(&o) < 0 ? EXIT_FAIL : 0;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_alarm);
	alarm(o.timeout);
	return run(&o) < 0 ? EXIT_FAIL : 0;
}
