// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * picosnitch kernel side: attributes every socket send and receive to the process
 * that made it, at the moment it happens, and counts the payload bytes per flow.
 *
 * Two hook sets share everything but the byte-count hooks; the loader picks one:
 *   "tracepoint" (Linux >= 6.4): tp_btf/sock_send_length, tp_btf/sock_recv_length
 *   "fentry"     (BPF trampolines, Linux >= 5.12): fexit on inet_sendmsg, inet_recvmsg,
 *                and (where built in) inet6_* and packet_*: the per-family functions every
 *                send and receive reaches (sock_sendmsg itself is bypassed by the syscall
 *                paths through __sock_sendmsg, inlined since 6.x)
 * Both fire in the calling task's context for every send and receive, which is also the
 * path of sendmmsg, recvmmsg, io_uring send/recv and (since 6.5) sendfile and splice
 * into a socket. Common to both:
 *   cgroup/connect4/6           connection attempts, announced once the local port is known
 *   cgroup/sendmsg4/6, recvmsg4/6   the peer of unconnected UDP sends and receives
 *   cgroup_skb/egress           the peer of unconnected raw and ping sends; the local
 *                               port of a connecting TCP socket (its SYN)
 *   cgroup/sock_release         end of a non-TCP socket: its last fd closed (Linux >= 5.9)
 *   tp_btf/tcp_destroy_sock     end of a TCP socket, never before the application's last
 *                               I/O (TCP_CLOSE is no such point: a half-closed socket
 *                               reaches it while the application still reads queued data)
 *   tp_btf/inet_sock_set_state  which FINs a TCP socket sent and received (socket only)
 *   tp_btf/sched_process_exec   path and argv of every executed file
 * Minimum kernel: 5.12 (socket cookies in tracing programs; the loader refuses older
 * kernels from their BTF); the exec path walk uses bpf_loop where it exists (5.17) and an
 * unrolled, shallower walk before that.
 *
 * What a socket needs remembered between hooks (a connect()'s pending announcement, the
 * peer of the datagram being sent or received, a TCP socket's FINs) lives in socket-local
 * storage, which goes away with the socket. Creating it allocates and can fail: every
 * failure is counted by what it costs (PS_STAT_STORAGE_*). On Linux 7.x it fails every
 * time on a CPU without cmpxchg16b (kmalloc_nolock() needs it); the loader tries it at
 * start and says so.
 *
 * The kernel runs a tracing program (tp_btf, fexit) at most once at a time per CPU and
 * skips a run that finds it busy there: when an interrupt's work reaches a program that
 * the interrupted code was running, and, where these programs are preemptible (Debian's
 * Linux 7.x; fexit under preempt=full), while a task is preempted inside one. Such a run's
 * event is lost; the kernel counts the skips per program and the loader reports them
 * (`missed_runs`). A backup copy of each program cannot make up for them without counting
 * some events twice: nothing identifies one event to all the programs that see it.
 */
#include "kernel_types.h"
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "picosnitch.h"

char LICENSE[] SEC("license") = "GPL";

/* The ring buffer records are only reached through pointers, so clang would leave
 * them out of the object's BTF; these never-used globals keep them in, and the Rust
 * mirror is checked against that BTF (crates/picosnitch-bpf/tests/btf_mirror.rs). */
struct ps_flow_event *btf_keep_flow_event __attribute__((unused));
struct ps_close_event *btf_keep_close_event __attribute__((unused));
struct ps_exec_event *btf_keep_exec_event __attribute__((unused));
struct ps_flow_value *btf_keep_flow_value __attribute__((unused));

#define AF_INET 2
#define AF_INET6 10
#define AF_PACKET 17
#define IPPROTO_ICMP 1
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_ICMPV6 58
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define SOCK_RAW 3
#define MSG_PEEK 2
#define TCP_SYN_SENT 2
#define TCP_FIN_WAIT1 4
#define TCP_LAST_ACK 9
#define RCV_SHUTDOWN 1

enum dir { SEND = 0, RECV = 1 };

/* How deep the exec path walk goes before it gives up and marks the path truncated. */
#define PATH_MAX_DEPTH 64
#define PATH_MAX_DEPTH_UNROLLED 24
#define NAME_MASK 255

/* Sizes are set by the loader from the config before load; these are defaults. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ps_flow_key);
	__type(value, struct ps_flow_value);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PS_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* The peer of the datagram being sent or received right now on an unconnected
 * socket: written by the cgroup hooks, consumed by the byte-count hook that fires
 * later in the same syscall. Socket-local storage frees itself with the socket. */
struct pending_peer {
	__u8 addr[16];
	__u16 port;
	__u8 send_valid; /* set for the next send */
	__u8 recv_valid; /* set for the next receive */
	__u32 known;     /* an address was ever stashed: the peer of raw/ping receives */
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pending_peer);
} peers SEC(".maps");

/* A connect()'s flow announcement, held until the local port is known (first byte)
 * or the socket ends (an attempt that never moved a byte is still recorded). */
struct pending_open {
	struct ps_flow_event ev;
	__u32 valid;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pending_open);
} opens SEC(".maps");

/* What a TCP socket's sequence counters alone cannot tell: whether a FIN occupies one
 * of their sequence numbers. Tracked at state changes, read when the socket is gone. */
#define TCP_FIN_SENT 1     /* our FIN is queued (we entered FIN_WAIT1 or LAST_ACK) */
#define TCP_FIN_RECEIVED 2 /* the peer's FIN arrived while the application held the socket */
#define TCP_RELEASED 4     /* the application closed it: shutdown bits no longer tell FINs */

struct tcp_fins {
	__u32 flags;
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct tcp_fins);
} fins SEC(".maps");

static __always_inline void stat_add(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);
	if (v)
		*v += n; /* per-CPU slot: no atomics needed */
}

/* Records go out without waking the monitor, which drains the ring on a short timer,
 * unless a quarter of the ring is in use: thousands of wakeups a second would cost more
 * than everything else the daemon does, and a filling ring still gets drained at once. */
static __always_inline __u64 wakeup_flags(void)
{
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	__u64 size = bpf_ringbuf_query(&events, BPF_RB_RING_SIZE);
	return avail >= size / 4 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

static __always_inline void read_file_id(struct file *f, struct ps_file_id *id)
{
	id->ino = BPF_CORE_READ(f, f_inode, i_ino);
	id->dev = BPF_CORE_READ(f, f_inode, i_sb, s_dev);
}

static __always_inline void read_exe(struct task_struct *t, struct ps_file_id *id)
{
	struct file *f = BPF_CORE_READ(t, mm, exe_file);
	if (f)
		read_file_id(f, id);
}

/* Identity of the current task; must run in process context. */
static __always_inline void fill_task(struct ps_task *out)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct task_struct *p = BPF_CORE_READ(t, real_parent);
	struct task_struct *gp = BPF_CORE_READ(p, real_parent);
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	out->tgid = pid_tgid >> 32;
	out->pid = (__u32)pid_tgid;
	out->ppid = BPF_CORE_READ(p, tgid);
	out->gppid = BPF_CORE_READ(gp, tgid);
	out->uid = (__u32)bpf_get_current_uid_gid();
	out->netns = BPF_CORE_READ(t, nsproxy, net_ns, ns.inum);
	read_exe(t, &out->exe);
	read_exe(p, &out->pexe);
	read_exe(gp, &out->gpexe);
	bpf_get_current_comm(out->comm, sizeof(out->comm));
}

/* What the application has queued (sent) and consumed (received) on a TCP socket so
 * far, by any path, from the kernel's own counters: the u64 totals of acknowledged and
 * received sequence space, corrected by the (small, u32) distances to what is still
 * unacknowledged or unread, less the FINs, which occupy one sequence number each. */
static __always_inline void tcp_app_totals(struct sock *sk, __u32 fin_flags, __u64 *sent, __u64 *recvd)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	__u64 acked = BPF_CORE_READ(tp, bytes_acked);
	__u32 unacked = BPF_CORE_READ(tp, write_seq) - BPF_CORE_READ(tp, snd_una);
	__u64 s = acked + unacked;
	if ((fin_flags & TCP_FIN_SENT) && s > 0)
		s -= 1;
	/* bytes_received holds the peer's FIN once it arrived; the unread gap holds it
	 * until the application reads the end of the stream. So it is to be taken off
	 * only when it arrived and nothing is left unread. */
	__u64 received = BPF_CORE_READ(tp, bytes_received);
	__u32 gap = BPF_CORE_READ(tp, rcv_nxt) - BPF_CORE_READ(tp, copied_seq);
	__u64 consumed = received > gap ? received - gap : 0;
	if ((fin_flags & TCP_FIN_RECEIVED) && gap == 0 && consumed > 0)
		consumed -= 1;
	*sent = s;
	*recvd = consumed;
}

static __always_inline __u32 tcp_fin_flags(struct sock *sk)
{
	struct tcp_fins *f = bpf_sk_storage_get(&fins, sk, 0, 0);
	return f ? f->flags : 0;
}

/* The socket's local address and port, and for TCP the base of its totals; `bytes` in
 * direction `dir` were just counted by the hook that runs after the operation. */
static __always_inline void read_local(struct sock *sk, struct ps_flow_event *e, __u32 dir, __u64 bytes)
{
	if (BPF_CORE_READ(sk, sk_protocol) == IPPROTO_TCP && e->tcp_sent_base == 0 &&
	    e->tcp_recv_base == 0) {
		__u64 sent, recvd;
		tcp_app_totals(sk, tcp_fin_flags(sk), &sent, &recvd);
		if (dir == SEND)
			sent = sent > bytes ? sent - bytes : 0;
		else
			recvd = recvd > bytes ? recvd - bytes : 0;
		e->tcp_sent_base = sent;
		e->tcp_recv_base = recvd;
	}
	__u16 lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (lport == 0)
		return; /* unbound, or a TCP socket already unhashed: keep what we had */
	e->lport = lport;
	if (e->key.family == AF_INET) {
		__be32 a = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__builtin_memcpy(e->laddr, &a, 4);
	} else if (e->key.family == AF_INET6) {
		BPF_CORE_READ_INTO(&e->laddr, sk, __sk_common.skc_v6_rcv_saddr); /* &: the whole array, not 1 byte */
	}
}

/* The peer of this send/receive: the socket's own destination when it is connected,
 * otherwise the address the cgroup hooks saw in this syscall. */
static __always_inline void read_peer(struct sock *sk, __u16 family, __u32 dir,
				      struct ps_flow_key *key)
{
	__u16 dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	int connected = 0;

	if (family == AF_INET) {
		__be32 a = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		if (a) {
			__builtin_memcpy(key->raddr, &a, 4);
			connected = 1;
		}
	} else if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&key->raddr, sk, __sk_common.skc_v6_daddr); /* &: the whole array */
		for (int i = 0; i < 16; i++)
			connected |= key->raddr[i];
	} else {
		return; /* AF_PACKET: no IP peer */
	}
	if (connected) {
		key->rport = dport;
		return;
	}
	struct pending_peer *pp = bpf_sk_storage_get(&peers, sk, 0, 0);
	if (!pp)
		return;
	if (dir == SEND ? pp->send_valid : pp->recv_valid) {
		__builtin_memcpy(key->raddr, pp->addr, 16);
		key->rport = pp->port;
		if (dir == SEND)
			pp->send_valid = 0;
		else
			pp->recv_valid = 0;
		return;
	}
	/* Raw and ping sockets have no receive hook: their replies come from the peer
	 * they last sent to. */
	__u16 type = BPF_CORE_READ(sk, sk_type);
	if (dir == RECV && pp->known && type != SOCK_STREAM) {
		__builtin_memcpy(key->raddr, pp->addr, 16);
		key->rport = pp->port;
	}
}

/* IPPROTO_* for inet sockets; the ethertype (host order) for AF_PACKET sockets, which
 * keep it in packet_sock (guarded: af_packet may be a module without vmlinux BTF). */
static __always_inline __u16 socket_protocol(struct sock *sk, __u16 family)
{
	if (family == AF_PACKET) {
		if (bpf_core_field_exists(((struct packet_sock *)0)->num))
			return bpf_ntohs(BPF_CORE_READ((struct packet_sock *)sk, num));
		return 0;
	}
	return BPF_CORE_READ(sk, sk_protocol);
}

/* Emits a flow event for `sk`, whose first counted bytes are `bytes` in `dir`;
 * `counters` only for PS_EV_FLOW_UNTRACKED. */
static __always_inline void emit_flow(struct sock *sk, struct ps_flow_key *key, __u32 kind,
				      __u32 dir, __u64 bytes, struct ps_counters *counters)
{
	struct ps_flow_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		stat_add(PS_STAT_RINGBUF_FULL_FLOW, 1);
		if (counters)
			stat_add(PS_STAT_BYTES_LOST, counters->send_bytes + counters->recv_bytes);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->ktime_ns = bpf_ktime_get_ns();
	e->key = *key;
	e->direction = dir == SEND ? PS_DIR_OUT : PS_DIR_IN;
	e->protocol = socket_protocol(sk, key->family);
	e->sock_type = BPF_CORE_READ(sk, sk_type);
	fill_task(&e->task);
	read_local(sk, e, dir, bytes);
	if (counters)
		e->counters = *counters;
	bpf_ringbuf_submit(e, wakeup_flags());
}

/* Sends the announcement a connect() left in socket storage, once, completed from `sk`
 * whose first counted bytes are `bytes` in `dir`. `sk` may be null at release (then the
 * local end stored from the SYN is used). */
static __always_inline void announce_pending(struct pending_open *p, struct sock *sk, __u32 dir,
					     __u64 bytes)
{
	if (!p || !p->valid)
		return;
	p->valid = 0;
	struct ps_flow_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		stat_add(PS_STAT_RINGBUF_FULL_FLOW, 1);
		return;
	}
	__builtin_memcpy(e, &p->ev, sizeof(*e));
	if (sk)
		read_local(sk, e, dir, bytes);
	bpf_ringbuf_submit(e, wakeup_flags());
}

static __always_inline void add_counters(struct ps_flow_value *v, struct ps_counters *d)
{
	__sync_fetch_and_add(&v->counters.send_bytes, d->send_bytes);
	__sync_fetch_and_add(&v->counters.recv_bytes, d->recv_bytes);
	__sync_fetch_and_add(&v->counters.send_packets, d->send_packets);
	__sync_fetch_and_add(&v->counters.recv_packets, d->recv_packets);
}

/* Adds one send or receive to its flow, creating the flow on first sight. */
static __always_inline void account(struct sock *sk, __u64 bytes, __u32 dir)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6 && family != AF_PACKET)
		return;

	struct ps_flow_key key = {};
	key.cookie = bpf_get_socket_cookie(sk);
	key.tgid = bpf_get_current_pid_tgid() >> 32;
	key.family = family;
	read_peer(sk, family, dir, &key);

	struct ps_counters delta = {};
	if (dir == SEND) {
		delta.send_bytes = bytes;
		delta.send_packets = 1;
	} else {
		delta.recv_bytes = bytes;
		delta.recv_packets = 1;
	}

	struct ps_flow_value *v = bpf_map_lookup_elem(&flows, &key);
	if (v) {
		add_counters(v, &delta);
		if (v->flags & PS_FLOW_PENDING_OPEN) {
			/* Not atomic: two CPUs may both announce, and the monitor ignores a
			 * second announcement of a flow it already has. */
			v->flags &= ~PS_FLOW_PENDING_OPEN;
			announce_pending(bpf_sk_storage_get(&opens, sk, 0, 0), sk, dir, bytes);
		}
		return;
	}
	struct ps_flow_value fresh = { .counters = delta };
	long err = bpf_map_update_elem(&flows, &key, &fresh, BPF_NOEXIST);
	if (err == 0) {
		emit_flow(sk, &key, PS_EV_FLOW_NEW, dir, bytes, 0);
		return;
	}
	v = bpf_map_lookup_elem(&flows, &key);
	if (v) { /* another CPU created it first */
		add_counters(v, &delta);
		return;
	}
	/* Map full: the bytes travel in the event itself, so nothing is lost unless the
	 * ring is full too (then both losses are counted). */
	stat_add(PS_STAT_FLOW_MAP_FULL, 1);
	emit_flow(sk, &key, PS_EV_FLOW_UNTRACKED, dir, bytes, &delta);
}

/* ---- hook set "tracepoint": the sock:sock_{send,recv}_length tracepoints ---- */

SEC("tp_btf/sock_send_length")
int BPF_PROG(sock_send_length, struct sock *sk, int ret, int flags)
{
	if (ret > 0 && sk)
		account(sk, (__u64)ret, SEND);
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(sock_recv_length, struct sock *sk, int ret, int flags)
{
	/* MSG_PEEK leaves the bytes queued: they are counted when really read. */
	if (ret > 0 && sk && !(flags & MSG_PEEK))
		account(sk, (__u64)ret, RECV);
	return 0;
}

/* ---- hook set "fentry": fexit on the per-family send and receive functions ---- */

/* The socket pointer must be loaded directly (not with BPF_CORE_READ, which yields a
 * plain number) so the verifier still knows it as a socket for the cookie helper. */
#define FEXIT_SEND(fn)                                                                   \
	SEC("fexit/" #fn)                                                                \
	int BPF_PROG(fexit_##fn, struct socket *sock, void *msg, __u64 size, int ret)    \
	{                                                                                \
		struct sock *sk = sock->sk;                                              \
		if (ret > 0 && sk)                                                       \
			account(sk, (__u64)ret, SEND);                                   \
		return 0;                                                                \
	}

#define FEXIT_RECV(fn)                                                                   \
	SEC("fexit/" #fn)                                                                \
	int BPF_PROG(fexit_##fn, struct socket *sock, void *msg, __u64 size, int flags,  \
		     int ret)                                                            \
	{                                                                                \
		struct sock *sk = sock->sk;                                              \
		if (ret > 0 && sk && !(flags & MSG_PEEK))                                \
			account(sk, (__u64)ret, RECV);                                   \
		return 0;                                                                \
	}

FEXIT_SEND(inet_sendmsg)
FEXIT_SEND(inet6_sendmsg)
FEXIT_SEND(packet_sendmsg)
FEXIT_RECV(inet_recvmsg)
FEXIT_RECV(inet6_recvmsg)
FEXIT_RECV(packet_recvmsg)

/* ---- peers of unconnected sockets, and connection attempts ---- */

static __always_inline void copy_user_addr(struct bpf_sock_addr *ctx, __u16 family, __u8 out[16])
{
	__builtin_memset(out, 0, 16);
	if (family == AF_INET) {
		__u32 a = ctx->user_ip4;
		__builtin_memcpy(out, &a, 4);
	} else {
		__u32 a[4];
		a[0] = ctx->user_ip6[0];
		a[1] = ctx->user_ip6[1];
		a[2] = ctx->user_ip6[2];
		a[3] = ctx->user_ip6[3];
		__builtin_memcpy(out, a, 16);
	}
}

/* Remembers the peer named in this sendto/recvfrom for the byte-count hook that
 * follows in the same call. */
static __always_inline void stash_peer(struct bpf_sock_addr *ctx, __u16 family, __u32 dir)
{
	struct bpf_sock *bs = ctx->sk;
	if (!bs)
		return;
	struct pending_peer *pp = bpf_sk_storage_get(&peers, bs, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!pp) {
		stat_add(PS_STAT_STORAGE_PEER, 1);
		return;
	}
	copy_user_addr(ctx, family, pp->addr);
	pp->port = bpf_ntohs((__u16)ctx->user_port);
	pp->known = 1;
	if (dir == SEND)
		pp->send_valid = 1;
	else
		pp->recv_valid = 1;
}

/* A connect() creates its flow at once, but announces it only when the local port is
 * known: at the first byte, or when the socket ends (an attempt that never moved a byte,
 * refused or timed out, is still recorded). The identity is captured now, in the
 * connecting task, because the end may run in softirq. */
static __always_inline void on_connect(struct bpf_sock_addr *ctx, __u16 family)
{
	struct bpf_sock *bs = ctx->sk;
	if (!bs)
		return;
	struct ps_flow_key key = {};
	key.cookie = bpf_get_socket_cookie(ctx);
	key.tgid = bpf_get_current_pid_tgid() >> 32;
	key.family = family;
	key.rport = bpf_ntohs((__u16)ctx->user_port);
	copy_user_addr(ctx, family, key.raddr);

	struct pending_open *p = bpf_sk_storage_get(&opens, bs, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!p) {
		/* No storage: the flow is created and announced at its first byte instead. */
		stat_add(PS_STAT_STORAGE_OPEN, 1);
		return;
	}
	struct ps_flow_value fresh = { .flags = PS_FLOW_PENDING_OPEN };
	long err = bpf_map_update_elem(&flows, &key, &fresh, BPF_NOEXIST);
	if (err != 0) {
		/* Exists already (a reconnect to the same peer) or the map is full: in both
		 * cases the first byte takes care of it. */
		if (!bpf_map_lookup_elem(&flows, &key))
			stat_add(PS_STAT_FLOW_MAP_FULL, 1);
		return;
	}
	if (p->valid) {
		/* An earlier connect() of this socket that moved nothing (getaddrinfo connects
		 * one UDP socket to each candidate address to learn its source address): its
		 * announcement goes out now, or overwriting it below would leave its flow in
		 * the map unannounced until the monitor's orphan sweep. */
		struct ps_flow_value *prev = bpf_map_lookup_elem(&flows, &p->ev.key);
		if (prev)
			prev->flags &= ~PS_FLOW_PENDING_OPEN;
		announce_pending(p, 0, SEND, 0);
	}
	__builtin_memset(&p->ev, 0, sizeof(p->ev));
	p->ev.kind = PS_EV_FLOW_NEW;
	p->ev.ktime_ns = bpf_ktime_get_ns();
	p->ev.key = key;
	p->ev.direction = PS_DIR_OUT;
	p->ev.protocol = bs->protocol;
	p->ev.sock_type = bs->type;
	fill_task(&p->ev.task);
	p->valid = 1;
}

SEC("cgroup/connect4")
int connect4(struct bpf_sock_addr *ctx)
{
	on_connect(ctx, AF_INET);
	return 1;
}

SEC("cgroup/connect6")
int connect6(struct bpf_sock_addr *ctx)
{
	on_connect(ctx, AF_INET6);
	return 1;
}

SEC("cgroup/sendmsg4")
int sendmsg4(struct bpf_sock_addr *ctx)
{
	stash_peer(ctx, AF_INET, SEND);
	return 1;
}

SEC("cgroup/sendmsg6")
int sendmsg6(struct bpf_sock_addr *ctx)
{
	stash_peer(ctx, AF_INET6, SEND);
	return 1;
}

SEC("cgroup/recvmsg4")
int recvmsg4(struct bpf_sock_addr *ctx)
{
	stash_peer(ctx, AF_INET, RECV);
	return 1;
}

SEC("cgroup/recvmsg6")
int recvmsg6(struct bpf_sock_addr *ctx)
{
	stash_peer(ctx, AF_INET6, RECV);
	return 1;
}

/* Runs in the sender's syscall for locally generated packets. Two jobs:
 * - raw and ping sockets have no sendmsg hook: learn the destination of an
 *   unconnected send from the packet itself, before the byte hook of the same call;
 * - a connecting TCP socket sends its SYN here, in the connecting task, with its
 *   local port chosen: complete the pending announcement (needed when the attempt
 *   fails, because at close the kernel has already released the port). */
SEC("cgroup_skb/egress")
int skb_egress(struct __sk_buff *skb)
{
	struct bpf_sock *bs = skb->sk;
	if (!bs)
		return 1;
	bs = bpf_sk_fullsock(bs);
	if (!bs)
		return 1;
	__u32 type = bs->type;
	__u32 proto = bs->protocol;
	if (proto == IPPROTO_TCP) {
		if (bs->state != TCP_SYN_SENT)
			return 1;
		struct pending_open *p = bpf_sk_storage_get(&opens, bs, 0, 0);
		if (p && p->valid && p->ev.lport == 0) {
			/* The base of the socket's totals: its SYN already holds a sequence
			 * number, which is not application data. */
			struct tcp_sock *tp = bpf_skc_to_tcp_sock(bs);
			if (tp)
				tcp_app_totals((struct sock *)tp, 0, &p->ev.tcp_sent_base, &p->ev.tcp_recv_base);
			p->ev.lport = bs->src_port;
			if (bs->family == AF_INET) {
				__u32 a = bs->src_ip4;
				__builtin_memcpy(p->ev.laddr, &a, 4);
			} else {
				__u32 a[4];
				a[0] = bs->src_ip6[0];
				a[1] = bs->src_ip6[1];
				a[2] = bs->src_ip6[2];
				a[3] = bs->src_ip6[3];
				__builtin_memcpy(p->ev.laddr, a, 16);
			}
		}
		return 1;
	}
	if (type != SOCK_RAW && !(type == SOCK_DGRAM && (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6)))
		return 1;
	struct pending_peer *pp = bpf_sk_storage_get(&peers, bs, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!pp) {
		stat_add(PS_STAT_STORAGE_PEER, 1);
		return 1;
	}
	__builtin_memset(pp->addr, 0, 16);
	if (skb->family == AF_INET) {
		__u32 daddr;
		if (bpf_skb_load_bytes(skb, 16, &daddr, 4))
			return 1;
		__builtin_memcpy(pp->addr, &daddr, 4);
	} else if (skb->family == AF_INET6) {
		if (bpf_skb_load_bytes(skb, 24, pp->addr, 16))
			return 1;
	} else {
		return 1;
	}
	pp->port = 0;
	pp->known = 1;
	pp->send_valid = 1;
	return 1;
}

/* ---- end of a socket ---- */

static __always_inline void emit_close(__u64 cookie, struct sock *tcp, __u32 fin_flags)
{
	struct ps_close_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		stat_add(PS_STAT_RINGBUF_FULL_CLOSE, 1);
		return;
	}
	e->kind = PS_EV_SOCK_CLOSE;
	e->cookie = cookie;
	e->is_tcp = 0;
	e->tcp_sent = 0;
	e->tcp_recv = 0;
	if (tcp) {
		e->is_tcp = 1;
		tcp_app_totals(tcp, fin_flags, &e->tcp_sent, &e->tcp_recv);
	}
	bpf_ringbuf_submit(e, wakeup_flags());
}

/* A socket's last file descriptor is closed: no application I/O can follow. Runs in
 * the closing task (or its exit), before TCP sends its FIN. */
SEC("cgroup/sock_release")
int sock_release(struct bpf_sock *bs)
{
	/* A connect() that never moved a byte is still announced; its local end came from
	 * the SYN (this program type may not read the port itself). */
	announce_pending(bpf_sk_storage_get(&opens, bs, 0, 0), 0, SEND, 0);
	if (bs->protocol == IPPROTO_TCP) {
		/* TCP ends at tcp_destroy_sock, with the socket's own counters, which this
		 * program type may not read. From here on, tcp_close's shutdown bits say
		 * nothing about the peer's FIN. */
		struct tcp_fins *f = bpf_sk_storage_get(&fins, bs, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (f)
			f->flags |= TCP_RELEASED;
		else
			stat_add(PS_STAT_STORAGE_FIN, 1);
		return 1;
	}
	emit_close(bpf_get_socket_cookie(bs), 0, 0);
	return 1;
}

/* Where FINs occupy sequence numbers. May run in softirq: only the socket is used. */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(inet_sock_set_state, struct sock *sk, int oldstate, int newstate)
{
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	__u32 add = 0;
	if (newstate == TCP_FIN_WAIT1 || newstate == TCP_LAST_ACK)
		add |= TCP_FIN_SENT;
	/* tcp_fin() marks RCV_SHUTDOWN before it changes the state; tcp_reset() does not. */
	__u8 shutdown = BPF_CORE_READ_BITFIELD_PROBED(sk, sk_shutdown);
	if (shutdown & RCV_SHUTDOWN)
		add |= TCP_FIN_RECEIVED;
	if (!add)
		return 0;
	struct tcp_fins *f = bpf_sk_storage_get(&fins, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!f) {
		stat_add(PS_STAT_STORAGE_FIN, 1); /* this socket's totals may be off by a FIN */
		return 0;
	}
	if (f->flags & TCP_RELEASED)
		add &= ~TCP_FIN_RECEIVED; /* tcp_close() set every shutdown bit itself */
	f->flags |= add;
	return 0;
}

/* The TCP socket is destroyed: after the application released it, and after its FIN
 * handshake if it had one. Its counters are final. */
SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(tcp_destroy_sock, struct sock *sk)
{
	if (!sk)
		return 0;
	emit_close(bpf_get_socket_cookie(sk), sk, tcp_fin_flags(sk));
	return 0;
}

/* ---- executed files ---- */

/* Scratch space: the path is built right-aligned here, then the record is assembled
 * in exec_scratch; neither fits on the 512-byte BPF stack. */
struct path_buf {
	/* The path is built right-aligned in the first PS_PATH_LEN bytes; the slack after
	 * them lets the verifier accept a name copy at any offset below PS_PATH_LEN. */
	char buf[PS_PATH_LEN + NAME_MASK + 1];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct path_buf);
} path_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ps_exec_event);
} exec_scratch SEC(".maps");

struct path_walk {
	struct dentry *dentry;
	struct mount *mnt;
	__u32 off;
	__u32 truncated;
};

/* One step of the walk from a file up to the root, crossing mount points. Returns 1
 * when the walk is over. */
static __always_inline long path_step(struct path_walk *w)
{
	__u32 zero = 0;
	struct path_buf *pb = bpf_map_lookup_elem(&path_scratch, &zero);
	if (!pb)
		return 1;
	struct dentry *dentry = w->dentry;
	struct mount *mnt = w->mnt;
	struct dentry *mnt_root = BPF_CORE_READ(mnt, mnt.mnt_root);
	struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
	if (dentry == mnt_root || dentry == parent) {
		struct mount *mnt_parent = BPF_CORE_READ(mnt, mnt_parent);
		if (dentry != mnt_root || mnt == mnt_parent) {
			w->truncated = 0; /* reached the root of the namespace */
			return 1;
		}
		w->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = mnt_parent;
		return 0;
	}
	__u32 len = BPF_CORE_READ(dentry, d_name.len);
	const unsigned char *name = BPF_CORE_READ(dentry, d_name.name);
	__u32 off = w->off;
	/* Keep byte 0 free: a path is at most PS_PATH_LEN - 1 bytes. */
	if (len > NAME_MASK || len + 2 > off)
		return 1;
	off -= len + 1;
	pb->buf[off & (PS_PATH_LEN - 1)] = '/';
	bpf_probe_read_kernel(&pb->buf[(off + 1) & (PS_PATH_LEN - 1)], len & NAME_MASK, name);
	w->off = off;
	w->dentry = parent;
	return 0;
}

static long path_step_cb(__u64 index, struct path_walk *w)
{
	return path_step(w);
}

static __always_inline void path_walk_init(struct path_walk *w, struct file *f)
{
	struct vfsmount *vmnt = BPF_CORE_READ(f, f_path.mnt);
	w->dentry = BPF_CORE_READ(f, f_path.dentry);
	w->mnt = (struct mount *)((char *)vmnt - bpf_core_field_offset(struct mount, mnt));
	w->off = PS_PATH_LEN;
	w->truncated = 1;
}

/* Fills the exec record's header, path and argv from the walk's result and sends it,
 * only as long as its contents. */
static __always_inline void send_exec(struct task_struct *p, struct path_walk *w)
{
	__u32 zero = 0;
	struct path_buf *pb = bpf_map_lookup_elem(&path_scratch, &zero);
	struct ps_exec_event *e = bpf_map_lookup_elem(&exec_scratch, &zero);
	if (!pb || !e)
		return;
	e->kind = PS_EV_EXEC;
	e->ktime_ns = bpf_ktime_get_ns();
	__builtin_memset(&e->task, 0, sizeof(e->task));
	fill_task(&e->task);

	__u32 truncated = w->truncated;
	__u32 off = w->off;
	if (off >= PS_PATH_LEN) { /* the root itself */
		off = PS_PATH_LEN - 1;
		pb->buf[PS_PATH_LEN - 1] = '/';
	}
	__u32 path_len = (PS_PATH_LEN - off) & (PS_PATH_LEN - 1);
	bpf_probe_read_kernel(e->data, path_len, &pb->buf[off & (PS_PATH_LEN - 1)]);
	e->path_len = path_len;

	struct mm_struct *mm = BPF_CORE_READ(p, mm);
	unsigned long start = BPF_CORE_READ(mm, arg_start);
	unsigned long end = BPF_CORE_READ(mm, arg_end);
	__u64 len = end > start ? end - start : 0;
	if (len > PS_ARGS_LEN) {
		len = PS_ARGS_LEN;
		truncated |= 2;
	}
	__u32 n = len;
	e->args_len = 0;
	if (n > 0 && n <= PS_ARGS_LEN &&
	    bpf_probe_read_user(&e->data[path_len & (PS_PATH_LEN - 1)], n, (void *)start) == 0)
		e->args_len = n;
	e->truncated = truncated;
	if (truncated & 1)
		stat_add(PS_STAT_PATH_TRUNCATED, 1);

	__u64 size = __builtin_offsetof(struct ps_exec_event, data) + path_len + e->args_len;
	if (size > sizeof(*e))
		size = sizeof(*e);
	if (bpf_ringbuf_output(&events, e, size, wakeup_flags()))
		stat_add(PS_STAT_RINGBUF_FULL_EXEC, 1);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(sched_process_exec, struct task_struct *p, int old_pid, struct linux_binprm *bprm)
{
	struct path_walk w;
	path_walk_init(&w, BPF_CORE_READ(bprm, file));
	bpf_loop(PATH_MAX_DEPTH, path_step_cb, &w, 0);
	send_exec(p, &w);
	return 0;
}

/* Kernels before 5.17 have no bpf_loop: the same walk, unrolled and shallower. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(sched_process_exec_unrolled, struct task_struct *p, int old_pid,
	     struct linux_binprm *bprm)
{
	struct path_walk w;
	path_walk_init(&w, BPF_CORE_READ(bprm, file));
#pragma unroll
	for (int i = 0; i < PATH_MAX_DEPTH_UNROLLED; i++) {
		if (path_step(&w))
			break;
	}
	send_exec(p, &w);
	return 0;
}
