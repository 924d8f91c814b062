/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Records shared by the BPF programs and the Rust monitor. The Rust mirror lives in
 * crates/picosnitch-bpf/src/events.rs and a test checks it against this object's BTF,
 * so keep every field explicitly sized and padded (no bool, no implicit holes).
 */
#ifndef PICOSNITCH_H
#define PICOSNITCH_H

#define PS_COMM_LEN 16
#define PS_PATH_LEN 4096
#define PS_ARGS_LEN 1024

enum ps_event_kind {
	PS_EV_FLOW_NEW = 1,       /* first sight of a flow; counters live in the flows map */
	PS_EV_FLOW_UNTRACKED = 2, /* flows map full: this event carries the bytes itself */
	PS_EV_SOCK_CLOSE = 3,     /* socket finished; final counters can be collected */
	PS_EV_EXEC = 4,           /* a process executed a file */
};

enum ps_direction {
	PS_DIR_OUT = 0, /* the process connected, or sent first */
	PS_DIR_IN = 1,  /* the process received first (accepted connections) */
};

/* Flags in ps_flow_value: */
#define PS_FLOW_PENDING_OPEN 1 /* connect() seen; its FLOW_NEW waits in socket storage */

/* Indexes into the per-CPU stats array: every loss or degradation is counted here. */
enum ps_stat {
	PS_STAT_RINGBUF_FULL_FLOW = 0, /* a FLOW_NEW or FLOW_UNTRACKED record was lost */
	PS_STAT_RINGBUF_FULL_CLOSE = 1,
	PS_STAT_RINGBUF_FULL_EXEC = 2,
	PS_STAT_FLOW_MAP_FULL = 3,     /* flows map full; bytes went out as FLOW_UNTRACKED */
	PS_STAT_PATH_TRUNCATED = 4,    /* exec path deeper or longer than the walk goes */
	PS_STAT_BYTES_LOST = 5,        /* bytes carried by FLOW_UNTRACKED records that were lost */
	/* Socket-local storage that could not be created (no memory, the socket's optmem
	 * budget, or on Linux 7.x a CPU without cmpxchg16b: see loader.rs), by its cost: */
	PS_STAT_STORAGE_OPEN = 6,      /* a connect(): its flow is opened at its first byte, and
					* an attempt that never moves one goes unrecorded */
	PS_STAT_STORAGE_PEER = 7,      /* an unconnected send/receive: counted without its peer */
	PS_STAT_STORAGE_FIN = 8,       /* a TCP FIN: that socket's totals may count it as a byte */
	PS_STAT_MAX = 12,
};

/* A file's identity as the kernel sees it: s_dev in the kernel's encoding
 * (major << 20 | minor) and the inode number. */
struct ps_file_id {
	__u64 ino;
	__u32 dev;
	__u32 _pad;
};

/* Who did it, captured in the kernel in the calling task's context. */
struct ps_task {
	__u32 tgid;
	__u32 pid;
	__u32 ppid;
	__u32 gppid;
	__u32 uid;
	__u32 netns;
	struct ps_file_id exe;
	struct ps_file_id pexe;
	struct ps_file_id gpexe;
	char comm[PS_COMM_LEN];
};

/* One flow: a socket, used by one process, toward one peer. Keeping the tgid in the
 * key splits a socket shared after fork between the processes that really used it. */
struct ps_flow_key {
	__u64 cookie;
	__u32 tgid;
	__u16 rport;  /* host byte order; 0 when there is none */
	__u16 family; /* AF_INET, AF_INET6 or AF_PACKET */
	__u8 raddr[16];
};

struct ps_counters {
	__u64 send_bytes;
	__u64 recv_bytes;
	__u64 send_packets; /* calls: datagrams for UDP/raw/ICMP/packet sockets */
	__u64 recv_packets;
};

struct ps_flow_value {
	struct ps_counters counters;
	__u32 flags; /* PS_FLOW_* */
	__u32 _pad;
};

struct ps_flow_event {
	__u32 kind;      /* PS_EV_FLOW_NEW or PS_EV_FLOW_UNTRACKED */
	__u16 protocol;  /* IPPROTO_* (the ethertype for AF_PACKET) */
	__u16 sock_type; /* SOCK_STREAM, SOCK_DGRAM, SOCK_RAW */
	__u64 ktime_ns;
	struct ps_flow_key key;
	__u8 laddr[16];
	__u16 lport;
	__u16 direction; /* PS_DIR_* */
	__u32 _pad;
	/* The TCP socket's own application totals (see struct ps_close_event) just before
	 * this flow's first counted byte: the base of the release-time fallback. */
	__u64 tcp_sent_base;
	__u64 tcp_recv_base;
	struct ps_task task;
	struct ps_counters counters; /* only for PS_EV_FLOW_UNTRACKED */
};

/* A socket released by its last file descriptor: no application I/O can follow. For TCP
 * it carries the socket's own totals of what the application queued and consumed, from
 * the kernel's sequence counters (FIN excluded), which also cover paths that bypass
 * sock_sendmsg/sock_recvmsg (splice out of a socket; sendpage before Linux 6.5). */
struct ps_close_event {
	__u32 kind; /* PS_EV_SOCK_CLOSE */
	__u32 is_tcp;
	__u64 cookie;
	__u64 tcp_sent;
	__u64 tcp_recv;
};

/* An exec record is this header followed by path_len bytes of path and then args_len
 * bytes of NUL-separated argv; only that much is written to the ring buffer. */
struct ps_exec_event {
	__u32 kind; /* PS_EV_EXEC */
	__u32 path_len;
	__u32 args_len;
	__u32 truncated; /* bit 0: path cut, bit 1: argv cut */
	__u64 ktime_ns;
	struct ps_task task;
	char data[PS_PATH_LEN + PS_ARGS_LEN];
};

#endif
