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

/* The pure pieces of the kernel TLS backend: the kernel's AEAD table,
 * the crypto_info it takes, the record-type control message and the
 * meaning of its errnos.  No session and no I/O: this depends on libc,
 * <linux/tls.h> and GnuTLS's public error codes only, so that
 * tests/ktls-unit.c checks it without a kernel. */

#ifndef GNUTLS_LIB_SYSTEM_KTLS_WIRE_H
#define GNUTLS_LIB_SYSTEM_KTLS_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <gnutls/gnutls.h>

#ifndef SOL_TLS
# define SOL_TLS 282	/* older libc headers */
#endif

/* The largest TLS plaintext a record carries (RFC 8446, 5.1). */
#define KTLS_MAX_PLAINTEXT 16384
/* The kernel's MAX_RW_COUNT: the most one sendmsg, sendfile or splice
 * moves. */
#define KTLS_MAX_RW_COUNT ((size_t)0x7ffff000)
#define KTLS_SEQ_SIZE 8
#define KTLS_CRYPTO_INFO_MAX 64
/* room for one TLS_SET_RECORD_TYPE / TLS_GET_RECORD_TYPE message */
#define KTLS_CMSG_SPACE CMSG_SPACE(sizeof(unsigned char))

/* One AEAD the kernel takes.  Its crypto_info is laid out as
 *	struct tls_crypto_info | iv | key | salt | rec_seq
 * with sizes that depend only on the cipher; "iv" is the part of the
 * nonce after the salt (the TLS 1.3 / ChaCha20 static IV without its
 * first salt_size bytes, or the TLS 1.2 explicit nonce). */
struct ktls_cipher {
	gnutls_cipher_algorithm_t id;
	uint16_t kernel_id;	/* TLS_CIPHER_* */
	uint8_t iv_size;
	uint8_t key_size;
	uint8_t salt_size;
	uint8_t info_size;	/* sizeof the kernel's struct, as a check */
	uint8_t bulk_pays;	/* the kernel's AEAD beats GnuTLS's on bulk */
};

/* One direction's keys as GnuTLS's record state holds them. */
struct ktls_keys {
	uint16_t version;	/* TLS_1_2_VERSION or TLS_1_3_VERSION */
	const uint8_t *key;
	size_t key_size;
	const uint8_t *iv;	/* TLS 1.2 AES: the salt; else the static IV */
	size_t iv_size;
	uint64_t seq;		/* the next record's sequence number */
};

const struct ktls_cipher *_gnutls_ktls_cipher_find(gnutls_cipher_algorithm_t id);

int _gnutls_ktls_crypto_info(const struct ktls_cipher *c,
			     const struct ktls_keys *keys,
			     uint8_t out[KTLS_CRYPTO_INFO_MAX],
			     size_t *out_size);
int _gnutls_ktls_crypto_info_seq(const struct ktls_cipher *c,
				 const uint8_t *info, size_t size,
				 uint64_t *seq);

void _gnutls_ktls_cmsg_put_type(struct msghdr *msg,
				unsigned char cbuf[KTLS_CMSG_SPACE],
				uint8_t type);
int _gnutls_ktls_cmsg_get_type(const struct msghdr *msg, uint8_t *type);

int _gnutls_ktls_map_errno(int err, unsigned dir);

#endif /* GNUTLS_LIB_SYSTEM_KTLS_WIRE_H */
