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

/* The kernel TLS state of one session (session->internals.ktls), owned by
 * lib/system/ktls.c.  Included by gnutls_int.h, so kept free of other
 * includes: all zero is "nothing offloaded". */

#ifndef GNUTLS_LIB_SYSTEM_KTLS_SESSION_H
#define GNUTLS_LIB_SYSTEM_KTLS_SESSION_H

#define KTLS_KEY_ID_SIZE 16

/* gnutls_record_recv_file()'s pipe */
enum ktls_pipe_state {
	KTLS_PIPE_NONE = 0,	/* not opened yet */
	KTLS_PIPE_OPEN,		/* open, takes pipe_records records whole */
	KTLS_PIPE_UNUSABLE	/* cannot hold a record whole: no splice */
};

struct mbuffer_st;

/* ktls = auto, one direction: owned by the thread that sends, or the one
 * that receives (GnuTLS lets one thread send while another receives) */
struct ktls_auto_dir {
	unsigned char watch;	/* in userspace, may still move */
	unsigned char due;	/* to move at the next record boundary */
	unsigned run;		/* large application records in a row */
};

struct ktls_st {
	unsigned enabled;	/* offloaded directions (GNUTLS_KTLS_*) */

	/* the transport the kernel's keys are on */
	void *recv_ptr;
	void *send_ptr;

	/* the keys the kernel has: epoch (a quick check) and a digest of
	 * key and IV (GnuTLS moves both directions to a new epoch when
	 * either key changes) */
	uint16_t rx_epoch;
	uint16_t tx_epoch;
	uint8_t rx_key_id[KTLS_KEY_ID_SIZE];
	uint8_t tx_key_id[KTLS_KEY_ID_SIZE];

	/* receiving: what the data fast path met in place of data */
	struct mbuffer_st *rx_stash;	/* a control record */
	int rx_stash_err;	/* or the kernel's error */

	/* sending: the record the kernel did not take (GNUTLS_E_AGAIN or
	 * _INTERRUPTED), sent first by the next send, as the userspace
	 * record layer sends its buffered record */
	struct mbuffer_st *tx_pending;

	/* ktls = auto */
	unsigned adaptive;	/* the session is under ktls = auto */
	struct ktls_auto_dir rx_auto;
	struct ktls_auto_dir tx_auto;
	unsigned char auto_last;	/* the direction of the last application
					 * record seen in userspace (atomic) */

	enum ktls_pipe_state pipe_state;
	int pipe_fd[2];
	unsigned pipe_records;	/* records the pipe takes whole */
};

#endif /* GNUTLS_LIB_SYSTEM_KTLS_SESSION_H */
