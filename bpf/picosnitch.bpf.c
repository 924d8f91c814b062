// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * picosnitch kernel side: attributes every socket send and receive to the process
 * that made it, at the moment it happens, and counts the payload bytes per flow.
 *
 * Hook set "tracepoint+cgroup" (kernel >= 6.4, no kprobes/fentry needed):
 *   tp_btf/sock_send_length, tp_btf/sock_recv_length   bytes, in the caller's context
 *   cgroup/connect4, cgroup/connect6                    attempts with no payload yet
 *   cgroup/sendmsg4/6, cgroup/recvmsg4/6                peer of unconnected UDP
 *   cgroup_skb/egress                                   peer of unconnected raw/ICMP
 *   tp_btf/inet_sock_set_state, cgroup/sock_release     end of a socket
 *   tp_btf/sched_process_exec                           path and argv of executables
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

#define AF_INET 2
#define AF_INET6 10
#define AF_PACKET 17
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_ICMP 1
#define IPPROTO_ICMPV6 58
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define SOCK_RAW 3
#define MSG_PEEK 2
#define TCP_CLOSE 7

/* How deep the exec path walk goes before it gives up and marks the path truncated. */
#define PATH_MAX_DEPTH 48
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
 * socket: written by the cgroup hooks, consumed by the byte-count tracepoints that
 * fire later in the same syscall. Socket-local storage frees itself with the socket. */
struct pending_peer {
	__u8 addr[16];
	__u16 port;
	__u16 family;
	__u32 valid;
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pending_peer);
} peers SEC(".maps");

static __always_inline void stat_add(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);
	if (v)
		*v += n; /* per-CPU slot: no atomics needed */
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

static __always_inline void read_local(struct sock *sk, __u16 family, __u8 laddr[16],
				       __u16 *lport)
{
	*lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (family == AF_INET) {
		__be32 a = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__builtin_memcpy(laddr, &a, 4);
	} else if (family == AF_INET6) {
		BPF_CORE_READ_INTO(laddr, sk, __sk_common.skc_v6_rcv_saddr);
	}
}

/* The peer of this send/receive: the socket's own destination when it is connected,
 * otherwise the address the cgroup hooks saw in this syscall. */
static __always_inline void read_peer(struct sock *sk, __u16 family,
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
		BPF_CORE_READ_INTO(key->raddr, sk, __sk_common.skc_v6_daddr);
		for (int i = 0; i < 16; i++)
			connected |= key->raddr[i];
	}
	if (connected) {
		key->rport = dport;
		return;
	}
	struct pending_peer *pp = bpf_sk_storage_get(&peers, sk, 0, 0);
	if (pp && pp->valid) {
		__builtin_memcpy(key->raddr, pp->addr, 16);
		key->rport = pp->port;
		pp->valid = 0;
	}
}

/* Reserves a flow event with the task identity filled in; the caller adds the
 * socket's own facts and submits. */
static __always_inline struct ps_flow_event *reserve_flow(struct ps_flow_key *key, __u32 kind,
							  struct ps_counters *counters)
{
	struct ps_flow_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		stat_add(PS_STAT_RINGBUF_FULL_FLOW, 1);
		if (counters)
			stat_add(PS_STAT_BYTES_LOST, counters->send_bytes + counters->recv_bytes);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->ktime_ns = bpf_ktime_get_ns();
	e->key = *key;
	fill_task(&e->task);
	if (counters)
		e->counters = *counters;
	return e;
}

static __always_inline void emit_flow(struct sock *sk, struct ps_flow_key *key, __u32 kind,
				      struct ps_counters *counters)
{
	struct ps_flow_event *e = reserve_flow(key, kind, counters);
	if (!e)
		return;
	e->protocol = BPF_CORE_READ(sk, sk_protocol);
	e->sock_type = BPF_CORE_READ(sk, sk_type);
	read_local(sk, key->family, e->laddr, &e->lport);
	bpf_ringbuf_submit(e, 0);
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
	read_peer(sk, family, &key);

	struct ps_counters delta = {};
	if (dir == PS_DIR_SEND) {
		delta.send_bytes = bytes;
		delta.send_packets = 1;
	} else {
		delta.recv_bytes = bytes;
		delta.recv_packets = 1;
	}

	struct ps_flow_value *v = bpf_map_lookup_elem(&flows, &key);
	if (v) {
		__sync_fetch_and_add(&v->counters.send_bytes, delta.send_bytes);
		__sync_fetch_and_add(&v->counters.recv_bytes, delta.recv_bytes);
		__sync_fetch_and_add(&v->counters.send_packets, delta.send_packets);
		__sync_fetch_and_add(&v->counters.recv_packets, delta.recv_packets);
		return;
	}
	struct ps_flow_value fresh = { .counters = delta };
	long err = bpf_map_update_elem(&flows, &key, &fresh, BPF_NOEXIST);
	if (err == 0) {
		emit_flow(sk, &key, PS_EV_FLOW_NEW, 0);
		return;
	}
	v = bpf_map_lookup_elem(&flows, &key);
	if (v) { /* another CPU created it first */
		__sync_fetch_and_add(&v->counters.send_bytes, delta.send_bytes);
		__sync_fetch_and_add(&v->counters.recv_bytes, delta.recv_bytes);
		__sync_fetch_and_add(&v->counters.send_packets, delta.send_packets);
		__sync_fetch_and_add(&v->counters.recv_packets, delta.recv_packets);
		return;
	}
	/* Map full: the bytes travel in the event itself, so nothing is lost unless the
	 * ring is full too (then both losses are counted). */
	stat_add(PS_STAT_FLOW_MAP_FULL, 1);
	emit_flow(sk, &key, PS_EV_FLOW_UNTRACKED, &delta);
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(sock_send_length, struct sock *sk, int ret, int flags)
{
	if (ret > 0 && sk)
		account(sk, (__u64)ret, PS_DIR_SEND);
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(sock_recv_length, struct sock *sk, int ret, int flags)
{
	/* MSG_PEEK leaves the bytes queued: they are counted when really read. */
	if (ret > 0 && sk && !(flags & MSG_PEEK))
		account(sk, (__u64)ret, PS_DIR_RECV);
	return 0;
}

/* Remembers the peer named in this syscall (sendto, recvfrom, connect) for the
 * byte-count tracepoint that follows in the same call. */
static __always_inline struct pending_peer *stash_peer(struct bpf_sock_addr *ctx, __u16 family)
{
	struct bpf_sock *bs = ctx->sk;
	if (!bs)
		return 0;
	struct pending_peer *pp = bpf_sk_storage_get(&peers, bs, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!pp)
		return 0;
	__builtin_memset(pp->addr, 0, 16);
	if (family == AF_INET) {
		__u32 a = ctx->user_ip4;
		__builtin_memcpy(pp->addr, &a, 4);
	} else {
		__u32 a[4];
		a[0] = ctx->user_ip6[0];
		a[1] = ctx->user_ip6[1];
		a[2] = ctx->user_ip6[2];
		a[3] = ctx->user_ip6[3];
		__builtin_memcpy(pp->addr, a, 16);
	}
	pp->port = bpf_ntohs((__u16)ctx->user_port);
	pp->family = family;
	pp->valid = 1;
	return pp;
}

/* A connect() creates its flow at once, so an attempt that never moves a byte
 * (refused, filtered, timed out) is still recorded. */
static __always_inline void on_connect(struct bpf_sock_addr *ctx, __u16 family)
{
	struct pending_peer *pp = stash_peer(ctx, family);
	struct bpf_sock *bs = ctx->sk;
	if (!pp || !bs)
		return;
	struct ps_flow_key key = {};
	key.cookie = bpf_get_socket_cookie(ctx);
	key.tgid = bpf_get_current_pid_tgid() >> 32;
	key.family = family;
	key.rport = pp->port;
	__builtin_memcpy(key.raddr, pp->addr, 16);
	pp->valid = 0; /* a connected socket's later sends read the peer from the socket */

	struct ps_flow_value fresh = {};
	if (bpf_map_update_elem(&flows, &key, &fresh, BPF_NOEXIST) != 0)
		return; /* exists already (reconnect) or map full; bytes will still be counted */
	struct ps_flow_event *e = reserve_flow(&key, PS_EV_FLOW_NEW, 0);
	if (!e)
		return;
	e->protocol = bs->protocol;
	e->sock_type = bs->type;
	e->lport = bs->src_port;
	bpf_ringbuf_submit(e, 0);
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
	stash_peer(ctx, AF_INET);
	return 1;
}

SEC("cgroup/sendmsg6")
int sendmsg6(struct bpf_sock_addr *ctx)
{
	stash_peer(ctx, AF_INET6);
	return 1;
}

SEC("cgroup/recvmsg4")
int recvmsg4(struct bpf_sock_addr *ctx)
{
	stash_peer(ctx, AF_INET);
	return 1;
}

SEC("cgroup/recvmsg6")
int recvmsg6(struct bpf_sock_addr *ctx)
{
	stash_peer(ctx, AF_INET6);
	return 1;
}

/* Raw and ping sockets have no sendmsg hook: learn the destination of an unconnected
 * send from the packet itself. It runs in the sender's syscall, before the
 * sock_send_length tracepoint of the same call. */
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
	if (type != SOCK_RAW && !(type == SOCK_DGRAM && (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6)))
		return 1;
	struct pending_peer *pp = bpf_sk_storage_get(&peers, bs, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!pp)
		return 1;
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
	pp->family = skb->family;
	pp->valid = 1;
	return 1;
}

static __always_inline void emit_close(__u64 cookie, __u32 is_tcp, struct sock *sk)
{
	struct ps_close_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		stat_add(PS_STAT_RINGBUF_FULL_CLOSE, 1);
		return;
	}
	e->kind = PS_EV_SOCK_CLOSE;
	e->is_tcp = is_tcp;
	e->cookie = cookie;
	e->tcp_bytes_acked = 0;
	e->tcp_bytes_received = 0;
	if (is_tcp) {
		struct tcp_sock *tp = (struct tcp_sock *)sk;
		e->tcp_bytes_acked = BPF_CORE_READ(tp, bytes_acked);
		e->tcp_bytes_received = BPF_CORE_READ(tp, bytes_received);
	}
	bpf_ringbuf_submit(e, 0);
}

/* TCP ends at TCP_CLOSE, which may come after close() (FIN_WAIT, TIME_WAIT) and
 * may run in softirq: only the socket is used here, never the current task. */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(inet_sock_set_state, struct sock *sk, int oldstate, int newstate)
{
	if (newstate != TCP_CLOSE || !sk)
		return 0;
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	emit_close(bpf_get_socket_cookie(sk), 1, sk);
	return 0;
}

/* Every other inet socket (UDP, raw, ping) ends when it is released. */
SEC("cgroup/sock_release")
int sock_release(struct bpf_sock *bs)
{
	if (bs->protocol == IPPROTO_TCP)
		return 1;
	emit_close(bpf_get_socket_cookie(bs), 0, 0);
	return 1;
}

/* Scratch space for building an exec path: 4 KiB does not fit on the BPF stack. */
struct path_buf {
	char buf[PS_PATH_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct path_buf);
} path_scratch SEC(".maps");

struct path_walk {
	struct dentry *dentry;
	struct mount *mnt;
	__u32 off;
	__u32 truncated;
};

/* One step of the walk from a file up to the root, crossing mount points. It runs as a
 * bpf_loop callback so the verifier checks one step, not every unrolled depth. */
static long path_step(__u64 index, struct path_walk *w)
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
	if (len > NAME_MASK || len + 1 > off)
		return 1;
	off -= len + 1;
	pb->buf[off & (PS_PATH_LEN - 1)] = '/';
	bpf_probe_read_kernel(&pb->buf[(off + 1) & (PS_PATH_LEN - 1 - NAME_MASK)], len & NAME_MASK,
			      name);
	w->off = off;
	w->dentry = parent;
	return 0;
}

/* Writes the absolute path of `f` right-aligned into out[0..PS_PATH_LEN] and returns
 * the offset where it starts. */
static __always_inline __u32 write_path(struct file *f, char *out, __u32 *truncated)
{
	__u32 zero = 0;
	struct path_buf *pb = bpf_map_lookup_elem(&path_scratch, &zero);
	if (!pb)
		return PS_PATH_LEN;
	struct vfsmount *vmnt = BPF_CORE_READ(f, f_path.mnt);
	struct path_walk w = {
		.dentry = BPF_CORE_READ(f, f_path.dentry),
		.mnt = (struct mount *)((char *)vmnt - bpf_core_field_offset(struct mount, mnt)),
		.off = PS_PATH_LEN,
		.truncated = 1,
	};
	bpf_loop(PATH_MAX_DEPTH, path_step, &w, 0);
	*truncated = w.truncated;
	__u32 off = w.off;
	if (off >= PS_PATH_LEN) { /* the root itself */
		off = PS_PATH_LEN - 1;
		pb->buf[PS_PATH_LEN - 1] = '/';
	}
	bpf_probe_read_kernel(out, PS_PATH_LEN, pb->buf);
	return off;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(sched_process_exec, struct task_struct *p, int old_pid, struct linux_binprm *bprm)
{
	struct ps_exec_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		stat_add(PS_STAT_RINGBUF_FULL_EXEC, 1);
		return 0;
	}
	e->kind = PS_EV_EXEC;
	e->ktime_ns = bpf_ktime_get_ns();
	__builtin_memset(&e->task, 0, sizeof(e->task));
	fill_task(&e->task);

	__u32 truncated = 0;
	e->path_off = write_path(BPF_CORE_READ(bprm, file), e->path, &truncated);

	struct mm_struct *mm = BPF_CORE_READ(p, mm);
	unsigned long start = BPF_CORE_READ(mm, arg_start);
	unsigned long end = BPF_CORE_READ(mm, arg_end);
	__u64 len = end > start ? end - start : 0;
	if (len > PS_ARGS_LEN) {
		len = PS_ARGS_LEN;
		truncated |= 2;
	}
	e->args_len = 0;
	__u32 n = len;
	if (n > 0 && n <= PS_ARGS_LEN && bpf_probe_read_user(e->args, n, (void *)start) == 0)
		e->args_len = n;
	e->truncated = truncated;
	if (truncated & 1)
		stat_add(PS_STAT_PATH_TRUNCATED, 1);
	bpf_ringbuf_submit(e, 0);
	return 0;
}
