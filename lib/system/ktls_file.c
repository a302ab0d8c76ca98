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


/* gnutls_record_recv_file(): received application data into a file
 * descriptor.  Under RX offload the data move with splice(2)
 * (_gnutls_ktls_recv_file() in ktls.c); otherwise, and for whatever
 * splice cannot take, with gnutls_record_recv() and write(2). */

#include "gnutls_int.h"
#include "errors.h"
#include "record.h"
#include "mbuffers.h"
#include "debug.h"
#include "system/ktls.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* Write n bytes to fd (at *pos, advanced, when pos is not NULL).
 * Returns the bytes written; *err is the errno when that is short. */
size_t _gnutls_recv_file_write(int fd, off_t *pos, const void *buf,
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
void _gnutls_recv_file_unread(gnutls_session_t session, mbuffer_st *bufel)
{
	bufel->type = GNUTLS_APPLICATION_DATA;
	_mbuffer_head_push_first(&session->internals.record_buffer, bufel);
}

/* The error for a write to the output that took nothing: a full
 * non-blocking output is temporary, as for the socket. */
int _gnutls_recv_file_error(int err)
{
	switch (err) {
	case EAGAIN:
#if EWOULDBLOCK != EAGAIN
	case EWOULDBLOCK:
#endif
		return gnutls_assert_val(GNUTLS_E_AGAIN);
	case EINTR:
		return gnutls_assert_val(GNUTLS_E_INTERRUPTED);
	default:
		return gnutls_assert_val(GNUTLS_E_FILE_ERROR);
	}
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

	w = _gnutls_recv_file_write(fd, offset, buf, ret, &err);
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
		_gnutls_recv_file_unread(session, bufel);
		ret = w > 0 ? (ssize_t)w : _gnutls_recv_file_error(err);
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
 * When @fd cannot take the data, the call returns what it wrote until
 * then or, when it wrote nothing, %GNUTLS_E_AGAIN for a full
 * non-blocking @fd (poll it for writing, then call again),
 * %GNUTLS_E_INTERRUPTED for %EINTR, and %GNUTLS_E_FILE_ERROR for any
 * other failure (a full disk, an I/O error, a closed pipe), with @errno
 * set by the failed write.  No data is lost: bytes already taken from
 * the session but not written stay in it and are returned first by the
 * next call of this function or gnutls_record_recv().  A file that is
 * opened with %O_APPEND or does not take splice(2) is written from a
 * buffer.  As with write(2), a pipe without readers raises %SIGPIPE
 * unless it is ignored.
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
	ssize_t ret;

	if (count == 0)
		return gnutls_assert_val(GNUTLS_E_INVALID_REQUEST);
	count = MIN(count, SSIZE_MAX);
	ret = _gnutls_ktls_recv_file(session, fd, offset, count);
	if (ret != 0)
		return ret;
	return recv_file_copy(session, fd, offset, count);
}
