// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * picosnitch name capture: the bytes from which userspace learns the domain of a
 * connection. A separate object from picosnitch.bpf.c, with its own ring buffer, so
 * that a burst of DNS answers can never cost a flow record, and the other way round.
 *
 *   cgroup_skb/ingress   UDP and TCP payloads from port 53 (DNS answers, also those a
 *                        local stub resolver such as 127.0.0.53 hands its clients)
 *   cgroup_skb/egress    the first payload of a TCP socket when it starts a TLS
 *                        handshake (a ClientHello, which names the server: SNI)
 *   cgroup/sock_create, connect4/6, sendmsg4/6
 *                        remember the network namespace of each socket, in the
 *                        creating or connecting task's context: cgroup_skb programs
 *                        may run in softirq, where the current task says nothing
 * Nothing is parsed here: the bytes are copied (at most PS_NAME_DATA_LEN per packet)
 * to the primary role, which parses them inside its sandbox. All programs return 1:
 * they observe and never drop.
 * Minimum kernel: 5.11 (socket-local storage in cgroup programs, ring buffer).
 */
#include "kernel_types.h"
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "names.h"

char LICENSE[] SEC("license") = "GPL";

/* Keeps the record in the object's BTF for the Rust mirror's test. */
struct ps_name_event *btf_keep_name_event __attribute__((unused));

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define DNS_PORT 53
#define TLS_HANDSHAKE 0x16
#define TLS_CLIENT_HELLO 1

/* Size set by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} name_events SEC(".maps");

/* A record is built here, then copied into the ring with its real length. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ps_name_event);
} name_scratch SEC(".maps");

/* Shared by all CPUs, atomic adds: see the `stats` map in picosnitch.bpf.c for why not
 * per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PS_NSTAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} name_stats SEC(".maps");

struct name_sock {
	__u32 netns;
	__u32 tls_seen; /* the first payload went out: later packets are not looked at */
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct name_sock);
} name_socks SEC(".maps");

static __always_inline void name_stat(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&name_stats, &idx);
	if (v)
		__sync_fetch_and_add(v, 1);
}

/* Process context only: the namespace of the task creating or using the socket. */
static __always_inline int remember_netns(struct bpf_sock *sk)
{
	if (!sk)
		return 1;
	struct name_sock *s = bpf_sk_storage_get(&name_socks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (s && !s->netns) {
		struct task_struct *t = (struct task_struct *)bpf_get_current_task();
		s->netns = BPF_CORE_READ(t, nsproxy, net_ns, ns.inum);
	}
	return 1;
}

SEC("cgroup/sock_create")
int name_sock_create(struct bpf_sock *sk)
{
	return remember_netns(sk);
}

/* Sockets created before the capture started are learnt when they are next used. */
SEC("cgroup/connect4")
int name_connect4(struct bpf_sock_addr *ctx)
{
	return remember_netns(ctx->sk);
}

SEC("cgroup/connect6")
int name_connect6(struct bpf_sock_addr *ctx)
{
	return remember_netns(ctx->sk);
}

SEC("cgroup/sendmsg4")
int name_sendmsg4(struct bpf_sock_addr *ctx)
{
	return remember_netns(ctx->sk);
}

SEC("cgroup/sendmsg6")
int name_sendmsg6(struct bpf_sock_addr *ctx)
{
	return remember_netns(ctx->sk);
}

/* Where the transport payload starts and the transport's ports. cgroup_skb data
 * starts at the IP header. IPv6 extension headers are not walked: DNS answers and
 * ClientHellos do not carry them in practice (a packet with one is not looked at). */
struct l4 {
	__u32 payload_off;
	__u32 payload_len;
	__u16 sport;
	__u16 dport;
	__u8 proto;
};

static __always_inline int parse_l4(struct __sk_buff *skb, struct l4 *out)
{
	__u32 off;
	__u8 proto;
	if (skb->family == AF_INET) {
		__u8 vihl;
		if (bpf_skb_load_bytes(skb, 0, &vihl, 1) || bpf_skb_load_bytes(skb, 9, &proto, 1))
			return -1;
		off = (vihl & 0xf) * 4;
		if (off < 20)
			return -1;
	} else if (skb->family == AF_INET6) {
		if (bpf_skb_load_bytes(skb, 6, &proto, 1))
			return -1;
		off = 40;
	} else {
		return -1;
	}
	__u16 ports[2];
	if (bpf_skb_load_bytes(skb, off, ports, 4))
		return -1;
	out->sport = bpf_ntohs(ports[0]);
	out->dport = bpf_ntohs(ports[1]);
	out->proto = proto;
	if (proto == IPPROTO_UDP) {
		off += 8;
	} else if (proto == IPPROTO_TCP) {
		__u8 doff;
		if (bpf_skb_load_bytes(skb, off + 12, &doff, 1))
			return -1;
		off += (doff >> 4) * 4;
	} else {
		return -1;
	}
	if (skb->len <= off)
		return -1;
	out->payload_off = off;
	out->payload_len = skb->len - off;
	return 0;
}

static __always_inline void emit(struct __sk_buff *skb, __u32 kind, struct l4 *l, __u32 netns)
{
	__u32 zero = 0;
	struct ps_name_event *e = bpf_map_lookup_elem(&name_scratch, &zero);
	if (!e)
		return;
	/* 64-bit, so the verifier sees the clamp below as an unsigned bound. */
	__u64 n = l->payload_len;
	if (n > PS_NAME_DATA_LEN) {
		n = PS_NAME_DATA_LEN;
		name_stat(PS_NSTAT_TRUNCATED);
	}
	/* The compiler knows the payload is not empty and would drop the check the
	 * verifier needs for a non-zero length: hide n from it. */
	asm volatile("" : "+r"(n));
	if (n < 1)
		return;
	e->kind = kind;
	e->netns = netns;
	e->cookie = bpf_get_socket_cookie(skb);
	e->len = (__u32)n;
	e->wire_len = l->payload_len;
	if (bpf_skb_load_bytes(skb, l->payload_off, e->data, n))
		return;
	/* No wakeup: the monitor drains this ring on its 100 ms timer. */
	if (bpf_ringbuf_output(&name_events, e, __builtin_offsetof(struct ps_name_event, data) + n, BPF_RB_NO_WAKEUP))
		name_stat(PS_NSTAT_RINGBUF_FULL);
}

static __always_inline __u32 socket_netns(struct bpf_sock *sk)
{
	struct name_sock *s = sk ? bpf_sk_storage_get(&name_socks, sk, 0, 0) : 0;
	if (s && s->netns)
		return s->netns;
	name_stat(PS_NSTAT_NO_NETNS);
	return 0;
}

SEC("cgroup_skb/ingress")
int name_ingress(struct __sk_buff *skb)
{
	struct l4 l = {};
	if (parse_l4(skb, &l) || l.sport != DNS_PORT)
		return 1;
	struct bpf_sock *sk = skb->sk;
	if (sk)
		sk = bpf_sk_fullsock(sk);
	emit(skb, l.proto == IPPROTO_UDP ? PS_NAME_DNS_UDP : PS_NAME_DNS_TCP, &l, socket_netns(sk));
	return 1;
}

SEC("cgroup_skb/egress")
int name_egress(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	if (!sk)
		return 1;
	sk = bpf_sk_fullsock(sk);
	if (!sk || sk->protocol != IPPROTO_TCP)
		return 1;
	struct l4 l = {};
	if (parse_l4(skb, &l) || l.payload_len < 6)
		return 1;
	/* A TLS record header (type 22, version 3.x) and a handshake of type ClientHello. */
	__u8 head[6];
	if (bpf_skb_load_bytes(skb, l.payload_off, head, 6))
		return 1;
	if (head[0] != TLS_HANDSHAKE || head[1] != 3 || head[5] != TLS_CLIENT_HELLO)
		return 1;
	struct name_sock *s = bpf_sk_storage_get(&name_socks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (s) {
		if (s->tls_seen)
			return 1; /* a retransmission of the first ClientHello */
		s->tls_seen = 1;
	}
	__u32 netns = s && s->netns ? s->netns : 0;
	if (!netns)
		name_stat(PS_NSTAT_NO_NETNS);
	emit(skb, PS_NAME_TLS_HELLO, &l, netns);
	return 1;
}
