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

/* Kernel TLS (KTLS) offload of the record layer.
 *
 * After the initial handshake, _gnutls_ktls_enable() hands each direction
 * whose cipher, version and transport the kernel can take to the kernel
 * (setsockopt TCP_ULP "tls", then SOL_TLS/TLS_TX and TLS_RX).  The record
 * layer then calls in here instead of encrypting or decrypting:
 *
 *  - _gnutls_send_tlen_int() -> _gnutls_ktls_send(): every record type,
 *    non-data ones with a TLS_SET_RECORD_TYPE cmsg;
 *  - _gnutls_recv_in_buffers() -> _gnutls_ktls_recv_record(): one
 *    decrypted record with its type, which then takes the same path as a
 *    record decrypted in userspace (alerts, tickets, KeyUpdate ...), and
 *    _gnutls_ktls_after_record() once GnuTLS processed it;
 *  - _gnutls_recv_int() -> _gnutls_ktls_recv_data(): application data
 *    straight into the caller's buffer;
 *  - gnutls_record_send_file() -> _gnutls_ktls_send_file(): sendfile(2);
 *  - gnutls_record_recv_file() (lib/system/ktls_file.c) ->
 *    _gnutls_ktls_recv_file(): splice(2) through a pipe;
 *  - the gnutls_transport_set_*() functions ->
 *    _gnutls_ktls_transport_changed(): an offloaded session is bound to
 *    its socket.
 *
 * Whatever the kernel cannot take stays in userspace; the public
 * gnutls_transport_is_ktls_enabled() reports exactly what was offloaded.
 */

#ifndef GNUTLS_LIB_SYSTEM_KTLS_H
#define GNUTLS_LIB_SYSTEM_KTLS_H

#include "gnutls_int.h"

/* lib/priority.c: the [global] "ktls" key of the system config */
#define _GNUTLS_CONFIG_KTLS_UNSET 0	/* only GNUTLS_ENABLE_KTLS sessions */
#define _GNUTLS_CONFIG_KTLS_OFF 1	/* ktls = false: none */
#define _GNUTLS_CONFIG_KTLS_ON 2	/* ktls = true: all */
#define _GNUTLS_CONFIG_KTLS_AUTO 3	/* ktls = auto: each direction when
					 * its traffic is bulk */
int _gnutls_config_get_ktls(void);

/* lib/system/ktls_file.c: gnutls_record_recv_file()'s writing, shared
 * with the splice path */
size_t _gnutls_recv_file_write(int fd, off_t *pos, const void *buf,
			       size_t n, int *err);
void _gnutls_recv_file_unread(gnutls_session_t session, mbuffer_st *bufel);
int _gnutls_recv_file_error(int err);

#ifdef ENABLE_KTLS

void _gnutls_ktls_enable(gnutls_session_t session);
void _gnutls_ktls_deinit(gnutls_session_t session);
void _gnutls_ktls_transport_changed(gnutls_session_t session);
int _gnutls_ktls_check_rehandshake(gnutls_session_t session);
int _gnutls_ktls_check_key_update(gnutls_session_t session, unsigned flags);

/* ktls = auto: directions still in userspace that may move */
#define _gnutls_ktls_watched(session, dir) \
	((dir) == GNUTLS_KTLS_RECV ? (session)->internals.ktls.rx_auto.watch : \
				     (session)->internals.ktls.tx_auto.watch)
void _gnutls_ktls_watch_send(gnutls_session_t session, content_type_t type,
			     size_t data_size);
void _gnutls_ktls_move(gnutls_session_t session, unsigned dir);

ssize_t _gnutls_ktls_send(gnutls_session_t session,
			  record_parameters_st *params, content_type_t type,
			  const void *data, size_t data_size);
int _gnutls_ktls_after_record(gnutls_session_t session, content_type_t type,
			      size_t length);
int _gnutls_ktls_recv_record(gnutls_session_t session,
			     record_parameters_st *params,
			     content_type_t *type, mbuffer_st **plain,
			     unsigned int ms);
ssize_t _gnutls_ktls_recv_data(gnutls_session_t session, void *data,
			       size_t data_size, unsigned int ms);
ssize_t _gnutls_ktls_send_file(gnutls_session_t session, int fd,
			       off_t *offset, size_t count);
ssize_t _gnutls_ktls_recv_file(gnutls_session_t session, int fd,
			       off_t *offset, size_t count);

#else /* !ENABLE_KTLS: IS_KTLS_ENABLED() is 0, the hooks compile away */

# define _gnutls_ktls_enable(session) ((void)(session))
# define _gnutls_ktls_deinit(session) ((void)(session))
# define _gnutls_ktls_transport_changed(session) ((void)(session))
# define _gnutls_ktls_check_rehandshake(session) 0
# define _gnutls_ktls_check_key_update(session, flags) 0
# define _gnutls_ktls_watched(session, dir) 0
# define _gnutls_ktls_watch_send(s, t, n) ((void)(s))
# define _gnutls_ktls_move(s, dir) ((void)(s))
# define _gnutls_ktls_send(s, p, t, d, n) GNUTLS_E_INTERNAL_ERROR
# define _gnutls_ktls_recv_record(s, p, t, b, ms) GNUTLS_E_INTERNAL_ERROR
# define _gnutls_ktls_after_record(s, t, n) 0
# define _gnutls_ktls_recv_data(s, d, n, ms) 0
# define _gnutls_ktls_send_file(s, fd, o, n) GNUTLS_E_INTERNAL_ERROR
# define _gnutls_ktls_recv_file(s, fd, o, n) 0

#endif /* ENABLE_KTLS */

#endif /* GNUTLS_LIB_SYSTEM_KTLS_H */
