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
 * ktls-unit: the pure pieces of the backend (lib/system/ktls_wire.c),
 * checked without a kernel or a session:
 *   - the crypto_info of every cipher x TLS 1.2/1.3, byte by byte at the
 *     offsets of the kernel's own structs (offsetof on <linux/tls.h>),
 *     and the sequence number read back from it;
 *   - wrong key or IV sizes refused;
 *   - the record-type control message: what the encoder writes, and the
 *     strict decoder (no message, MSG_CTRUNC, wrong level, type, length);
 *   - the errno -> GnuTLS error mapping, per direction.
 * Prints "PASS: name" / "FAIL: name: why" and "N passed, N failed".
 *
 * Build: cc -I lib -I <gnutls includes> tests/ktls-unit.c lib/system/ktls_wire.c
 */

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/tls.h>
#include <gnutls/gnutls.h>
#include <gnutls/socket.h>

#include "system/ktls_wire.h"

#ifndef SOL_TLS
# define SOL_TLS 282
#endif

static int passed, failed;

static void check(int ok, const char *name, const char *why)
{
	if (ok) {
		passed++;
		printf("PASS: %s\n", name);
	} else {
		failed++;
		printf("FAIL: %s: %s\n", name, why);
	}
}

/* The kernel's layout of one cipher's crypto_info. */
struct layout {
	const char *name;
	gnutls_cipher_algorithm_t id;
	uint16_t kernel_id;
	size_t size, iv, key, salt, rec_seq;
	size_t iv_size, key_size, salt_size;
};

#define LAYOUT(n, gid, kname, st) \
	{ n, gid, TLS_CIPHER_##kname, sizeof(struct st), \
	  offsetof(struct st, iv), offsetof(struct st, key), \
	  offsetof(struct st, salt), offsetof(struct st, rec_seq), \
	  TLS_CIPHER_##kname##_IV_SIZE, TLS_CIPHER_##kname##_KEY_SIZE, \
	  TLS_CIPHER_##kname##_SALT_SIZE }

static const struct layout layouts[] = {
	LAYOUT("aes-128-gcm", GNUTLS_CIPHER_AES_128_GCM, AES_GCM_128,
	       tls12_crypto_info_aes_gcm_128),
	LAYOUT("aes-256-gcm", GNUTLS_CIPHER_AES_256_GCM, AES_GCM_256,
	       tls12_crypto_info_aes_gcm_256),
	LAYOUT("aes-128-ccm", GNUTLS_CIPHER_AES_128_CCM, AES_CCM_128,
	       tls12_crypto_info_aes_ccm_128),
	LAYOUT("chacha20-poly1305", GNUTLS_CIPHER_CHACHA20_POLY1305,
	       CHACHA20_POLY1305, tls12_crypto_info_chacha20_poly1305),
};

static void fill(uint8_t *p, size_t n, uint8_t start)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = start + i;
}

static void be64(uint64_t v, uint8_t *out)
{
	int i;

	for (i = 7; i >= 0; i--, v >>= 8)
		out[i] = v & 0xff;
}

/* One cipher x version: the bytes at each of the kernel's offsets. */
static void test_crypto_info(const struct layout *l, uint16_t version)
{
	const struct ktls_cipher *c = _gnutls_ktls_cipher_find(l->id);
	uint8_t key[32], iv[12], out[KTLS_CRYPTO_INFO_MAX], seq[8];
	struct tls_crypto_info hdr;
	struct ktls_keys k;
	uint64_t back = 0;
	size_t size = 0;
	char name[80];
	/* TLS 1.2 AES: GnuTLS keeps the salt only; else the whole IV */
	int salt_only = version == TLS_1_2_VERSION && l->salt_size != 0;
	int ok;

	snprintf(name, sizeof(name), "crypto-info-%s-%s", l->name,
		 version == TLS_1_2_VERSION ? "tls12" : "tls13");
	if (c == NULL) {
		check(0, name, "cipher missing from the table");
		return;
	}
	fill(key, sizeof(key), 0x10);
	fill(iv, sizeof(iv), 0xa0);
	k.version = version;
	k.key = key;
	k.key_size = l->key_size;
	k.iv = iv;
	k.iv_size = salt_only ? l->salt_size : l->salt_size + l->iv_size;
	k.seq = UINT64_C(0x0102030405060708);
	be64(k.seq, seq);

	if (_gnutls_ktls_crypto_info(c, &k, out, &size) != 0 || size != l->size) {
		check(0, name, "not built, or of the wrong size");
		return;
	}
	memcpy(&hdr, out, sizeof(hdr));
	ok = hdr.version == version && hdr.cipher_type == l->kernel_id &&
	     memcmp(out + l->key, key, l->key_size) == 0 &&
	     memcmp(out + l->salt, iv, l->salt_size) == 0 &&
	     memcmp(out + l->rec_seq, seq, 8) == 0 &&
	     (salt_only ? memcmp(out + l->iv, seq, l->iv_size) == 0 :
			  memcmp(out + l->iv, iv + l->salt_size, l->iv_size) == 0);
	check(ok, name, "a field is not where the kernel reads it");

	snprintf(name, sizeof(name), "crypto-info-seq-%s-%s", l->name,
		 version == TLS_1_2_VERSION ? "tls12" : "tls13");
	check(_gnutls_ktls_crypto_info_seq(c, out, size, &back) == 0 &&
	      back == k.seq &&
	      _gnutls_ktls_crypto_info_seq(c, out, size - 1, &back) ==
		      GNUTLS_E_INTERNAL_ERROR,
	      name, "sequence number not read back");

	snprintf(name, sizeof(name), "crypto-info-bad-sizes-%s-%s", l->name,
		 version == TLS_1_2_VERSION ? "tls12" : "tls13");
	k.key_size = l->key_size - 1;
	ok = _gnutls_ktls_crypto_info(c, &k, out, &size) == GNUTLS_E_INTERNAL_ERROR;
	k.key_size = l->key_size;
	k.iv_size = l->salt_size + l->iv_size + 1;
	ok = ok && _gnutls_ktls_crypto_info(c, &k, out, &size) == GNUTLS_E_INTERNAL_ERROR;
	check(ok, name, "a wrong key or IV size was accepted");
}

static void test_ciphers(void)
{
	size_t i;

	for (i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
		test_crypto_info(&layouts[i], TLS_1_2_VERSION);
		test_crypto_info(&layouts[i], TLS_1_3_VERSION);
	}
	check(_gnutls_ktls_cipher_find(GNUTLS_CIPHER_AES_128_CBC) == NULL &&
	      _gnutls_ktls_cipher_find(GNUTLS_CIPHER_NULL) == NULL,
	      "cipher-table-no-cbc", "a cipher the kernel lacks is listed");
	/* ktls = auto moves only where the kernel's AEAD is the cheaper one
	 * (make bench: its ccm(aes) costs ~7x its gcm(aes)) */
	check(_gnutls_ktls_cipher_find(GNUTLS_CIPHER_AES_128_GCM)->bulk_pays &&
	      _gnutls_ktls_cipher_find(GNUTLS_CIPHER_AES_256_GCM)->bulk_pays &&
	      !_gnutls_ktls_cipher_find(GNUTLS_CIPHER_AES_128_CCM)->bulk_pays,
	      "cipher-table-auto", "auto would move CCM, or not move GCM");
#ifdef TLS_CIPHER_CHACHA20_POLY1305
	check(_gnutls_ktls_cipher_find(GNUTLS_CIPHER_CHACHA20_POLY1305)->bulk_pays,
	      "cipher-table-auto-chacha", "auto would not move ChaCha20");
#endif
}

/* A received message as the kernel would fill it. */
struct rx {
	struct msghdr msg;
	unsigned char cbuf[64];
};

static void rx_make(struct rx *r, int level, int type, size_t len,
		    unsigned char value, int flags)
{
	struct cmsghdr *cmsg;

	memset(r, 0, sizeof(*r));
	r->msg.msg_control = r->cbuf;
	r->msg.msg_controllen = CMSG_SPACE(len);
	r->msg.msg_flags = flags;
	cmsg = CMSG_FIRSTHDR(&r->msg);
	cmsg->cmsg_level = level;
	cmsg->cmsg_type = type;
	cmsg->cmsg_len = CMSG_LEN(len);
	*CMSG_DATA(cmsg) = value;
}

static void test_cmsg(void)
{
	unsigned char cbuf[KTLS_CMSG_SPACE];
	struct msghdr msg;
	struct cmsghdr *cmsg;
	struct rx r;
	uint8_t t = 0;

	memset(&msg, 0, sizeof(msg));
	_gnutls_ktls_cmsg_put_type(&msg, cbuf, 21);
	cmsg = CMSG_FIRSTHDR(&msg);
	check(msg.msg_control == cbuf && msg.msg_controllen == KTLS_CMSG_SPACE &&
	      cmsg && cmsg->cmsg_level == SOL_TLS &&
	      cmsg->cmsg_type == TLS_SET_RECORD_TYPE &&
	      cmsg->cmsg_len == CMSG_LEN(1) && *CMSG_DATA(cmsg) == 21,
	      "cmsg-put-type", "not a TLS_SET_RECORD_TYPE of one byte");

	rx_make(&r, SOL_TLS, TLS_GET_RECORD_TYPE, 1, 23, 0);
	check(_gnutls_ktls_cmsg_get_type(&r.msg, &t) == 1 && t == 23,
	      "cmsg-get-type", "the type was not read");

	memset(&r, 0, sizeof(r));
	check(_gnutls_ktls_cmsg_get_type(&r.msg, &t) == 0,
	      "cmsg-get-none", "no control message is not 'absent'");

	rx_make(&r, SOL_TLS, TLS_GET_RECORD_TYPE, 1, 23, MSG_CTRUNC);
	check(_gnutls_ktls_cmsg_get_type(&r.msg, &t) == GNUTLS_E_PULL_ERROR,
	      "cmsg-get-ctrunc", "MSG_CTRUNC accepted");

	rx_make(&r, SOL_SOCKET, TLS_GET_RECORD_TYPE, 1, 23, 0);
	check(_gnutls_ktls_cmsg_get_type(&r.msg, &t) == GNUTLS_E_PULL_ERROR,
	      "cmsg-get-wrong-level", "another level accepted");

	rx_make(&r, SOL_TLS, TLS_GET_RECORD_TYPE + 7, 1, 23, 0);
	check(_gnutls_ktls_cmsg_get_type(&r.msg, &t) == GNUTLS_E_PULL_ERROR,
	      "cmsg-get-wrong-type", "another message type accepted");

	rx_make(&r, SOL_TLS, TLS_GET_RECORD_TYPE, 4, 23, 0);
	check(_gnutls_ktls_cmsg_get_type(&r.msg, &t) == GNUTLS_E_PULL_ERROR,
	      "cmsg-get-wrong-length", "a 4-byte record type accepted");
}

static void test_errno(void)
{
	static const struct {
		int err;
		int rx, tx;
	} map[] = {
		{ EAGAIN, GNUTLS_E_AGAIN, GNUTLS_E_AGAIN },
		{ EINTR, GNUTLS_E_INTERRUPTED, GNUTLS_E_INTERRUPTED },
		{ EBADMSG, GNUTLS_E_DECRYPTION_FAILED, GNUTLS_E_DECRYPTION_FAILED },
		{ EMSGSIZE, GNUTLS_E_RECORD_OVERFLOW, GNUTLS_E_RECORD_OVERFLOW },
		{ EINVAL, GNUTLS_E_UNSUPPORTED_VERSION_PACKET, GNUTLS_E_PUSH_ERROR },
		{ ECONNRESET, GNUTLS_E_PREMATURE_TERMINATION,
		  GNUTLS_E_PREMATURE_TERMINATION },
		{ EPIPE, GNUTLS_E_PULL_ERROR, GNUTLS_E_PUSH_ERROR },
		{ EIO, GNUTLS_E_PULL_ERROR, GNUTLS_E_PUSH_ERROR },
		{ EKEYEXPIRED, GNUTLS_E_PULL_ERROR, GNUTLS_E_PUSH_ERROR },
	};
	char name[64];
	size_t i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		snprintf(name, sizeof(name), "errno-%s", strerrorname_np(map[i].err));
		check(_gnutls_ktls_map_errno(map[i].err, GNUTLS_KTLS_RECV) == map[i].rx &&
		      _gnutls_ktls_map_errno(map[i].err, GNUTLS_KTLS_SEND) == map[i].tx,
		      name, "mapped to another GnuTLS error");
	}
}

int main(void)
{
	test_ciphers();
	test_cmsg();
	test_errno();
	printf("%d passed, %d failed\n", passed, failed);
	return failed != 0;
}
