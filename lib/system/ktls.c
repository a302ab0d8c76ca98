/*
 * Copyright (C) 2026 gnutls-ktls contributors
 *
 * This file is part of GnuTLS.
 *
 * The GnuTLS is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Lesser General Public License
 * as published by the Free Software Foundation; either version 2.1 of
 * the License, or (at your option) any later version.
 *
 * This library is distributed in the hope that it will be useful, but
 * WITHOUT ANY WARRANTY; without even the implied warranty of
 * MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the GNU
 * Lesser General Public License for more details.
 *
 * You should have received a copy of the GNU Lesser General Public License
 * along with this program.  If not, see <https://www.gnu.org/licenses/>
 *
 */

/* The kernel TLS backend.  See ktls.h for how the record layer uses it.
 *
 * Structure: the pure pieces (the AEAD table, the crypto_info builder,
 * the record-type control message, errno meanings) are in ktls_wire.c.
 * Here: one place that hands keys to the kernel per direction
 * (ktls_install), called at the end of the handshake and after key
 * updates (ktls_sync); deciding whether a direction can be offloaded
 * (ktls_offloadable) is separate from installing it, and every "no"
 * leaves that direction in userspace, logged at debug level.  Then
 * sending (sendmsg, sendfile/splice), receiving (recvmsg, the data fast
 * path) and gnutls_record_recv_file()'s splice path.
 */

#include "gnutls_int.h"

#ifdef ENABLE_KTLS

#include "errors.h"
#include "record.h"
#include "mbuffers.h"
#include "constate.h"
#include "system.h"
#include "debug.h"
#include "system/ktls.h"
#include "system/ktls_wire.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/sockios.h>
#include <linux/tls.h>

#ifndef TCP_ULP
# define TCP_ULP 31
#endif

/* TLS 1.3 AEAD usage limits under TX offload (RFC 8446, 5.5).  The kernel
 * counts its records itself; the backend keeps a count in the write
 * state's sequence number (what gnutls_record_get_state() reports): one
 * record per 2^14 bytes of each sendmsg, at least one per call (never
 * fewer than the kernel made), and the kernel's own count after each
 * sendfile/splice.  Like the userspace record layer, a key update is due
 * after 2^24 - 3 records; where the kernel cannot take new keys, sending
 * stops at 2^24.5 records (the AES-GCM limit) rather than exceed it.
 * Sends are cut at these points, so that no single call crosses one.
 * Ciphers without a limit (ChaCha20-Poly1305) and sessions with
 * GNUTLS_NO_AUTO_REKEY are exempt, as in userspace.  Each new TLS 1.3
 * key starts again at 0. */
#define KTLS_REKEY_RECORDS UINT64_C(0xfffffd)
#define KTLS_MAX_RECORDS UINT64_C(23726566)

static inline bool ktls_fatal(int ret)
{
	return ret != GNUTLS_E_AGAIN && ret != GNUTLS_E_INTERRUPTED &&
	       ret != GNUTLS_E_TIMEDOUT;
}

static const char *ktls_dir_name(unsigned dir)
{
	return dir == GNUTLS_KTLS_RECV ? "RX" : "TX";
}

/* --- setting up -------------------------------------------------------- */

static int ktls_fd(gnutls_session_t session, unsigned dir)
{
	return (int)(long)(dir == GNUTLS_KTLS_RECV ?
			   session->internals.transport_recv_ptr :
			   session->internals.transport_send_ptr);
}

/* A connected TCP socket over IPv4/IPv6. */
static bool ktls_is_tcp_socket(int fd)
{
	int val;
	socklen_t len = sizeof(val);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &val, &len) < 0 ||
	    val != SOCK_STREAM)
		return false;
	len = sizeof(val);
	if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &val, &len) < 0 ||
	    val != IPPROTO_TCP)
		return false;
	return true;
}

/* Attaches the "tls" upper layer protocol, unless already there (both
 * directions may share one socket).  It changes nothing on the wire:
 * without keys the socket passes records through as before. */
static int ktls_attach_ulp(int fd)
{
	char name[16] = "";
	socklen_t len = sizeof(name) - 1;

	if (getsockopt(fd, SOL_TCP, TCP_ULP, name, &len) == 0 &&
	    strcmp(name, "tls") == 0)
		return 0;
	if (setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) < 0) {
		/* EEXIST: some ULP is there already; keys only stick if
		 * it is "tls", which ktls_install() will find out */
		if (errno != EEXIST)
			return -errno;
	}
	return 0;
}

/* TLS 1.3 receive: let the kernel decrypt straight into the reader's
 * buffer, betting that the peer does not pad records (GnuTLS and OpenSSL
 * do not by default).  A padded record still works: the kernel decrypts
 * it again the slow way.  Linux >= 6.0; older kernels just say no. */
static void ktls_expect_no_pad(gnutls_session_t session,
			       const version_entry_st *vers)
{
#ifdef TLS_RX_EXPECT_NO_PAD
	unsigned int one = 1;

	if (vers->tls13_sem &&
	    setsockopt(ktls_fd(session, GNUTLS_KTLS_RECV), SOL_TLS,
		       TLS_RX_EXPECT_NO_PAD, &one, sizeof(one)) < 0)
		_gnutls_debug_log("ktls: RX: TLS_RX_EXPECT_NO_PAD: %s\n",
				  strerror(errno));
#else
	(void)session;
	(void)vers;
#endif
}

static const record_state_st *ktls_state(record_parameters_st *params,
					 unsigned dir)
{
	return dir == GNUTLS_KTLS_RECV ? &params->read : &params->write;
}

/* A digest of one direction's key and IV, to tell whether a new epoch
 * changed them. */
static void ktls_key_id(const record_state_st *st,
			uint8_t id[KTLS_KEY_ID_SIZE])
{
	uint8_t buf[MAX_CIPHER_KEY_SIZE + MAX_CIPHER_IV_SIZE];
	uint8_t digest[32];

	memcpy(buf, st->key, st->key_size);
	memcpy(buf + st->key_size, st->iv, st->iv_size);
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, buf,
			     st->key_size + st->iv_size, digest) < 0)
		memset(digest, 0, sizeof(digest));
	memcpy(id, digest, KTLS_KEY_ID_SIZE);
	gnutls_memset(buf, 0, sizeof(buf));
}

/* The one place that hands keys to the kernel, for the initial install
 * and for a TLS 1.3 key update alike. */
static int ktls_install(gnutls_session_t session, unsigned dir,
			record_parameters_st *params)
{
	struct ktls_st *k = &session->internals.ktls;
	const version_entry_st *vers = get_version(session);
	const struct ktls_cipher *c = _gnutls_ktls_cipher_find(params->cipher->id);
	const record_state_st *st = ktls_state(params, dir);
	struct ktls_keys keys;
	uint8_t info[KTLS_CRYPTO_INFO_MAX];
	size_t info_size;
	int ret, err = 0;

	if (c == NULL || vers == NULL)
		return gnutls_assert_val(GNUTLS_E_INTERNAL_ERROR);

	keys.version = vers->tls13_sem ? TLS_1_3_VERSION : TLS_1_2_VERSION;
	keys.key = st->key;
	keys.key_size = st->key_size;
	keys.iv = st->iv;
	keys.iv_size = st->iv_size;
	keys.seq = st->sequence_number;
	ret = _gnutls_ktls_crypto_info(c, &keys, info, &info_size);
	if (ret < 0)
		return gnutls_assert_val(ret);

	if (setsockopt(ktls_fd(session, dir), SOL_TLS,
		       dir == GNUTLS_KTLS_RECV ? TLS_RX : TLS_TX,
		       info, info_size) < 0)
		err = errno;
	gnutls_memset(info, 0, sizeof(info));

	if (err != 0) {
		_gnutls_debug_log("ktls: %s: the kernel refused the %s key of epoch %u: %s\n",
				  ktls_dir_name(dir), params->cipher->name,
				  (unsigned)params->epoch, strerror(err));
		return gnutls_assert_val(GNUTLS_E_INTERNAL_ERROR);
	}

	if (dir == GNUTLS_KTLS_RECV) {
		k->rx_epoch = params->epoch;
		ktls_key_id(st, k->rx_key_id);
		ktls_expect_no_pad(session, vers);
	} else {
		k->tx_epoch = params->epoch;
		ktls_key_id(st, k->tx_key_id);
	}
	/* atomic: under ktls = auto the receiving thread and the sending
	 * one may each move their direction at the same time */
	__atomic_fetch_or(&k->enabled, dir, __ATOMIC_RELEASE);
	return 0;
}

/* Before each kernel I/O: if GnuTLS moved to new keys (a TLS 1.3 key
 * update), the kernel must get them first.  A key update moves both
 * directions to a new epoch; the direction whose key stayed the same is
 * left alone (its sequence number in GnuTLS is not the kernel's: the
 * data fast path does not count records).  Kernels before 6.14 cannot
 * change keys; the session then ends with a clear error rather than
 * misreading or sending records under the wrong keys. */
static int ktls_sync(gnutls_session_t session, unsigned dir,
		     record_parameters_st *params)
{
	struct ktls_st *k = &session->internals.ktls;
	uint16_t *installed = dir == GNUTLS_KTLS_RECV ? &k->rx_epoch :
							&k->tx_epoch;
	const uint8_t *installed_id = dir == GNUTLS_KTLS_RECV ?
				      k->rx_key_id : k->tx_key_id;
	uint8_t id[KTLS_KEY_ID_SIZE];
	int ret;

	if (likely(params->epoch == *installed))
		return 0;

	ktls_key_id(ktls_state(params, dir), id);
	if (memcmp(id, installed_id, KTLS_KEY_ID_SIZE) == 0) {
		*installed = params->epoch;	/* the other key changed */
		return 0;
	}

	ret = ktls_install(session, dir, params);
	if (ret < 0) {
		_gnutls_debug_log("ktls: %s: key update not possible under kernel TLS on this kernel (needs Linux >= 6.14)\n",
				  ktls_dir_name(dir));
		session_invalidate(session);
		return gnutls_assert_val(GNUTLS_E_UNIMPLEMENTED_FEATURE);
	}
	_gnutls_debug_log("ktls: %s: kernel switched to the keys of epoch %u\n",
			  ktls_dir_name(dir), (unsigned)params->epoch);
	return 0;
}

static bool ktls_default_transport(gnutls_session_t session)
{
	return session->internals.pull_func == system_read &&
	       session->internals.push_func == NULL &&
	       (session->internals.vec_push_func == system_writev ||
		session->internals.vec_push_func == system_writev_nosignal);
}

/* Why one direction cannot go to the kernel, or NULL. */
static const char *ktls_dir_unsuitable(gnutls_session_t session, unsigned dir)
{
	const security_parameters_st *sp = &session->security_parameters;

	if (!ktls_is_tcp_socket(ktls_fd(session, dir)))
		return "transport is not a TCP socket";
	if (dir == GNUTLS_KTLS_RECV) {
		/* bytes of a record not yet processed are no longer in the
		 * socket: the kernel would miss them */
		if (session->internals.record_recv_buffer.byte_length != 0)
			return "undecrypted bytes buffered";
		/* the kernel takes records up to 2^14 bytes: it would not
		 * enforce the smaller limit we advertised (RFC 8449) */
		if (sp->max_record_recv_size < KTLS_MAX_PLAINTEXT)
			return "we limit the record size";
		return NULL;
	}
	if (session->internals.record_send_buffer.byte_length != 0)
		return "unsent records buffered";
	/* the kernel fills records up to 2^14 bytes (RFC 8449 limit) */
	if (sp->max_record_send_size < KTLS_MAX_PLAINTEXT)
		return "peer limits the record size";
	return NULL;
}

/* Which directions of this session the kernel could take; says why not
 * (debug level) for the others. */
static unsigned ktls_offloadable(gnutls_session_t session,
				 record_parameters_st *rparams,
				 record_parameters_st *wparams)
{
	const version_entry_st *vers = get_version(session);
	unsigned dirs = GNUTLS_KTLS_DUPLEX, dir;
	const char *why = NULL;

	if (IS_DTLS(session))
		why = "DTLS";
	else if (!ktls_default_transport(session) ||
		 session->internals.pull_timeout_func !=
			 gnutls_system_recv_timeout)
		why = "custom transport functions";
	else if (vers == NULL ||
		 (vers->id != GNUTLS_TLS1_2 && vers->id != GNUTLS_TLS1_3))
		why = "protocol version";
	else if (_gnutls_ktls_cipher_find(rparams->cipher->id) == NULL ||
		 _gnutls_ktls_cipher_find(wparams->cipher->id) == NULL)
		why = "cipher not supported by kernel TLS";
	if (why != NULL) {
		_gnutls_debug_log("ktls: not offloading: %s\n", why);
		return 0;
	}

	for (dir = GNUTLS_KTLS_RECV; dir <= GNUTLS_KTLS_SEND; dir <<= 1) {
		why = ktls_dir_unsuitable(session, dir);
		if (why != NULL) {
			_gnutls_debug_log("ktls: %s: %s\n", ktls_dir_name(dir), why);
			dirs &= ~dir;
		}
	}
	return dirs;
}

/* What this session gets: the system configuration decides when it has a
 * "ktls" key (_GNUTLS_CONFIG_KTLS_ON, _OFF or _AUTO), else the session's
 * GNUTLS_ENABLE_KTLS flag (_ON or _OFF). */
static int ktls_mode(gnutls_session_t session)
{
	int mode = _gnutls_config_get_ktls();

	if (mode != _GNUTLS_CONFIG_KTLS_UNSET)
		return mode;
	return (session->internals.flags & GNUTLS_ENABLE_KTLS) ?
	       _GNUTLS_CONFIG_KTLS_ON : _GNUTLS_CONFIG_KTLS_OFF;
}

/* Hands one direction to the kernel: the "tls" ULP, then its keys. */
static int ktls_offload(gnutls_session_t session, unsigned dir,
			record_parameters_st *params)
{
	int ret;

	ret = ktls_attach_ulp(ktls_fd(session, dir));
	if (ret < 0) {
		_gnutls_debug_log("ktls: %s: no \"tls\" ULP on the socket: %s\n",
				  ktls_dir_name(dir), strerror(-ret));
		return gnutls_assert_val(GNUTLS_E_INTERNAL_ERROR);
	}
	ret = ktls_install(session, dir, params);
	if (ret < 0)
		return gnutls_assert_val(ret);
	/* from now on bound to this transport */
	session->internals.ktls.recv_ptr = session->internals.transport_recv_ptr;
	session->internals.ktls.send_ptr = session->internals.transport_send_ptr;
	return 0;
}

static const char *ktls_dir_state(gnutls_session_t session, unsigned dir)
{
	if (IS_KTLS_ENABLED(session, dir))
		return "kernel";
	return _gnutls_ktls_watched(session, dir) ? "userspace (auto)" :
						    "userspace";
}

/* --- ktls = auto: a direction moves when its traffic is bulk ------------ */

/* Large application records in a row, in one direction, after which that
 * direction moves to the kernel.  The kernel is cheaper per byte for large
 * records and dearer for small ones; a few large records in a row tell a
 * bulk transfer from a large message now and then.  Where "large" starts
 * depends on the kernel and on the traffic (make bench, icount clock,
 * CPU of both ends, kernel / userspace):
 *
 *                      writes in a row          request/response
 *   Linux 6.1          4 KiB x1.03 (TLS 1.2     2 KiB x1.05
 *                      x1.10), 8 KiB x0.81      4 KiB x0.94
 *   Linux 7.2          1 KiB x1.06              1 KiB x1.01
 *                      2 KiB x0.99, 4 KiB x0.89 2 KiB x0.96
 *
 * A "turn" is a record that follows one in the other direction, as
 * requests and responses do.  Kernels between 6.1 and 6.14 take 6.1's
 * thresholds (not measured: the conservative side).  Sizes are the
 * plaintext of a write, the length on the wire of a received record. */
#define KTLS_AUTO_BULK_RECORDS 4

struct ktls_auto_rule {
	unsigned major, minor;	/* from this kernel on */
	size_t stream;		/* a record this large counts */
	size_t turn;		/* a turn this large counts */
};

static const struct ktls_auto_rule ktls_auto_rules[] = {
	{ 6, 14, 2048, 2048 },
	{ 0, 0, 8192, 3072 },	/* the last row: any kernel */
};

/* Whether the running kernel is at least major.minor (uname -r). */
static bool ktls_kernel_at_least(unsigned major, unsigned minor)
{
	static int cached = -1;	/* major * 1000 + minor, the same for every thread */
	int version = __atomic_load_n(&cached, __ATOMIC_RELAXED);
	struct utsname u;
	unsigned ma, mi;

	if (version < 0) {
		if (uname(&u) != 0 || sscanf(u.release, "%u.%u", &ma, &mi) != 2)
			ma = mi = 0;
		version = (int)(ma * 1000 + mi);
		__atomic_store_n(&cached, version, __ATOMIC_RELAXED);
	}
	return version >= (int)(major * 1000 + minor);
}

static const struct ktls_auto_rule *ktls_auto_rule(void)
{
	const struct ktls_auto_rule *r = ktls_auto_rules;

	while (!ktls_kernel_at_least(r->major, r->minor))
		r++;
	return r;
}

/* Whether the kernel's AEAD pays for this session's cipher (not CCM). */
static bool ktls_auto_pays(record_parameters_st *params)
{
	const struct ktls_cipher *c = _gnutls_ktls_cipher_find(params->cipher->id);

	if (c != NULL && c->bulk_pays)
		return true;
	_gnutls_debug_log("ktls: auto: %s stays in userspace (the kernel's is slower)\n",
			  params->cipher->name);
	return false;
}

static struct ktls_auto_dir *ktls_auto(gnutls_session_t session, unsigned dir)
{
	return dir == GNUTLS_KTLS_RECV ? &session->internals.ktls.rx_auto :
					 &session->internals.ktls.tx_auto;
}

/* One more application record of this size in a direction's run. */
static void ktls_auto_count(gnutls_session_t session, unsigned dir,
			    content_type_t type, size_t size)
{
	struct ktls_auto_dir *a = ktls_auto(session, dir);
	const struct ktls_auto_rule *rule;
	bool turn;

	if (type != GNUTLS_APPLICATION_DATA || size == 0)
		return;
	/* the sending and the receiving thread may both be here */
	turn = __atomic_exchange_n(&session->internals.ktls.auto_last, dir,
				   __ATOMIC_RELAXED) != dir;
	rule = ktls_auto_rule();
	if (size < rule->stream && !(turn && size >= rule->turn)) {
		a->run = 0;
		return;
	}
	if (++a->run >= KTLS_AUTO_BULK_RECORDS)
		a->due = 1;
}

/* Moves one watched direction to the kernel now, if this is a record
 * boundary: nothing of it buffered, no handshake under way.  Otherwise
 * the move stays due and is tried again at the next record.  The kernel
 * takes the current epoch's keys and sequence number; a direction that
 * cannot move (no tls ULP, a transport changed since) stays in
 * userspace for good, as does one that moved (keys cannot come back). */
void _gnutls_ktls_move(gnutls_session_t session, unsigned dir)
{
	struct ktls_auto_dir *a = ktls_auto(session, dir);
	record_parameters_st *rparams, *wparams, *params;
	const char *why = NULL;

	if (!a->watch)
		return;
	if (!session->internals.initial_negotiation_completed ||
	    session->internals.handshake_in_progress ||
	    session->internals.recv_state != RECV_STATE_0)
		why = "handshake under way";
	else if (dir == GNUTLS_KTLS_SEND &&
		 session->internals.record_send_buffer.byte_length != 0)
		why = "a record is being sent";
	else if (dir == GNUTLS_KTLS_RECV &&
		 (session->internals.record_recv_buffer.byte_length != 0 ||
		  session->internals.handshake_recv_buffer_size != 0))
		why = "a record or handshake message is being read";
	if (why != NULL) {
		a->due = 1;
		return;
	}

	a->watch = a->due = 0;
	if (_gnutls_epoch_get(session, EPOCH_READ_CURRENT, &rparams) < 0 ||
	    _gnutls_epoch_get(session, EPOCH_WRITE_CURRENT, &wparams) < 0) {
		gnutls_assert();
		return;
	}
	params = dir == GNUTLS_KTLS_RECV ? rparams : wparams;
	if (!(ktls_offloadable(session, rparams, wparams) & dir) ||
	    ktls_offload(session, dir, params) < 0) {
		_gnutls_debug_log("ktls: auto: session %p: %s stays in userspace\n",
				  session, ktls_dir_name(dir));
		return;
	}
	_gnutls_debug_log("ktls: auto: session %p: %s moved to the kernel (epoch %u, record %llu)\n",
			  session, ktls_dir_name(dir), (unsigned)params->epoch,
			  (unsigned long long)ktls_state(params, dir)->sequence_number);
}

/* After the handshake: ktls = true hands every direction the kernel can
 * take to it now; ktls = auto only marks them (ktls_auto_pays()), and
 * each moves when its traffic turns out to be bulk (_gnutls_ktls_move()). */
void _gnutls_ktls_enable(gnutls_session_t session)
{
	struct ktls_st *k = &session->internals.ktls;
	record_parameters_st *rparams, *wparams;
	unsigned dirs, dir;
	int mode;

	if (k->enabled)
		return;
	mode = ktls_mode(session);
	if (mode == _GNUTLS_CONFIG_KTLS_OFF)
		return;

	if (_gnutls_epoch_get(session, EPOCH_READ_CURRENT, &rparams) < 0 ||
	    _gnutls_epoch_get(session, EPOCH_WRITE_CURRENT, &wparams) < 0) {
		gnutls_assert();
		return;
	}

	dirs = ktls_offloadable(session, rparams, wparams);
	if (mode == _GNUTLS_CONFIG_KTLS_AUTO) {
		bool pays = ktls_auto_pays(wparams);

		k->adaptive = 1;
		for (dir = GNUTLS_KTLS_RECV; dir <= GNUTLS_KTLS_SEND; dir <<= 1) {
			struct ktls_auto_dir *a = ktls_auto(session, dir);

			a->watch = pays && (dirs & dir);
			a->due = 0;
			a->run = 0;
		}
	} else {
		for (dir = GNUTLS_KTLS_RECV; dir <= GNUTLS_KTLS_SEND; dir <<= 1) {
			if ((dirs & dir) &&
			    ktls_offload(session, dir, dir == GNUTLS_KTLS_RECV ?
					 rparams : wparams) < 0)
				gnutls_assert();
		}
	}

	_gnutls_debug_log("ktls: session %p (%s): TX %s, RX %s\n", session,
			  wparams->cipher->name,
			  ktls_dir_state(session, GNUTLS_KTLS_SEND),
			  ktls_dir_state(session, GNUTLS_KTLS_RECV));
}

/* _gnutls_send_tlen_int(), before each record in userspace: a run of
 * large writes moves TX, from this record on. */
void _gnutls_ktls_watch_send(gnutls_session_t session, content_type_t type,
			     size_t data_size)
{
	struct ktls_auto_dir *a = ktls_auto(session, GNUTLS_KTLS_SEND);

	ktls_auto_count(session, GNUTLS_KTLS_SEND, type, data_size);
	if (a->due)
		_gnutls_ktls_move(session, GNUTLS_KTLS_SEND);
}

/* After each record read in userspace (from _gnutls_ktls_after_record()):
 * a run of large records from the peer moves RX, from the next record on.
 * The size is the record's length on the wire (its plaintext plus the
 * AEAD's overhead). */
static void ktls_watch_recv(gnutls_session_t session, content_type_t type,
			    size_t length)
{
	struct ktls_auto_dir *a = ktls_auto(session, GNUTLS_KTLS_RECV);

	ktls_auto_count(session, GNUTLS_KTLS_RECV, type, length);
	if (a->due)
		_gnutls_ktls_move(session, GNUTLS_KTLS_RECV);
}

void _gnutls_ktls_deinit(gnutls_session_t session)
{
	struct ktls_st *k = &session->internals.ktls;

	_mbuffer_xfree(&k->rx_stash);
	_mbuffer_xfree(&k->tx_pending);
	if (k->pipe_state == KTLS_PIPE_OPEN) {
		close(k->pipe_fd[0]);
		close(k->pipe_fd[1]);
	}
	k->pipe_state = KTLS_PIPE_NONE;
}

/* The application gave the session another transport.  An offloaded
 * session is bound to the socket whose kernel holds its keys: any other
 * transport would get plaintext, and what it returns would not be
 * authenticated.  Fail closed: the session is invalidated, so every
 * further record call returns GNUTLS_E_INVALID_SESSION.  Setting the same
 * socket again changes nothing. */
void _gnutls_ktls_transport_changed(gnutls_session_t session)
{
	struct ktls_st *k = &session->internals.ktls;

	if (!k->enabled ||
	    (ktls_default_transport(session) &&
	     session->internals.transport_recv_ptr == k->recv_ptr &&
	     session->internals.transport_send_ptr == k->send_ptr))
		return;
	_gnutls_debug_log("ktls: session %p: transport changed after the keys went to the kernel: session invalidated\n",
			  session);
	session_invalidate(session);
}

/* Whether the running kernel takes new keys on a TLS 1.3 socket that
 * already has some (TLS_TX/TLS_RX set again): Linux 6.14 and later. */
static bool ktls_kernel_can_rekey(void)
{
	return ktls_kernel_at_least(6, 14);
}

/* gnutls_session_key_update() on an offloaded session: refuse before
 * anything is sent when the kernel could not follow the new keys, so the
 * session stays usable.  Our TX keys change; with GNUTLS_KU_PEER the
 * peer's, and so our RX keys, change too. */
int _gnutls_ktls_check_key_update(gnutls_session_t session, unsigned flags)
{
	unsigned needs = GNUTLS_KTLS_SEND;

	if (flags & GNUTLS_KU_PEER)
		needs |= GNUTLS_KTLS_RECV;
	if (!IS_KTLS_ENABLED(session, needs) || ktls_kernel_can_rekey())
		return 0;
	_gnutls_debug_log("ktls: key update refused: this kernel cannot change the keys of a kernel TLS socket (needs Linux >= 6.14)\n");
	return gnutls_assert_val(GNUTLS_E_UNIMPLEMENTED_FEATURE);
}

/* Renegotiation (TLS 1.2) would need new keys in the kernel, which it
 * does not take: refuse with a no_renegotiation warning.  A server that
 * already holds the peer's ClientHello cannot continue the session. */
int _gnutls_ktls_check_rehandshake(gnutls_session_t session)
{
	_gnutls_debug_log("ktls: renegotiation refused under kernel TLS\n");
	(void)gnutls_alert_send(session, GNUTLS_AL_WARNING,
				GNUTLS_A_NO_RENEGOTIATION);
	if (session->security_parameters.entity == GNUTLS_SERVER)
		session_invalidate(session);
	return gnutls_assert_val(GNUTLS_E_UNIMPLEMENTED_FEATURE);
}

/* --- sending ------------------------------------------------------------ */

/* Whether the TX key has a usage limit (see KTLS_REKEY_RECORDS). */
static bool ktls_tx_key_has_limit(gnutls_session_t session,
				  record_parameters_st *params)
{
	const version_entry_st *vers = get_version(session);

	return vers && vers->tls13_sem &&
	       !(session->internals.flags & GNUTLS_NO_AUTO_REKEY) &&
	       !(params->cipher->flags & GNUTLS_CIPHER_FLAG_NO_REKEY);
}

/* How many bytes may go to the kernel now without a record crossing the
 * key's rekey point (kernels that take new keys) or its usage limit:
 * at most size, 0 when the limit is reached. */
static size_t ktls_tx_room(gnutls_session_t session,
			   record_parameters_st *params, size_t size)
{
	uint64_t seq = params->write.sequence_number, limit = KTLS_MAX_RECORDS;

	size = MIN(size, KTLS_MAX_RW_COUNT);
	if (!ktls_tx_key_has_limit(session, params))
		return size;
	if (ktls_kernel_can_rekey() && seq < KTLS_REKEY_RECORDS)
		limit = KTLS_REKEY_RECORDS;
	if (seq >= limit)
		return 0;
	if (limit - seq < KTLS_MAX_RW_COUNT / KTLS_MAX_PLAINTEXT)
		size = MIN(size, (limit - seq) * KTLS_MAX_PLAINTEXT);
	return size;
}

/* Before sending: the kernel has the current keys, and the key is
 * within its usage limit. */
static int ktls_tx_prepare(gnutls_session_t session,
			   record_parameters_st *params)
{
	int ret = ktls_sync(session, GNUTLS_KTLS_SEND, params);

	if (ret < 0)
		return ret;
	if (unlikely(ktls_tx_room(session, params, 1) == 0)) {
		_gnutls_debug_log("ktls: TX: key usage limit reached and this kernel cannot take new keys\n");
		return gnutls_assert_val(GNUTLS_E_RECORD_LIMIT_REACHED);
	}
	return 0;
}

/* After sending: ask for a key update in time, the way
 * _gnutls_send_tlen_int() does for userspace records. */
static void ktls_tx_rekey_due(gnutls_session_t session,
			      record_parameters_st *params)
{
	if (params->write.sequence_number >= KTLS_REKEY_RECORDS &&
	    session->internals.rsend_state == RECORD_SEND_NORMAL &&
	    ktls_tx_key_has_limit(session, params) && ktls_kernel_can_rekey())
		session->internals.rsend_state = RECORD_SEND_KEY_UPDATE_1;
}

/* Records made by one sendmsg of bytes: the kernel closes a record when
 * it is full and at the end of the call. */
static void ktls_tx_count(gnutls_session_t session,
			  record_parameters_st *params, size_t bytes)
{
	params->write.sequence_number += bytes / KTLS_MAX_PLAINTEXT +
		(bytes % KTLS_MAX_PLAINTEXT != 0 || bytes == 0);
	ktls_tx_rekey_due(session, params);
}

/* After sendfile/splice, whose records follow the pages they move: take
 * the kernel's own count (getsockopt TLS_TX) where the key has a usage
 * limit, else estimate as for sendmsg (the count then only feeds
 * gnutls_record_get_state(), not worth a syscall per chunk). */
static void ktls_tx_resync(gnutls_session_t session,
			   record_parameters_st *params, size_t bytes)
{
	const struct ktls_cipher *c = _gnutls_ktls_cipher_find(params->cipher->id);
	uint8_t info[KTLS_CRYPTO_INFO_MAX];
	socklen_t len = sizeof(info);
	uint64_t seq;

	if (c != NULL && ktls_tx_key_has_limit(session, params) &&
	    getsockopt(ktls_fd(session, GNUTLS_KTLS_SEND), SOL_TLS, TLS_TX,
		       info, &len) == 0 &&
	    _gnutls_ktls_crypto_info_seq(c, info, len, &seq) == 0 &&
	    seq >= params->write.sequence_number) {
		params->write.sequence_number = seq;
		ktls_tx_rekey_due(session, params);
	} else {
		ktls_tx_count(session, params, bytes);
	}
	gnutls_memset(info, 0, sizeof(info));
}

/* A failed send to the kernel: the GnuTLS code, and after a fatal error
 * no more writes, as the userspace record layer does. */
static int ktls_tx_error(gnutls_session_t session, int err, const char *call)
{
	int ret = _gnutls_ktls_map_errno(err, GNUTLS_KTLS_SEND);

	session->internals.direction = 1;
	if (ktls_fatal(ret)) {
		_gnutls_debug_log("ktls: TX: %s: %s\n", call, strerror(err));
		session->internals.may_not_write = 1;
	}
	return gnutls_assert_val(ret);
}

/* A message of one buffer, with room for the record-type control
 * message when cbuf is given (for receiving; sending adds its own with
 * _gnutls_ktls_cmsg_put_type()). */
static void ktls_msg_init(struct msghdr *msg, struct iovec *iov, void *buf,
			  size_t size, unsigned char *cbuf)
{
	memset(msg, 0, sizeof(*msg));
	iov->iov_base = buf;
	iov->iov_len = size;
	msg->msg_iov = iov;
	msg->msg_iovlen = 1;
	if (cbuf != NULL) {
		msg->msg_control = cbuf;
		msg->msg_controllen = KTLS_CMSG_SPACE;
	}
}

/* One sendmsg of one record type: the bytes the kernel took, or the
 * GnuTLS error. */
static ssize_t ktls_sendmsg(gnutls_session_t session,
			    record_parameters_st *params, content_type_t type,
			    const void *data, size_t size)
{
	unsigned char cbuf[KTLS_CMSG_SPACE];
	struct iovec iov;
	struct msghdr msg;
	ssize_t ret;
	int flags = 0;

	ktls_msg_init(&msg, &iov, (void *)data, size, NULL);
	if (type != GNUTLS_APPLICATION_DATA)
		_gnutls_ktls_cmsg_put_type(&msg, cbuf, type);
	if (session->internals.flags & GNUTLS_NO_SIGNAL)
		flags |= MSG_NOSIGNAL;

	ret = sendmsg(ktls_fd(session, GNUTLS_KTLS_SEND), &msg, flags);
	if (ret < 0)
		return ktls_tx_error(session, errno, "sendmsg");

	_gnutls_record_log("REC[%p]: ktls: sent %s(%d), %zd of %zu bytes\n",
			   session, _gnutls_packet2str(type), (int)type,
			   ret, size);
	ktls_tx_count(session, params, ret);
	return ret;
}

/* The record the kernel did not take last time goes first.  Returns its
 * size once it is all sent (what gnutls_record_send() returns for a
 * buffered record), 0 when there is none, or a GnuTLS error (the rest
 * stays pending after GNUTLS_E_AGAIN/INTERRUPTED). */
static ssize_t ktls_tx_flush_pending(gnutls_session_t session,
				     record_parameters_st *params)
{
	struct ktls_st *k = &session->internals.ktls;
	mbuffer_st *p = k->tx_pending;
	ssize_t ret;

	/* the unsent rest is the udata; mark counts what went */
	while (p != NULL && _mbuffer_get_udata_size(p) > 0) {
		ret = ktls_sendmsg(session, params, p->type,
				   _mbuffer_get_udata_ptr(p),
				   _mbuffer_get_udata_size(p));
		if (ret < 0) {
			if (ktls_fatal(ret))
				_mbuffer_xfree(&k->tx_pending);
			return ret;
		}
		p->mark += ret;
	}
	if (p == NULL)
		return 0;
	ret = p->mark;
	_mbuffer_xfree(&k->tx_pending);
	return ret;
}

/* The kernel took nothing (GNUTLS_E_AGAIN/INTERRUPTED): as the userspace
 * record layer, keep the record (up to a record's worth of data) so that
 * the documented retry, gnutls_record_send(session, NULL, 0) or the same
 * call again, sends it and returns its size. */
static int ktls_tx_keep(gnutls_session_t session, content_type_t type,
			const void *data, size_t size, int err)
{
	struct ktls_st *k = &session->internals.ktls;

	size = MIN(size, KTLS_MAX_PLAINTEXT);
	k->tx_pending = _mbuffer_alloc_align16(size, 0);
	if (k->tx_pending == NULL)
		return gnutls_assert_val(GNUTLS_E_MEMORY_ERROR);
	_mbuffer_set_udata(k->tx_pending, (void *)data, size);
	k->tx_pending->type = type;
	return err;
}

ssize_t _gnutls_ktls_send(gnutls_session_t session,
			  record_parameters_st *params, content_type_t type,
			  const void *data, size_t data_size)
{
	ssize_t ret;
	size_t size;

	ret = ktls_tx_prepare(session, params);
	if (ret < 0)
		return ret;

	if (session->internals.ktls.tx_pending != NULL)
		return ktls_tx_flush_pending(session, params);
	if (data_size == 0)	/* nothing to send, nothing to resume */
		return gnutls_assert_val(GNUTLS_E_INVALID_REQUEST);

	size = ktls_tx_room(session, params, data_size);
	ret = ktls_sendmsg(session, params, type, data, size);
	if (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED)
		return ktls_tx_keep(session, type, data, size, ret);
	return ret;
}

/* Data corked with gnutls_record_cork() go first: in userspace the
 * file's data would join them, so the peer gets them in this order.
 * Under KTLS they are sent now, as gnutls_record_uncork() sends them;
 * the session stays corked for what follows. */
static bool ktls_tx_corked(gnutls_session_t session)
{
	return session->internals.rsend_state == RECORD_SEND_CORKED ||
	       session->internals.rsend_state == RECORD_SEND_CORKED_TO_KU;
}

static int ktls_tx_flush_corked(gnutls_session_t session,
				record_parameters_st *params)
{
	gnutls_buffer_st *b = &session->internals.record_presend_buffer;
	ssize_t ret;

	while (b->length > 0) {
		ret = _gnutls_ktls_send(session, params,
					GNUTLS_APPLICATION_DATA, b->data,
					b->length);
		if (ret < 0)
			return ret;
		b->data += ret;
		b->length -= ret;
	}
	return 0;
}

/* sendfile(2) and splice(2) take no MSG_NOSIGNAL.  With GNUTLS_NO_SIGNAL,
 * SIGPIPE is blocked in this thread around them, and one they raised is
 * taken away (a SIGPIPE that was pending before is left alone). */
struct ktls_nosignal {
	bool active;
	bool was_pending;
	sigset_t old;
};

static void ktls_nosignal_begin(gnutls_session_t session,
				struct ktls_nosignal *ns)
{
	sigset_t pipe_set, pending;

	ns->active = session->internals.flags & GNUTLS_NO_SIGNAL;
	if (!ns->active)
		return;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	ns->was_pending = sigpending(&pending) == 0 &&
			  sigismember(&pending, SIGPIPE) == 1;
	if (pthread_sigmask(SIG_BLOCK, &pipe_set, &ns->old) != 0)
		ns->active = false;
}

static void ktls_nosignal_end(struct ktls_nosignal *ns, bool epipe)
{
	sigset_t pipe_set;
	struct timespec zero = { 0, 0 };
	int saved = errno;

	if (!ns->active)
		return;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	if (epipe && !ns->was_pending)
		(void)sigtimedwait(&pipe_set, NULL, &zero);
	(void)pthread_sigmask(SIG_SETMASK, &ns->old, NULL);
	errno = saved;
}

/* One sendfile(2), or splice(2) from a pipe (which sendfile does not
 * read: what the socket does not take stays in the pipe). */
static ssize_t ktls_sendfile_once(gnutls_session_t session, int fd,
				  off_t *pos, size_t n, bool from_pipe)
{
	int sock = ktls_fd(session, GNUTLS_KTLS_SEND);
	struct ktls_nosignal ns;
	ssize_t ret;

	ktls_nosignal_begin(session, &ns);
	if (from_pipe)
		ret = splice(fd, NULL, sock, NULL, n, 0);
	else
		ret = sendfile(sock, fd, pos, n);
	ktls_nosignal_end(&ns, ret < 0 && errno == EPIPE);
	return ret;
}

/* A sendfile(2) or splice(2) that stopped short on a full socket can leave
 * its last bytes corked in TCP: the kernel hands every page but the last
 * of what it plans to move on with "more to come" (MSG_MORE), and Linux
 * before 6.5 (no splice_eof) sends nothing of it until the next send.  On
 * loopback, with a send buffer smaller than a segment, the socket then
 * never becomes writable again (seen on 6.1: 32 KiB stuck in Send-Q).
 * Clearing TCP_CORK pushes pending frames out; done only where the
 * application has not corked the socket itself. */
static void ktls_tcp_push(int sock)
{
	int cork = 1;
	socklen_t len = sizeof(cork);

	if (getsockopt(sock, SOL_TCP, TCP_CORK, &cork, &len) == 0 && cork == 0)
		(void)setsockopt(sock, SOL_TCP, TCP_CORK, &cork, sizeof(cork));
}

/* sendfile(2) through the kernel's TLS socket.  Returns what the kernel
 * took, even when it is less than count (non-blocking socket, signal,
 * the key's rekey point); GNUTLS_E_AGAIN/INTERRUPTED only when nothing
 * was taken. */
ssize_t _gnutls_ktls_send_file(gnutls_session_t session, int fd,
			       off_t *offset, size_t count)
{
	record_parameters_st *params;
	off_t pos = offset ? *offset : 0;
	bool from_pipe = false;
	size_t sent = 0, n;
	ssize_t ret;

	ret = _gnutls_epoch_get(session, EPOCH_WRITE_CURRENT, &params);
	if (ret < 0)
		return gnutls_assert_val(ret);
	if (session->internals.may_not_write || session->internals.invalid_connection)
		return gnutls_assert_val(GNUTLS_E_INVALID_SESSION);
	if (session->internals.rsend_state == RECORD_SEND_KEY_UPDATE_1) {
		/* due, as gnutls_record_send() would do it */
		ret = gnutls_session_key_update(session, 0);
		if (ret < 0)
			return gnutls_assert_val(ret);
		session->internals.rsend_state = RECORD_SEND_NORMAL;
		ret = _gnutls_epoch_get(session, EPOCH_WRITE_CURRENT, &params);
		if (ret < 0)
			return gnutls_assert_val(ret);
	}
	ret = ktls_tx_prepare(session, params);
	if (ret < 0)
		return ret;
	/* What is queued goes first: the corked data (a record kept after
	 * GNUTLS_E_AGAIN is their head, sent and taken off them by the
	 * first send), or else a kept record. */
	ret = ktls_tx_corked(session) ? ktls_tx_flush_corked(session, params) :
					ktls_tx_flush_pending(session, params);
	if (ret < 0)
		return ret;

	count = MIN(count, SSIZE_MAX);
	while (sent < count) {
		n = ktls_tx_room(session, params, count - sent);
		if (n == 0)
			break;	/* the key's usage limit or rekey point */
		ret = ktls_sendfile_once(session, fd, offset ? &pos : NULL, n,
					 from_pipe);
		if (ret == 0)
			break;	/* end of file */
		if (ret < 0) {
			int err = errno;
			struct stat st;

			if (err == EINVAL && !from_pipe && !offset &&
			    sent == 0 && fstat(fd, &st) == 0 &&
			    S_ISFIFO(st.st_mode)) {
				from_pipe = true;
				continue;
			}
			if (err == EAGAIN || err == EINTR)
				ktls_tcp_push(ktls_fd(session, GNUTLS_KTLS_SEND));
			if (sent > 0)
				break;	/* report what went; the error repeats */
			if (err == EINVAL || err == EBADF || err == ESPIPE ||
			    err == EOVERFLOW)
				return gnutls_assert_val(GNUTLS_E_FILE_ERROR);
			return ktls_tx_error(session, err,
					     from_pipe ? "splice" : "sendfile");
		}
		sent += ret;
		ktls_tx_resync(session, params, ret);
		if (session->internals.rsend_state == RECORD_SEND_KEY_UPDATE_1)
			break;	/* the rekey point: the next call rekeys */
	}

	if (offset)
		*offset = pos;
	if (sent == 0 && count > 0 && ktls_tx_room(session, params, 1) == 0)
		return gnutls_assert_val(GNUTLS_E_RECORD_LIMIT_REACHED);
	return sent;
}

/* --- receiving ---------------------------------------------------------- */

/* Whether a blocking read waits with a time limit (the record timeout of
 * gnutls_record_set_timeout()). */
static bool ktls_timed(gnutls_session_t session, unsigned ms)
{
	return ms != 0 && ms != GNUTLS_INDEFINITE_TIMEOUT &&
	       !(session->internals.flags & GNUTLS_NONBLOCK);
}

/* Wait until fd is readable, at most ms: 0, GNUTLS_E_TIMEDOUT, or the
 * error of poll(). */
static int ktls_wait_readable(int fd, unsigned ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int ret = poll(&pfd, 1, ms);

	if (ret == 0)
		return gnutls_assert_val(GNUTLS_E_TIMEDOUT);
	if (ret < 0)
		return gnutls_assert_val(_gnutls_ktls_map_errno(errno,
						GNUTLS_KTLS_RECV));
	return 0;
}

/* One recvmsg from the kernel: decrypted bytes of records of one type
 * (data records may be merged, a control record comes alone). */
static ssize_t ktls_recvmsg(gnutls_session_t session, void *buf,
			    size_t size, content_type_t *type,
			    unsigned int ms)
{
	unsigned char cbuf[KTLS_CMSG_SPACE];
	int fd = ktls_fd(session, GNUTLS_KTLS_RECV);
	struct iovec iov;
	struct msghdr msg;
	uint8_t t = GNUTLS_APPLICATION_DATA;
	ssize_t ret;
	int typed;

	ktls_msg_init(&msg, &iov, buf, size, cbuf);

	if (ktls_timed(session, ms)) {
		/* Try first, then wait.  Right after new RX keys, records
		 * already queued are not reported by poll() until more
		 * bytes arrive, but recvmsg() finds them. */
		ret = recvmsg(fd, &msg, MSG_DONTWAIT);
		if (ret < 0 && errno == EAGAIN) {
			ret = ktls_wait_readable(fd, ms);
			if (ret < 0)
				return ret;
			msg.msg_controllen = sizeof(cbuf);
			msg.msg_flags = 0;
			ret = recvmsg(fd, &msg, 0);
		}
	} else {
		ret = recvmsg(fd, &msg, 0);
	}
	if (ret < 0) {
		int err = errno;

		session->internals.direction = 0;
		if (err != EAGAIN && err != EINTR)
			_gnutls_debug_log("ktls: RX: recvmsg: %s\n", strerror(err));
		return gnutls_assert_val(_gnutls_ktls_map_errno(err, GNUTLS_KTLS_RECV));
	}

	typed = _gnutls_ktls_cmsg_get_type(&msg, &t);
	if (typed < 0 || (typed == 0 && ret > 0)) {
		/* bytes the kernel did not say the type of: not known to
		 * be authenticated data, and the stream is out of step */
		_gnutls_debug_log("ktls: RX: recvmsg gave %zd bytes without a record type\n",
				  ret);
		session_invalidate(session);
		return gnutls_assert_val(GNUTLS_E_PULL_ERROR);
	}
	if (typed == 0) {
		/* TCP EOF without close_notify: in the middle of a record
		 * (bytes of it still queued) or between records */
		int queued = 0;

		if (ioctl(fd, SIOCINQ, &queued) == 0 && queued > 0)
			return gnutls_assert_val(GNUTLS_E_UNEXPECTED_PACKET_LENGTH);
		return gnutls_assert_val(GNUTLS_E_PREMATURE_TERMINATION);
	}
	*type = t;
	return ret;
}

int _gnutls_ktls_recv_record(gnutls_session_t session,
			     record_parameters_st *params,
			     content_type_t *type, mbuffer_st **plain,
			     unsigned int ms)
{
	struct ktls_st *k = &session->internals.ktls;
	mbuffer_st *bufel;
	ssize_t ret;

	/* what the data fast path met in place of data */
	if (k->rx_stash_err) {
		ret = k->rx_stash_err;
		k->rx_stash_err = 0;
		return ret;
	}
	if (k->rx_stash) {
		*plain = k->rx_stash;
		*type = k->rx_stash->type;
		k->rx_stash = NULL;
		return _mbuffer_get_udata_size(*plain);
	}

	ret = ktls_sync(session, GNUTLS_KTLS_RECV, params);
	if (ret < 0)
		return ret;

	bufel = _mbuffer_alloc_align16(max_decrypted_size(session), 0);
	if (bufel == NULL)
		return gnutls_assert_val(GNUTLS_E_MEMORY_ERROR);

	ret = ktls_recvmsg(session, _mbuffer_get_udata_ptr(bufel),
			   max_decrypted_size(session), type, ms);
	if (ret < 0) {
		_mbuffer_xfree(&bufel);
		return ret;
	}
	_mbuffer_set_udata_size(bufel, ret);
	bufel->type = *type;
	*plain = bufel;

	_gnutls_record_log("REC[%p]: ktls: received %s(%d) with length %zd\n",
			   session, _gnutls_packet2str(*type), (int)*type, ret);
	return ret;
}

/* Peek at the next record without taking it (MSG_PEEK | MSG_DONTWAIT,
 * one byte): recvmsg's result, and *type set to the record's content
 * type when the kernel said it (-1 otherwise).  Peeking also makes the
 * kernel look at records already queued. */
static ssize_t ktls_peek(int fd, int *type)
{
	unsigned char cbuf[KTLS_CMSG_SPACE];
	struct msghdr msg;
	struct iovec iov;
	uint8_t t;
	ssize_t ret;
	char byte;

	ktls_msg_init(&msg, &iov, &byte, 1, cbuf);
	*type = -1;
	ret = recvmsg(fd, &msg, MSG_PEEK | MSG_DONTWAIT);
	if (ret >= 0 && _gnutls_ktls_cmsg_get_type(&msg, &t) == 1)
		*type = t;
	return ret;
}

/* After GnuTLS processed a record from the kernel.  When it was the
 * peer's KeyUpdate, GnuTLS now reads under new keys, and a kernel that
 * takes new keys holds every further record until it has them: give
 * them at once, not at the next read, since an application that polls
 * the socket before reading again would wait forever.  Then peek, so
 * that records already queued under the new keys become readable for
 * poll() (the kernel only looks at them when asked or when more bytes
 * arrive); an error the peek meets is the kernel's one report of it,
 * kept for the next read.  Returns 1 when the peek found a record: the
 * record layer reads it at once instead of returning GNUTLS_E_AGAIN for
 * the KeyUpdate, since the kernel does not report a queued record as
 * readable while it waits for the keys of a KeyUpdate the peek met
 * (KeyUpdates back to back). */
int _gnutls_ktls_after_record(gnutls_session_t session,
			      content_type_t rtype, size_t length)
{
	struct ktls_st *k = &session->internals.ktls;
	record_parameters_st *params;
	ssize_t ret;
	int type;

	if (_gnutls_ktls_watched(session, GNUTLS_KTLS_RECV)) {
		ktls_watch_recv(session, rtype, length);
		return 0;
	}
	if (_gnutls_epoch_get(session, EPOCH_READ_CURRENT, &params) < 0 ||
	    likely(params->epoch == k->rx_epoch))
		return 0;

	ret = ktls_sync(session, GNUTLS_KTLS_RECV, params);
	if (ret < 0)
		return ret;

	ret = ktls_peek(ktls_fd(session, GNUTLS_KTLS_RECV), &type);
	if (ret < 0) {
		if (errno != EAGAIN && errno != EINTR && k->rx_stash_err == 0) {
			_gnutls_debug_log("ktls: RX: after new keys: %s\n",
					  strerror(errno));
			k->rx_stash_err = _gnutls_ktls_map_errno(errno,
							GNUTLS_KTLS_RECV);
			return 1;	/* the error is there to read */
		}
		return 0;
	}
	return type >= 0;
}

/* Whether data records may skip the record layer (data fast path,
 * recv_file's splice): not while a handshake message is incomplete, since
 * application data must not come between its parts (RFC 8446, 5.1): the
 * generic path then reports the data record as unexpected. */
static bool ktls_rx_data_direct(gnutls_session_t session)
{
	return session->internals.handshake_recv_buffer_size == 0 &&
	    session->internals.handshake_header_recv_buffer.length == 0;
}

/* Application data straight into the caller's buffer.  Returns the bytes
 * received, a temporary error, or 0 when anything else arrived (a
 * control record or an error): it is then kept for
 * _gnutls_ktls_recv_record(), so that it takes the generic path.  Only
 * used with buffers that hold any record whole. */
ssize_t _gnutls_ktls_recv_data(gnutls_session_t session, void *data,
			       size_t data_size, unsigned int ms)
{
	struct ktls_st *k = &session->internals.ktls;
	record_parameters_st *params;
	content_type_t type;
	ssize_t ret;

	if (data_size < KTLS_MAX_PLAINTEXT || k->rx_stash || k->rx_stash_err ||
	    !ktls_rx_data_direct(session))
		return 0;

	ret = _gnutls_epoch_get(session, EPOCH_READ_CURRENT, &params);
	if (ret < 0 || params->epoch != k->rx_epoch)
		return 0;	/* let the generic path handle key changes */

	ret = ktls_recvmsg(session, data, data_size, &type, ms);
	if (ret < 0) {
		if (!ktls_fatal(ret))
			return ret;
		k->rx_stash_err = ret;
		return 0;
	}
	if (type == GNUTLS_APPLICATION_DATA && ret > 0)
		return ret;

	k->rx_stash = _mbuffer_alloc_align16(ret, 0);
	if (k->rx_stash == NULL) {
		/* the record is taken from the kernel and cannot be kept:
		 * the session cannot go on */
		session_invalidate(session);
		return gnutls_assert_val(GNUTLS_E_MEMORY_ERROR);
	}
	_mbuffer_set_udata(k->rx_stash, data, ret);
	k->rx_stash->type = type;
	return 0;
}

/* --- receiving into a file descriptor: gnutls_record_recv_file() ------- */

/* splice(2) from a kernel TLS socket moves at most one record per call,
 * which the kernel holds in at most MAX_SKB_FRAGS (17) pages, i.e. pipe
 * slots.  Some kernels (6.1 among them) lose the rest of a record that
 * did not fit into the pipe, so the pipe must always have room for the
 * next record whole: it takes pipe_records records, then it is emptied.
 * It is sized to what is wanted (KTLS_PIPE_RECORDS) and smaller when the
 * per-user pipe budget (fs.pipe-user-pages-soft) is short; a pipe that
 * cannot hold one record whole is not used: recv + write then. */
#define KTLS_RECORD_SLOTS 17
#define KTLS_PIPE_RECORDS 14
#define KTLS_PIPE_MIN (128 * 1024)

static void ktls_pipe_open(struct ktls_st *k)
{
	long page = sysconf(_SC_PAGESIZE), slots;
	int size;

	if (k->pipe_state != KTLS_PIPE_NONE)
		return;
	k->pipe_state = KTLS_PIPE_UNUSABLE;
	if (page <= 0)
		page = 4096;
	/* blocking: a non-blocking pipe would make splice(2) into a
	 * blocking output file descriptor non-blocking too */
	if (pipe2(k->pipe_fd, O_CLOEXEC) < 0) {
		_gnutls_debug_log("ktls: recv_file: pipe: %s\n",
				  strerror(errno));
		return;
	}
	for (size = 1024 * 1024; size >= KTLS_PIPE_MIN; size /= 2)
		if (fcntl(k->pipe_fd[1], F_SETPIPE_SZ, size) >= 0)
			break;
	slots = fcntl(k->pipe_fd[1], F_GETPIPE_SZ);
	slots = slots > 0 ? slots / page : 0;
	if (slots < KTLS_RECORD_SLOTS) {
		_gnutls_debug_log("ktls: recv_file: the pipe holds %ld pages, not a record: no splice\n",
				  slots);
		close(k->pipe_fd[0]);
		close(k->pipe_fd[1]);
		return;
	}
	k->pipe_records = slots / KTLS_RECORD_SLOTS > 1 ?
	    MIN(slots / KTLS_RECORD_SLOTS - 1, KTLS_PIPE_RECORDS) : 1;
	k->pipe_state = KTLS_PIPE_OPEN;
}

/* Whether gnutls_record_recv_file() may splice from the socket: only
 * when nothing else is due first (buffered data, a record or error met
 * by the data fast path, new keys, a pending handshake state, EOF). */
static bool ktls_can_splice(gnutls_session_t session)
{
	const struct ktls_st *k = &session->internals.ktls;
	record_parameters_st *params;

	/* ktls = auto: recvmsg + write costs less than splice (make bench:
	 * x0.91 the receiver's CPU on Linux 6.1 and 7.2, where splice
	 * decrypts into freshly zeroed pages) */
	return IS_KTLS_ENABLED(session, GNUTLS_KTLS_RECV) && !k->adaptive &&
	    session->internals.initial_negotiation_completed &&
	    session->internals.recv_state == RECV_STATE_0 &&
	    !session->internals.read_eof &&
	    !session->internals.invalid_connection &&
	    !session->internals.may_not_read &&
	    _gnutls_record_buffer_get_size(session) == 0 &&
	    k->rx_stash == NULL && k->rx_stash_err == 0 &&
	    ktls_rx_data_direct(session) &&
	    _gnutls_epoch_get(session, EPOCH_READ_CURRENT, &params) == 0 &&
	    params->epoch == k->rx_epoch;
}

/* read(2) exactly n bytes */
static ssize_t ktls_read_all(int fd, void *buf, size_t n)
{
	size_t r = 0;
	ssize_t ret;

	while (r < n) {
		ret = read(fd, (char *)buf + r, n - r);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret <= 0)
			return -1;
		r += ret;
	}
	return r;
}

/* Empty the pipe (n bytes) into fd.  Returns the bytes written; on a
 * failure the rest goes back to the session (_gnutls_recv_file_unread())
 * and *err is the errno. */
static size_t ktls_pipe_drain(gnutls_session_t session, int fd,
			      off_t *pos, size_t n, int *err)
{
	struct ktls_st *k = &session->internals.ktls;
	loff_t off = pos ? *pos : 0;
	size_t out = 0;
	mbuffer_st *bufel;
	ssize_t ret;

	while (out < n) {
		ret = splice(k->pipe_fd[0], NULL, fd, pos ? &off : NULL,
			     n - out, SPLICE_F_MOVE);
		if (ret > 0) {
			out += ret;
			continue;
		}
		*err = ret == 0 ? EIO : errno;
		break;
	}
	if (pos)
		*pos = off;
	if (out == n)
		return out;

	/* Some files take no splice(2) (O_APPEND, some file systems):
	 * write what is left from a buffer, which also keeps anything
	 * that cannot be written for the next call. */
	bufel = _mbuffer_alloc_align16(n - out, 0);
	if (bufel == NULL ||
	    ktls_read_all(k->pipe_fd[0], _mbuffer_get_udata_ptr(bufel),
			  n - out) < 0) {
		/* the bytes cannot be kept: the session cannot go on */
		_gnutls_debug_log("ktls: recv_file: %zu bytes lost\n", n - out);
		*err = bufel ? errno : ENOMEM;
		_mbuffer_xfree(&bufel);
		session_invalidate(session);
		return out;
	}
	_mbuffer_set_udata_size(bufel, n - out);
	if (*err == EINVAL) {
		size_t w = _gnutls_recv_file_write(fd, pos,
				_mbuffer_get_udata_ptr(bufel), n - out, err);

		out += w;
		if (out == n) {
			_mbuffer_xfree(&bufel);
			return out;
		}
		bufel->mark = w;
	}
	_gnutls_recv_file_unread(session, bufel);
	return out;
}

/* What a failed splice(2) from the socket means: 0 when the generic
 * path is to take over, else the GnuTLS error.  The kernel reports a
 * broken record or connection (EBADMSG, EMSGSIZE, ECONNRESET, ...) once,
 * to the call that meets it, so that error is the answer.  The generic
 * path takes over at EOF, for a control record (splice refuses those
 * with EINVAL and leaves them queued, which a peek tells apart from a
 * record header the kernel rejected with EINVAL), and when memory ran
 * short (the record is still queued, or the error that followed is). */
static int ktls_splice_error(gnutls_session_t session, int sock, int err)
{
	int type;

	if (err == 0 || err == ENOMEM || err == ENOBUFS)
		return 0;
	if (err == EINVAL) {
		if (ktls_peek(sock, &type) < 0) {
			if (errno != EAGAIN && errno != EINTR)
				err = errno;	/* met (and took) the error */
		} else if (type >= 0 && type != GNUTLS_APPLICATION_DATA) {
			return 0;
		}
	}
	_gnutls_debug_log("ktls: RX: splice: %s\n", strerror(err));
	return gnutls_assert_val(_gnutls_ktls_map_errno(err, GNUTLS_KTLS_RECV));
}

/* Before the first blocking splice of a call: GNUTLS_E_AGAIN for
 * non-blocking sockets, the session's record timeout when it has one. */
static int ktls_splice_wait(gnutls_session_t session, int sock)
{
	int fl = fcntl(sock, F_GETFL);

	if ((fl >= 0 && (fl & O_NONBLOCK)) ||
	    (session->internals.flags & GNUTLS_NONBLOCK))
		return gnutls_assert_val(GNUTLS_E_AGAIN);
	if (!ktls_timed(session, session->internals.record_timeout_ms))
		return 0;
	return ktls_wait_readable(sock, session->internals.record_timeout_ms);
}

/* gnutls_record_recv_file() under RX offload.  Returns the bytes
 * written, a temporary error, or 0 when the generic path is to take
 * over: a control record is next (splice(2) refuses those), EOF, an
 * error kept for it in rx_stash_err, or no usable pipe. */
ssize_t _gnutls_ktls_recv_file(gnutls_session_t session, int fd,
			       off_t *offset, size_t count)
{
	struct ktls_st *k = &session->internals.ktls;
	int sock = ktls_fd(session, GNUTLS_KTLS_RECV);
	unsigned flags = SPLICE_F_NONBLOCK, records;
	size_t done = 0, inpipe, w;
	int err = 0, werr = 0;
	bool stop = false;
	ssize_t ret;

	if (!ktls_can_splice(session))
		return 0;
	ktls_pipe_open(k);
	if (k->pipe_state != KTLS_PIPE_OPEN)
		return 0;

	while (done < count && !stop) {
		/* records into the pipe, as many as it takes whole */
		for (records = 0, inpipe = 0;
		     records < k->pipe_records && done + inpipe < count;) {
			ret = splice(sock, NULL, k->pipe_fd[1], NULL,
				     MIN(count - done - inpipe,
					 KTLS_MAX_PLAINTEXT), flags);
			if (ret > 0) {
				inpipe += ret;
				records++;
				flags = SPLICE_F_NONBLOCK;
				continue;
			}
			err = ret == 0 ? 0 : errno;
			if (err == EAGAIN && done + inpipe == 0 && flags != 0) {
				/* nothing yet: wait as gnutls_record_recv()
				 * would, then in splice() itself */
				ret = ktls_splice_wait(session, sock);
				if (ret < 0) {
					session->internals.direction = 0;
					return ret;
				}
				flags = 0;
				continue;
			}
			stop = true;
			if (err != EAGAIN && err != EINTR) {
				/* for the generic path, now or next time */
				k->rx_stash_err = ktls_splice_error(session,
								    sock, err);
			}
			break;
		}

		/* then into fd */
		if (inpipe == 0)
			continue;
		w = ktls_pipe_drain(session, fd, offset, inpipe, &werr);
		done += w;
		if (w < inpipe) {
			_gnutls_debug_log("ktls: recv_file: writing: %s\n",
					  strerror(werr));
			if (done > 0)
				return done;
			ret = _gnutls_recv_file_error(werr);
			errno = werr;
			return ret;
		}
	}
	_gnutls_record_log("REC[%p]: ktls: recv_file: %zu bytes\n", session,
			   done);
	if (done > 0)
		return done;
	if (err == EAGAIN || err == EINTR) {
		session->internals.direction = 0;
		return gnutls_assert_val(_gnutls_ktls_map_errno(err, GNUTLS_KTLS_RECV));
	}
	return 0;
}

#endif /* ENABLE_KTLS */

/**
 * gnutls_transport_is_ktls_enabled:
 * @session: is a #gnutls_session_t type.
 *
 * Tells which directions of @session the kernel's TLS implementation
 * (KTLS) carries.  After the handshake, records are encrypted and sent
 * (%GNUTLS_KTLS_SEND) or received and decrypted (%GNUTLS_KTLS_RECV) by
 * the kernel when the system-wide configuration enables it (the
 * [global] key "ktls = true") or the session was initialized with
 * %GNUTLS_ENABLE_KTLS (unless the configuration says "ktls = false"),
 * and the kernel takes the negotiated TLS
 * version and cipher on the session's TCP socket; any direction it
 * does not take stays in userspace, with no difference to the
 * application.  Sessions with their own transport functions or over
 * DTLS are never offloaded.  An offloaded session is bound to its
 * socket: giving it another transport afterwards invalidates it.
 *
 * Returns: a combination of #gnutls_transport_ktls_enable_flags_t, 0
 *   when nothing is offloaded.
 *
 * Since: 3.7.3
 **/
gnutls_transport_ktls_enable_flags_t
gnutls_transport_is_ktls_enabled(gnutls_session_t session)
{
#ifdef ENABLE_KTLS
	return session->internals.ktls.enabled;
#else
	(void)session;
	return 0;
#endif
}
