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
 * Structure: one table of the AEADs the kernel takes (ktls_ciphers), one
 * builder from a GnuTLS record state to the kernel's crypto_info
 * (ktls_build_crypto_info), one place that hands keys to the kernel per
 * direction (ktls_install), one errno -> GnuTLS error mapping
 * (ktls_map_errno).  Deciding whether a direction can be offloaded
 * (ktls_offloadable) is separate from installing it; every "no" leaves
 * that direction in userspace and is logged at debug level.
 */

#include "gnutls_int.h"
#include "errors.h"
#include "record.h"
#include "mbuffers.h"
#include "constate.h"
#include "system.h"
#include "debug.h"
#include "system/ktls.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* gnutls_record_recv_file(), with or without KTLS */
static size_t recv_file_write(int fd, off_t *pos, const void *buf,
			      size_t n, int *err);
static void recv_file_unread(gnutls_session_t session, mbuffer_st *bufel);

#ifdef ENABLE_KTLS

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/sockios.h>
#include <linux/tls.h>

#ifndef SOL_TLS
# define SOL_TLS 282
#endif
#ifndef TCP_ULP
# define TCP_ULP 31
#endif

/* The largest TLS plaintext a record can carry (RFC 8446, 5.1). */
#define KTLS_MAX_PLAINTEXT 16384

/* TLS 1.3 AEAD usage limits under TX offload (RFC 8446, 5.5).  The kernel
 * counts its records itself, so the backend estimates them in the write
 * state's sequence number (what gnutls_record_get_state() reports): one
 * per 2^14 bytes of each send, at least one per send.  Like the userspace
 * record layer, ask for a key update after 2^24 - 3 records; where the
 * kernel cannot take new keys, stop sending at 2^24.5 records (the
 * AES-GCM limit) rather than exceed it.  Ciphers without a limit
 * (ChaCha20-Poly1305) and sessions with GNUTLS_NO_AUTO_REKEY are exempt,
 * as in userspace.  Each new TLS 1.3 key starts again at 0. */
#define KTLS_REKEY_RECORDS UINT64_C(0xfffffd)
#define KTLS_MAX_RECORDS UINT64_C(23726566)

/* --- the ciphers ------------------------------------------------------- */

/* The kernel's crypto_info for every AEAD it takes is laid out as
 *	struct tls_crypto_info | iv | key | salt | rec_seq
 * with sizes that depend only on the cipher.  "iv" is the part of the
 * nonce after the salt: the TLS 1.3 / ChaCha20 static IV without its
 * first salt_size bytes, or the TLS 1.2 explicit nonce. */
struct ktls_cipher {
	gnutls_cipher_algorithm_t id;
	uint16_t kernel_id;	/* TLS_CIPHER_* */
	uint8_t iv_size;
	uint8_t key_size;
	uint8_t salt_size;
	uint8_t info_size;	/* sizeof the kernel's struct, as a check */
};

#define KTLS_CIPHER(gid, kname, kstruct) \
	{ gid, TLS_CIPHER_##kname, TLS_CIPHER_##kname##_IV_SIZE, \
	  TLS_CIPHER_##kname##_KEY_SIZE, TLS_CIPHER_##kname##_SALT_SIZE, \
	  sizeof(struct kstruct) }

static const struct ktls_cipher ktls_ciphers[] = {
	KTLS_CIPHER(GNUTLS_CIPHER_AES_128_GCM, AES_GCM_128,
		    tls12_crypto_info_aes_gcm_128),
	KTLS_CIPHER(GNUTLS_CIPHER_AES_256_GCM, AES_GCM_256,
		    tls12_crypto_info_aes_gcm_256),
	KTLS_CIPHER(GNUTLS_CIPHER_AES_128_CCM, AES_CCM_128,
		    tls12_crypto_info_aes_ccm_128),
#ifdef TLS_CIPHER_CHACHA20_POLY1305
	KTLS_CIPHER(GNUTLS_CIPHER_CHACHA20_POLY1305, CHACHA20_POLY1305,
		    tls12_crypto_info_chacha20_poly1305),
#endif
};

#define KTLS_SEQ_SIZE 8
#define KTLS_CRYPTO_INFO_MAX 64

static const struct ktls_cipher *ktls_cipher_find(gnutls_cipher_algorithm_t id)
{
	unsigned i;

	for (i = 0; i < sizeof(ktls_ciphers) / sizeof(ktls_ciphers[0]); i++)
		if (ktls_ciphers[i].id == id)
			return &ktls_ciphers[i];
	return NULL;
}

/* Builds the crypto_info for one direction from its GnuTLS record state.
 * TLS 1.2 AES-GCM/CCM keep only the salt as IV (st->iv_size == salt);
 * the kernel then derives the explicit nonce from the sequence number, as
 * GnuTLS does.  TLS 1.3 and ChaCha20 keep the whole static IV. */
static int ktls_build_crypto_info(const struct ktls_cipher *c,
				  uint16_t tls_version,
				  const record_state_st *st,
				  uint8_t out[KTLS_CRYPTO_INFO_MAX],
				  size_t *out_size)
{
	struct tls_crypto_info info;
	uint8_t seq[KTLS_SEQ_SIZE];
	uint8_t *p = out;

	if (st->key_size != c->key_size)
		return gnutls_assert_val(GNUTLS_E_INTERNAL_ERROR);

	memset(&info, 0, sizeof(info));
	info.version = tls_version;
	info.cipher_type = c->kernel_id;
	_gnutls_write_uint64(st->sequence_number, seq);

	memcpy(p, &info, sizeof(info));
	p += sizeof(info);
	if (st->iv_size == (unsigned)c->salt_size + c->iv_size)
		memcpy(p, st->iv + c->salt_size, c->iv_size);
	else if (st->iv_size == c->salt_size && c->iv_size == KTLS_SEQ_SIZE)
		memcpy(p, seq, c->iv_size);
	else
		return gnutls_assert_val(GNUTLS_E_INTERNAL_ERROR);
	p += c->iv_size;
	memcpy(p, st->key, c->key_size);
	p += c->key_size;
	memcpy(p, st->iv, c->salt_size);
	p += c->salt_size;
	memcpy(p, seq, KTLS_SEQ_SIZE);
	p += KTLS_SEQ_SIZE;

	*out_size = p - out;
	if (*out_size != c->info_size)
		return gnutls_assert_val(GNUTLS_E_INTERNAL_ERROR);
	return 0;
}

/* --- errors -------------------------------------------------------------- */

/* What a userspace session returns for the same condition. */
static int ktls_map_errno(int err, unsigned dir)
{
	switch (err) {
	case EAGAIN:
#if EWOULDBLOCK != EAGAIN
	case EWOULDBLOCK:
#endif
		return GNUTLS_E_AGAIN;
	case EINTR:
		return GNUTLS_E_INTERRUPTED;
	case EBADMSG:		/* record failed authentication */
		return GNUTLS_E_DECRYPTION_FAILED;
	case EMSGSIZE:		/* record larger than 2^14 + expansion */
		return GNUTLS_E_RECORD_OVERFLOW;
	case EINVAL:		/* record header with another version */
		return dir == GNUTLS_KTLS_RECV ?
			GNUTLS_E_UNSUPPORTED_VERSION_PACKET : GNUTLS_E_PUSH_ERROR;
	case ECONNRESET:
		return GNUTLS_E_PREMATURE_TERMINATION;
	default:
		return dir == GNUTLS_KTLS_RECV ?
			GNUTLS_E_PULL_ERROR : GNUTLS_E_PUSH_ERROR;
	}
}

static inline int ktls_fatal(int ret)
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

/* The one place that hands keys to the kernel, for the initial install
 * and for a TLS 1.3 key update alike. */
static int ktls_install(gnutls_session_t session, unsigned dir,
			record_parameters_st *params)
{
	const version_entry_st *vers = get_version(session);
	const struct ktls_cipher *c = ktls_cipher_find(params->cipher->id);
	const record_state_st *st = dir == GNUTLS_KTLS_RECV ?
				    &params->read : &params->write;
	uint8_t info[KTLS_CRYPTO_INFO_MAX];
	size_t info_size;
	int ret, err = 0;

	if (c == NULL || vers == NULL)
		return gnutls_assert_val(GNUTLS_E_INTERNAL_ERROR);

	ret = ktls_build_crypto_info(c,
				     vers->tls13_sem ? TLS_1_3_VERSION :
						       TLS_1_2_VERSION,
				     st, info, &info_size);
	if (ret < 0)
		return ret;

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
		session->internals.ktls.rx_epoch = params->epoch;
		ktls_expect_no_pad(session, vers);
	} else {
		session->internals.ktls.tx_epoch = params->epoch;
	}
	session->internals.ktls.enabled |= dir;
	return 0;
}

/* Before each kernel I/O: if GnuTLS moved to new keys (a TLS 1.3 key
 * update), the kernel must get them first.  Kernels before 6.14 cannot
 * change keys; the session then ends with a clear error rather than
 * misreading or sending records under the wrong keys. */
static int ktls_sync(gnutls_session_t session, unsigned dir,
		     record_parameters_st *params)
{
	uint16_t installed = dir == GNUTLS_KTLS_RECV ?
			     session->internals.ktls.rx_epoch :
			     session->internals.ktls.tx_epoch;
	int ret;

	if (likely(params->epoch == installed))
		return 0;

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
		session->internals.vec_push_func == system_writev_nosignal) &&
	       session->internals.pull_timeout_func ==
		       gnutls_system_recv_timeout;
}

/* Why one direction cannot go to the kernel, or NULL. */
static const char *ktls_dir_unsuitable(gnutls_session_t session, unsigned dir)
{
	if (!ktls_is_tcp_socket(ktls_fd(session, dir)))
		return "transport is not a TCP socket";
	if (dir == GNUTLS_KTLS_RECV) {
		/* bytes of a record not yet processed are no longer in the
		 * socket: the kernel would miss them */
		if (session->internals.record_recv_buffer.byte_length != 0)
			return "undecrypted bytes buffered";
		return NULL;
	}
	if (session->internals.record_send_buffer.byte_length != 0)
		return "unsent records buffered";
	/* the kernel fills records up to 2^14 bytes (RFC 8449 limit) */
	if (session->security_parameters.max_record_send_size <
	    KTLS_MAX_PLAINTEXT)
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
	else if (!ktls_default_transport(session))
		why = "custom transport functions";
	else if (vers == NULL ||
		 (vers->id != GNUTLS_TLS1_2 && vers->id != GNUTLS_TLS1_3))
		why = "protocol version";
	else if (ktls_cipher_find(rparams->cipher->id) == NULL ||
		 ktls_cipher_find(wparams->cipher->id) == NULL)
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

/* Whether KTLS is wanted for this session: the system configuration
 * decides when it has a "ktls" key, else the session's flag. */
static bool ktls_wanted(gnutls_session_t session)
{
	switch (_gnutls_config_get_ktls()) {
	case _GNUTLS_CONFIG_KTLS_ON:
		return true;
	case _GNUTLS_CONFIG_KTLS_OFF:
		return false;
	default:
		return session->internals.flags & GNUTLS_ENABLE_KTLS;
	}
}

void _gnutls_ktls_enable(gnutls_session_t session)
{
	record_parameters_st *rparams, *wparams;
	unsigned dirs, dir;
	int ret;

	if (session->internals.ktls.enabled || !ktls_wanted(session))
		return;

	if (_gnutls_epoch_get(session, EPOCH_READ_CURRENT, &rparams) < 0 ||
	    _gnutls_epoch_get(session, EPOCH_WRITE_CURRENT, &wparams) < 0) {
		gnutls_assert();
		return;
	}

	dirs = ktls_offloadable(session, rparams, wparams);
	for (dir = GNUTLS_KTLS_RECV; dir <= GNUTLS_KTLS_SEND; dir <<= 1) {
		if (!(dirs & dir))
			continue;
		ret = ktls_attach_ulp(ktls_fd(session, dir));
		if (ret < 0) {
			_gnutls_debug_log("ktls: %s: no \"tls\" ULP on the socket: %s\n",
					  ktls_dir_name(dir), strerror(-ret));
			continue;
		}
		ret = ktls_install(session, dir,
				   dir == GNUTLS_KTLS_RECV ? rparams : wparams);
		if (ret < 0)
			gnutls_assert();
	}

	_gnutls_debug_log("ktls: session %p (%s): TX %s, RX %s\n", session,
			  wparams->cipher->name,
			  IS_KTLS_ENABLED(session, GNUTLS_KTLS_SEND) ? "kernel" : "userspace",
			  IS_KTLS_ENABLED(session, GNUTLS_KTLS_RECV) ? "kernel" : "userspace");
}

void _gnutls_ktls_deinit(gnutls_session_t session)
{
	struct ktls_st *k = &session->internals.ktls;

	_mbuffer_xfree(&k->rx_stash);
	if (k->pipe_records) {
		close(k->pipe_fd[0]);
		close(k->pipe_fd[1]);
		k->pipe_records = 0;
	}
}

/* Whether the running kernel takes new keys on a TLS 1.3 socket that
 * already has some (TLS_TX/TLS_RX set again): Linux 6.14 and later. */
static bool ktls_kernel_can_rekey(void)
{
	static int cached = -1;	/* the same answer for every thread */
	struct utsname u;
	unsigned major, minor;

	if (cached < 0)
		cached = uname(&u) == 0 &&
			 sscanf(u.release, "%u.%u", &major, &minor) == 2 &&
			 (major > 6 || (major == 6 && minor >= 14));
	return cached;
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

static bool ktls_tx_limited(gnutls_session_t session,
			    record_parameters_st *params)
{
	const version_entry_st *vers = get_version(session);

	return vers && vers->tls13_sem &&
	       !(session->internals.flags & GNUTLS_NO_AUTO_REKEY) &&
	       !(params->cipher->flags & GNUTLS_CIPHER_FLAG_NO_REKEY);
}

/* Before sending: refuse to go past the usage limit of the key. */
static int ktls_tx_check_limit(gnutls_session_t session,
			       record_parameters_st *params)
{
	if (unlikely(params->write.sequence_number >= KTLS_MAX_RECORDS) &&
	    ktls_tx_limited(session, params)) {
		_gnutls_debug_log("ktls: TX: key usage limit reached and this kernel cannot take new keys\n");
		return gnutls_assert_val(GNUTLS_E_RECORD_LIMIT_REACHED);
	}
	return 0;
}

/* A failed send to the kernel: the GnuTLS code, and after a fatal error
 * no more writes, as the userspace record layer does. */
static int ktls_tx_error(gnutls_session_t session, int err, const char *call)
{
	int ret = ktls_map_errno(err, GNUTLS_KTLS_SEND);

	session->internals.direction = 1;
	if (ktls_fatal(ret)) {
		_gnutls_debug_log("ktls: TX: %s: %s\n", call, strerror(err));
		session->internals.may_not_write = 1;
	}
	return gnutls_assert_val(ret);
}

/* Before sending: the kernel has the current keys, and the key is
 * within its usage limit. */
static int ktls_tx_prepare(gnutls_session_t session,
			   record_parameters_st *params)
{
	int ret = ktls_sync(session, GNUTLS_KTLS_SEND, params);

	if (ret < 0)
		return ret;
	return ktls_tx_check_limit(session, params);
}

/* After sending: count the records and ask for a key update in time, the
 * way _gnutls_send_tlen_int() does for userspace records. */
static void ktls_tx_count(gnutls_session_t session,
			  record_parameters_st *params, size_t bytes)
{
	uint64_t *seq = &params->write.sequence_number;

	*seq += bytes / KTLS_MAX_PLAINTEXT +
		(bytes % KTLS_MAX_PLAINTEXT != 0 || bytes == 0);
	if (*seq >= KTLS_REKEY_RECORDS &&
	    session->internals.rsend_state == RECORD_SEND_NORMAL &&
	    ktls_tx_limited(session, params) && ktls_kernel_can_rekey())
		session->internals.rsend_state = RECORD_SEND_KEY_UPDATE_1;
}

ssize_t _gnutls_ktls_send(gnutls_session_t session,
			  record_parameters_st *params, content_type_t type,
			  const void *data, size_t data_size)
{
	char cbuf[CMSG_SPACE(sizeof(unsigned char))];
	struct iovec iov;
	struct msghdr msg;
	ssize_t ret;
	int flags = 0;

	if (data_size == 0)
		return gnutls_assert_val(GNUTLS_E_INVALID_REQUEST);

	ret = ktls_tx_prepare(session, params);
	if (ret < 0)
		return ret;

	memset(&msg, 0, sizeof(msg));
	iov.iov_base = (void *)data;
	iov.iov_len = data_size;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (type != GNUTLS_APPLICATION_DATA) {
		struct cmsghdr *cmsg;

		memset(cbuf, 0, sizeof(cbuf));
		msg.msg_control = cbuf;
		msg.msg_controllen = sizeof(cbuf);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_TLS;
		cmsg->cmsg_type = TLS_SET_RECORD_TYPE;
		cmsg->cmsg_len = CMSG_LEN(sizeof(unsigned char));
		*CMSG_DATA(cmsg) = (unsigned char)type;
	}
	if (session->internals.flags & GNUTLS_NO_SIGNAL)
		flags |= MSG_NOSIGNAL;

	ret = sendmsg(ktls_fd(session, GNUTLS_KTLS_SEND), &msg, flags);
	if (ret < 0)
		return ktls_tx_error(session, errno, "sendmsg");

	_gnutls_record_log("REC[%p]: ktls: sent %s(%d), %zd of %zu bytes\n",
			   session, _gnutls_packet2str(type), (int)type,
			   ret, data_size);
	ktls_tx_count(session, params, ret);
	return ret;
}

/* sendfile(2) through the kernel's TLS socket.  Returns what the kernel
 * took, even when it is less than count (non-blocking socket, signal);
 * GNUTLS_E_AGAIN/INTERRUPTED only when nothing was taken. */
ssize_t _gnutls_ktls_send_file(gnutls_session_t session, int fd,
			       off_t *offset, size_t count)
{
	record_parameters_st *params;
	off_t pos = offset ? *offset : 0;
	bool from_pipe = false;
	size_t sent = 0;
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

	while (sent < count) {
		/* sendfile moves at most 0x7ffff000 bytes per call; a pipe
		 * (which sendfile does not read) is spliced: what the socket
		 * does not take stays in the pipe */
		if (from_pipe)
			ret = splice(fd, NULL, ktls_fd(session, GNUTLS_KTLS_SEND),
				     NULL, MIN(count - sent, (size_t)0x7ffff000),
				     0);
		else
			ret = sendfile(ktls_fd(session, GNUTLS_KTLS_SEND), fd,
				       offset ? &pos : NULL,
				       MIN(count - sent, (size_t)0x7ffff000));
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
			if (sent > 0)
				break;	/* report what went; the error repeats */
			if (err == EINVAL || err == EBADF || err == ESPIPE ||
			    err == EOVERFLOW)
				return gnutls_assert_val(GNUTLS_E_FILE_ERROR);
			return ktls_tx_error(session, err,
					     from_pipe ? "splice" : "sendfile");
		}
		sent += ret;
	}

	if (offset)
		*offset = pos;
	ktls_tx_count(session, params, sent);
	return sent;
}

/* --- receiving ---------------------------------------------------------- */

/* One recvmsg from the kernel: decrypted bytes of records of one type
 * (data records may be merged, a control record comes alone). */
static ssize_t ktls_recvmsg(gnutls_session_t session, void *buf,
			    size_t size, content_type_t *type,
			    unsigned int ms)
{
	char cbuf[CMSG_SPACE(sizeof(unsigned char))];
	int fd = ktls_fd(session, GNUTLS_KTLS_RECV);
	struct cmsghdr *cmsg;
	struct iovec iov;
	struct msghdr msg;
	bool typed = false;
	ssize_t ret;

	memset(&msg, 0, sizeof(msg));
	iov.iov_base = buf;
	iov.iov_len = size;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf;
	msg.msg_controllen = sizeof(cbuf);

	if (ms && ms != GNUTLS_INDEFINITE_TIMEOUT &&
	    !(session->internals.flags & GNUTLS_NONBLOCK)) {
		/* With a timeout: try first, then wait.  Right after new RX
		 * keys, records already queued are not reported by poll()
		 * until more bytes arrive, but recvmsg() finds them. */
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		ret = recvmsg(fd, &msg, MSG_DONTWAIT);
		if (ret >= 0 || errno != EAGAIN)
			goto done;
		ret = poll(&pfd, 1, ms);
		if (ret == 0)
			return gnutls_assert_val(GNUTLS_E_TIMEDOUT);
		if (ret < 0)
			return gnutls_assert_val(ktls_map_errno(errno,
						 GNUTLS_KTLS_RECV));
		msg.msg_controllen = sizeof(cbuf);
		msg.msg_flags = 0;
	}

	ret = recvmsg(fd, &msg, 0);
 done:
	if (ret < 0) {
		int err = errno;

		session->internals.direction = 0;
		if (err != EAGAIN && err != EINTR)
			_gnutls_debug_log("ktls: RX: recvmsg: %s\n", strerror(err));
		return gnutls_assert_val(ktls_map_errno(err, GNUTLS_KTLS_RECV));
	}

	*type = GNUTLS_APPLICATION_DATA;
	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
		if (cmsg->cmsg_level == SOL_TLS &&
		    cmsg->cmsg_type == TLS_GET_RECORD_TYPE) {
			*type = *CMSG_DATA(cmsg);
			typed = true;
		}
	}

	if (ret == 0 && !typed) {
		/* TCP EOF without close_notify: in the middle of a record
		 * (bytes of it still queued) or between records */
		int queued = 0;

		if (ioctl(fd, SIOCINQ, &queued) == 0 && queued > 0)
			return gnutls_assert_val(GNUTLS_E_UNEXPECTED_PACKET_LENGTH);
		return gnutls_assert_val(GNUTLS_E_PREMATURE_TERMINATION);
	}
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
	char cbuf[CMSG_SPACE(sizeof(unsigned char))];
	struct cmsghdr *cmsg;
	struct msghdr msg;
	struct iovec iov;
	ssize_t ret;
	char byte;

	memset(&msg, 0, sizeof(msg));
	iov.iov_base = &byte;
	iov.iov_len = 1;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf;
	msg.msg_controllen = sizeof(cbuf);
	*type = -1;
	ret = recvmsg(fd, &msg, MSG_PEEK | MSG_DONTWAIT);
	if (ret < 0)
		return ret;
	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg))
		if (cmsg->cmsg_level == SOL_TLS &&
		    cmsg->cmsg_type == TLS_GET_RECORD_TYPE)
			*type = *CMSG_DATA(cmsg);
	return ret;
}

/* After GnuTLS processed a record from the kernel.  When it was the
 * peer's KeyUpdate, GnuTLS now reads under new keys, and a kernel that
 * takes new keys holds every further record until it has them: give
 * them at once, not at the next read, since an application that polls
 * the socket before reading again would wait forever.  Then peek, so
 * that records already queued under the new keys become readable for
 * poll() (the kernel only looks at them when asked or when more bytes
 * arrive). */
int _gnutls_ktls_recv_done(gnutls_session_t session)
{
	record_parameters_st *params;
	int ret, type;

	if (_gnutls_epoch_get(session, EPOCH_READ_CURRENT, &params) < 0 ||
	    likely(params->epoch == session->internals.ktls.rx_epoch))
		return 0;

	ret = ktls_sync(session, GNUTLS_KTLS_RECV, params);
	if (ret < 0)
		return ret;

	(void)ktls_peek(ktls_fd(session, GNUTLS_KTLS_RECV), &type);
	return 0;
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
	if (k->rx_stash == NULL)
		return gnutls_assert_val(GNUTLS_E_MEMORY_ERROR);
	_mbuffer_set_udata(k->rx_stash, data, ret);
	k->rx_stash->type = type;
	return 0;
}

/* --- receiving into a file descriptor: gnutls_record_recv_file() ------- */

/* splice(2) from a kernel TLS socket moves at most one record per call,
 * which the kernel holds in at most MAX_SKB_FRAGS (17) pages, i.e. pipe
 * slots.  Some kernels (6.1 among them) lose the rest of a record that
 * did not fit into the pipe, so the pipe always has room for the next
 * record whole: it takes pipe_records records, then it is emptied. */
#define KTLS_PIPE_SIZE (1024 * 1024)
#define KTLS_RECORD_SLOTS 17

static int ktls_pipe_open(struct ktls_st *k)
{
	long slots;

	if (k->pipe_records)
		return 0;
	/* blocking: a non-blocking pipe would make splice(2) into a
	 * blocking output file descriptor non-blocking too */
	if (pipe2(k->pipe_fd, O_CLOEXEC) < 0) {
		_gnutls_debug_log("ktls: recv_file: pipe: %s\n",
				  strerror(errno));
		return gnutls_assert_val(GNUTLS_E_FILE_ERROR);
	}
	(void)fcntl(k->pipe_fd[1], F_SETPIPE_SZ, KTLS_PIPE_SIZE);
	slots = fcntl(k->pipe_fd[1], F_GETPIPE_SZ);
	slots = slots > 0 ? slots / 4096 : 16;
	k->pipe_records = slots / KTLS_RECORD_SLOTS > 1 ?
	    slots / KTLS_RECORD_SLOTS - 1 : 1;
	return 0;
}

/* Whether gnutls_record_recv_file() may splice from the socket: only
 * when nothing else is due first (buffered data, a record or error met
 * by the data fast path, new keys, a pending handshake state, EOF). */
static bool ktls_can_splice(gnutls_session_t session)
{
	const struct ktls_st *k = &session->internals.ktls;
	record_parameters_st *params;

	return IS_KTLS_ENABLED(session, GNUTLS_KTLS_RECV) &&
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

/* Wait for the socket before a blocking splice: GNUTLS_E_AGAIN for
 * non-blocking sockets, the session's record timeout when it has one. */
static int ktls_splice_wait(gnutls_session_t session, int sock)
{
	unsigned ms = session->internals.record_timeout_ms;
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	int fl = fcntl(sock, F_GETFL);
	int ret;

	if ((fl >= 0 && (fl & O_NONBLOCK)) ||
	    (session->internals.flags & GNUTLS_NONBLOCK))
		return gnutls_assert_val(GNUTLS_E_AGAIN);
	if (ms == 0 || ms == GNUTLS_INDEFINITE_TIMEOUT)
		return 0;
	ret = poll(&pfd, 1, ms);
	if (ret == 0)
		return gnutls_assert_val(GNUTLS_E_TIMEDOUT);
	if (ret < 0)
		return gnutls_assert_val(ktls_map_errno(errno, GNUTLS_KTLS_RECV));
	return 0;
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
 * failure the rest goes back to the session (recv_file_unread()) and
 * *err is the errno. */
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
		size_t w = recv_file_write(fd, pos,
				_mbuffer_get_udata_ptr(bufel), n - out, err);

		out += w;
		if (out == n) {
			_mbuffer_xfree(&bufel);
			return out;
		}
		bufel->mark = w;
	}
	recv_file_unread(session, bufel);
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
	return gnutls_assert_val(ktls_map_errno(err, GNUTLS_KTLS_RECV));
}

/* gnutls_record_recv_file() under RX offload.  Returns the bytes
 * written, a temporary error, or 0 when the generic path is to take
 * over: a control record is next (splice(2) refuses those), EOF, an
 * error kept for it in rx_stash_err, or no pipe to be had. */
static ssize_t ktls_recv_file(gnutls_session_t session, int fd,
			      off_t *offset, size_t count)
{
	struct ktls_st *k = &session->internals.ktls;
	int sock = ktls_fd(session, GNUTLS_KTLS_RECV);
	unsigned flags = SPLICE_F_NONBLOCK, records;
	size_t done = 0, inpipe, w;
	int err = 0, werr = 0;
	bool stop = false;
	ssize_t ret;

	if (ktls_pipe_open(k) < 0)
		return 0;	/* out of file descriptors: without splice */

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
			ret = gnutls_assert_val(werr == EINTR ?
						GNUTLS_E_INTERRUPTED :
						GNUTLS_E_FILE_ERROR);
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
		return gnutls_assert_val(ktls_map_errno(err, GNUTLS_KTLS_RECV));
	}
	return 0;
}

#endif /* ENABLE_KTLS */

/* Write n bytes to fd (at *pos, advanced, when pos is not NULL).
 * Returns the bytes written; *err is the errno when that is short. */
static size_t recv_file_write(int fd, off_t *pos, const void *buf,
			      size_t n, int *err)
{
	size_t w = 0;
	ssize_t ret;

	while (w < n) {
		if (pos)
			ret = pwrite(fd, (const char *)buf + w, n - w, *pos);
		else
			ret = write(fd, (const char *)buf + w, n - w);
		if (ret <= 0) {
			*err = ret == 0 ? EIO : errno;
			break;
		}
		w += ret;
		if (pos)
			*pos += ret;
	}
	return w;
}

/* Give application data that could not be written back to the session:
 * it is returned first by the next gnutls_record_recv() or
 * gnutls_record_recv_file(). */
static void recv_file_unread(gnutls_session_t session, mbuffer_st *bufel)
{
	bufel->type = GNUTLS_APPLICATION_DATA;
	_mbuffer_head_push_first(&session->internals.record_buffer, bufel);
}

/* gnutls_record_recv() and write(2): without RX offload, and under it
 * for what splice(2) cannot take. */
static ssize_t recv_file_copy(gnutls_session_t session, int fd,
			      off_t *offset, size_t count)
{
	size_t size = MIN(count, max_decrypted_size(session)), w;
	mbuffer_st *bufel;
	uint8_t *buf;
	ssize_t ret;
	int err = 0;

	buf = gnutls_malloc(size);
	if (buf == NULL)
		return gnutls_assert_val(GNUTLS_E_MEMORY_ERROR);
	ret = gnutls_record_recv(session, buf, size);
	if (ret <= 0)
		goto out;

	w = recv_file_write(fd, offset, buf, ret, &err);
	if (w < (size_t)ret) {
		_gnutls_debug_log("recv_file: writing: %s\n", strerror(err));
		bufel = _mbuffer_alloc_align16(ret - w, 0);
		if (bufel == NULL) {
			/* the bytes cannot be kept: the session cannot go on */
			session_invalidate(session);
			ret = gnutls_assert_val(GNUTLS_E_MEMORY_ERROR);
			goto out;
		}
		_mbuffer_set_udata(bufel, buf + w, ret - w);
		recv_file_unread(session, bufel);
		ret = w > 0 ? (ssize_t)w : gnutls_assert_val(err == EINTR ?
			GNUTLS_E_INTERRUPTED : GNUTLS_E_FILE_ERROR);
		gnutls_free(buf);
		errno = err;
		return ret;
	}
 out:
	gnutls_free(buf);
	return ret;
}

/**
 * gnutls_record_recv_file:
 * @session: is a #gnutls_session_t type.
 * @fd: file descriptor to write the received data to
 * @offset: where to write in @fd, advanced by the bytes written; %NULL
 *   to write at (and advance) the file position of @fd
 * @count: the most bytes to receive
 *
 * Receives application data like gnutls_record_recv() and writes them
 * to @fd, a regular file or a pipe.  When the kernel decrypts the
 * session's records (see gnutls_transport_is_ktls_enabled()) the data
 * move from the socket through a pipe into @fd with splice(2) and never
 * pass through a userspace buffer; otherwise they are received with
 * gnutls_record_recv() and written with write(2) or pwrite(2).  Both
 * give the same results.
 *
 * It returns once it wrote some data, at most @count bytes: what had
 * arrived up to then, not necessarily @count bytes.  Alerts, session
 * tickets, key updates and other messages that arrive meanwhile are
 * handled as gnutls_record_recv() handles them, with the same return
 * values (%GNUTLS_E_AGAIN, %GNUTLS_E_INTERRUPTED, %GNUTLS_E_REHANDSHAKE,
 * %GNUTLS_E_WARNING_ALERT_RECEIVED, ...).
 *
 * When @fd cannot take the data (a full disk, an I/O error, a closed or
 * full non-blocking pipe), the call returns what it wrote until then,
 * or %GNUTLS_E_FILE_ERROR (%GNUTLS_E_INTERRUPTED for %EINTR) with @errno
 * set by the failed write when it wrote nothing.  No data is lost:
 * bytes already taken from the session but not written stay in it and
 * are returned first by the next call of this function or
 * gnutls_record_recv().  A file that is opened with %O_APPEND or does
 * not take splice(2) is written from a buffer.  As with write(2), a
 * pipe without readers raises %SIGPIPE unless it is ignored.
 *
 * Under receive offload, when @count ends inside a record, the rest of
 * that record stays in the kernel: gnutls_record_check_pending() does
 * not count it, but the socket polls readable and the next call returns
 * it.
 *
 * Returns: the number of bytes written to @fd (then @offset, or the file
 *   position, has moved by as many), 0 when the peer closed the session
 *   (close_notify), or a negative error code.
 *
 * Since: 3.7.9 with gnutls-ktls (symbol version GNUTLS_KTLS_1)
 **/
ssize_t gnutls_record_recv_file(gnutls_session_t session, int fd,
				off_t *offset, size_t count)
{
	if (count == 0)
		return gnutls_assert_val(GNUTLS_E_INVALID_REQUEST);
	count = MIN(count, SSIZE_MAX);
#ifdef ENABLE_KTLS
	if (ktls_can_splice(session)) {
		ssize_t ret = ktls_recv_file(session, fd, offset, count);

		if (ret != 0)
			return ret;
	}
#endif
	return recv_file_copy(session, fd, offset, count);
}

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
 * DTLS are never offloaded.
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
