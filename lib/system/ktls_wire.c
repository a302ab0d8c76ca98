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

/* The pure pieces of the kernel TLS backend; see ktls_wire.h. */

#ifdef HAVE_CONFIG_H
# include "config.h"	/* the library's build; the unit test has none */
#endif

#include "system/ktls_wire.h"

#include <errno.h>
#include <string.h>
#include <gnutls/socket.h>
#include <linux/tls.h>

#define KTLS_CIPHER(gid, kname, kstruct, pays) \
	{ gid, TLS_CIPHER_##kname, TLS_CIPHER_##kname##_IV_SIZE, \
	  TLS_CIPHER_##kname##_KEY_SIZE, TLS_CIPHER_##kname##_SALT_SIZE, \
	  sizeof(struct kstruct), pays }

/* Every AEAD the kernel takes that GnuTLS negotiates.  The last column:
 * whether the kernel's implementation is cheaper than GnuTLS's for bulk
 * data (ktls = auto moves only those); measured with make bench: the
 * kernel's ccm(aes) costs about 7 times its gcm(aes). */
static const struct ktls_cipher ktls_ciphers[] = {
	KTLS_CIPHER(GNUTLS_CIPHER_AES_128_GCM, AES_GCM_128,
		    tls12_crypto_info_aes_gcm_128, 1),
	KTLS_CIPHER(GNUTLS_CIPHER_AES_256_GCM, AES_GCM_256,
		    tls12_crypto_info_aes_gcm_256, 1),
	KTLS_CIPHER(GNUTLS_CIPHER_AES_128_CCM, AES_CCM_128,
		    tls12_crypto_info_aes_ccm_128, 0),
#ifdef TLS_CIPHER_CHACHA20_POLY1305
	KTLS_CIPHER(GNUTLS_CIPHER_CHACHA20_POLY1305, CHACHA20_POLY1305,
		    tls12_crypto_info_chacha20_poly1305, 1),
#endif
};

const struct ktls_cipher *_gnutls_ktls_cipher_find(gnutls_cipher_algorithm_t id)
{
	size_t i;

	for (i = 0; i < sizeof(ktls_ciphers) / sizeof(ktls_ciphers[0]); i++)
		if (ktls_ciphers[i].id == id)
			return &ktls_ciphers[i];
	return NULL;
}

static void put_be64(uint64_t v, uint8_t out[KTLS_SEQ_SIZE])
{
	int i;

	for (i = KTLS_SEQ_SIZE - 1; i >= 0; i--, v >>= 8)
		out[i] = v & 0xff;
}

/* The crypto_info for one direction.  TLS 1.2 AES-GCM/CCM keys come with
 * the salt only (iv_size == salt_size): the kernel then derives the
 * explicit nonce from the sequence number, as GnuTLS does, and the
 * crypto_info's iv is the sequence number.  TLS 1.3 and ChaCha20 give
 * the whole static IV.  GNUTLS_E_INTERNAL_ERROR for sizes that do not
 * fit the cipher. */
int _gnutls_ktls_crypto_info(const struct ktls_cipher *c,
			     const struct ktls_keys *keys,
			     uint8_t out[KTLS_CRYPTO_INFO_MAX],
			     size_t *out_size)
{
	struct tls_crypto_info info;
	uint8_t seq[KTLS_SEQ_SIZE];
	uint8_t *p = out;

	if (keys->key_size != c->key_size || c->info_size > KTLS_CRYPTO_INFO_MAX)
		return GNUTLS_E_INTERNAL_ERROR;
	if (keys->iv_size != (size_t)c->salt_size + c->iv_size &&
	    !(keys->iv_size == c->salt_size && c->iv_size == KTLS_SEQ_SIZE))
		return GNUTLS_E_INTERNAL_ERROR;

	memset(&info, 0, sizeof(info));
	info.version = keys->version;
	info.cipher_type = c->kernel_id;
	put_be64(keys->seq, seq);

	memcpy(p, &info, sizeof(info));
	p += sizeof(info);
	if (keys->iv_size == c->salt_size)
		memcpy(p, seq, c->iv_size);
	else
		memcpy(p, keys->iv + c->salt_size, c->iv_size);
	p += c->iv_size;
	memcpy(p, keys->key, c->key_size);
	p += c->key_size;
	memcpy(p, keys->iv, c->salt_size);
	p += c->salt_size;
	memcpy(p, seq, KTLS_SEQ_SIZE);
	p += KTLS_SEQ_SIZE;

	*out_size = p - out;
	if (*out_size != c->info_size)
		return GNUTLS_E_INTERNAL_ERROR;
	return 0;
}

/* The sequence number of the next record, from a crypto_info the
 * kernel reports (getsockopt TLS_TX/TLS_RX). */
int _gnutls_ktls_crypto_info_seq(const struct ktls_cipher *c,
				 const uint8_t *info, size_t size,
				 uint64_t *seq)
{
	const uint8_t *p;
	uint64_t v = 0;
	int i;

	if (size != c->info_size)
		return GNUTLS_E_INTERNAL_ERROR;
	p = info + size - KTLS_SEQ_SIZE;
	for (i = 0; i < KTLS_SEQ_SIZE; i++)
		v = (v << 8) | p[i];
	*seq = v;
	return 0;
}

/* The control message that gives a sent record its content type. */
void _gnutls_ktls_cmsg_put_type(struct msghdr *msg,
				unsigned char cbuf[KTLS_CMSG_SPACE],
				uint8_t type)
{
	struct cmsghdr *cmsg;

	memset(cbuf, 0, KTLS_CMSG_SPACE);
	msg->msg_control = cbuf;
	msg->msg_controllen = KTLS_CMSG_SPACE;
	cmsg = CMSG_FIRSTHDR(msg);
	cmsg->cmsg_level = SOL_TLS;
	cmsg->cmsg_type = TLS_SET_RECORD_TYPE;
	cmsg->cmsg_len = CMSG_LEN(sizeof(unsigned char));
	*CMSG_DATA(cmsg) = type;
}

/* The content type of the records a recvmsg returned.  1 with *type set
 * when the kernel said it; 0 when there is no control message at all
 * (end of stream); GNUTLS_E_PULL_ERROR for anything else: a truncated
 * control buffer (MSG_CTRUNC), another message, or one of the wrong
 * length.  The kernel sends exactly one TLS_GET_RECORD_TYPE with every
 * record, so bytes without it are not known to be application data. */
int _gnutls_ktls_cmsg_get_type(const struct msghdr *msg, uint8_t *type)
{
	const struct cmsghdr *cmsg;

	if (msg->msg_flags & MSG_CTRUNC)
		return GNUTLS_E_PULL_ERROR;
	cmsg = CMSG_FIRSTHDR(msg);
	if (cmsg == NULL)
		return 0;
	if (cmsg->cmsg_level != SOL_TLS ||
	    cmsg->cmsg_type != TLS_GET_RECORD_TYPE ||
	    cmsg->cmsg_len != CMSG_LEN(sizeof(unsigned char)))
		return GNUTLS_E_PULL_ERROR;
	*type = *CMSG_DATA(cmsg);
	return 1;
}

/* What a userspace session returns for the same condition. */
int _gnutls_ktls_map_errno(int err, unsigned dir)
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
