/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Records of the name capture (bpf/names.bpf.c), shared with the Rust mirror in
 * crates/picosnitch-bpf/src/names.rs (checked against this object's BTF by a test):
 * DNS answers the machine receives and the first TLS client packet of each TCP socket,
 * copied as bytes for userspace to parse. Explicitly sized, no implicit holes.
 */
#ifndef PICOSNITCH_NAMES_H
#define PICOSNITCH_NAMES_H

/* At most this many payload bytes are copied per packet: a DNS answer over UDP with
 * EDNS is usually under 1232 bytes; a ClientHello with a post-quantum key share is
 * about 1800, and its server name may come after the key share. */
#define PS_NAME_DATA_LEN 2048

enum ps_name_kind {
	PS_NAME_DNS_UDP = 1,   /* a UDP datagram from port 53: one DNS message */
	PS_NAME_DNS_TCP = 2,   /* a TCP segment from port 53: length-prefixed DNS stream */
	PS_NAME_TLS_HELLO = 3, /* the first payload a TCP socket sent, starting a TLS handshake */
};

/* Indexes into the per-CPU counters of the name capture. */
enum ps_name_stat {
	PS_NSTAT_RINGBUF_FULL = 0, /* a record was lost: its answer or server name is unknown */
	PS_NSTAT_TRUNCATED = 1,    /* payload longer than PS_NAME_DATA_LEN: only its start was copied */
	PS_NSTAT_NO_NETNS = 2,     /* socket predates the capture: namespace unknown (0) */
	PS_NSTAT_MAX = 4,
};

struct ps_name_event {
	__u32 kind;     /* PS_NAME_* */
	__u32 netns;    /* network namespace inode of the socket; 0 when unknown */
	__u64 cookie;   /* socket cookie: joins a server name to the flows of its socket */
	__u32 len;      /* bytes of data that follow */
	__u32 wire_len; /* payload bytes in the packet (more than len when cut) */
	__u8 data[PS_NAME_DATA_LEN];
};

#endif
