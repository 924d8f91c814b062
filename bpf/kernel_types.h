/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The few kernel types the programs read, declared by hand with
 * preserve_access_index so every field access becomes a CO-RE relocation that the
 * loader resolves against the running kernel's BTF. Only names matter, not layout:
 * fields that sit inside anonymous unions in the kernel are declared flat here.
 * A hand-written subset (rather than a generated vmlinux.h) keeps the build
 * independent of the build machine's kernel, which a Nix sandbox does not expose.
 */
#ifndef PICOSNITCH_KERNEL_TYPES_H
#define PICOSNITCH_KERNEL_TYPES_H

#include <linux/types.h>

#define CORE __attribute__((preserve_access_index))

typedef __u32 u32;
typedef __u64 u64;

struct qstr {
	u32 len;
	const unsigned char *name;
} CORE;

struct dentry {
	struct dentry *d_parent;
	struct qstr d_name;
} CORE;

struct vfsmount {
	struct dentry *mnt_root;
} CORE;

struct mount {
	struct mount *mnt_parent;
	struct dentry *mnt_mountpoint;
	struct vfsmount mnt;
} CORE;

struct path {
	struct vfsmount *mnt;
	struct dentry *dentry;
} CORE;

struct super_block {
	u32 s_dev;
} CORE;

struct inode {
	unsigned long i_ino;
	struct super_block *i_sb;
} CORE;

struct file {
	struct path f_path;
	struct inode *f_inode;
} CORE;

struct mm_struct {
	struct file *exe_file;
	unsigned long arg_start;
	unsigned long arg_end;
} CORE;

struct ns_common {
	unsigned int inum;
} CORE;

struct net {
	struct ns_common ns;
} CORE;

struct nsproxy {
	struct net *net_ns;
} CORE;

struct task_struct {
	int pid;
	int tgid;
	struct task_struct *real_parent;
	struct mm_struct *mm;
	struct nsproxy *nsproxy;
} CORE;

struct linux_binprm {
	struct file *file;
} CORE;

struct in6_addr {
	__u8 s6_addr[16];
} CORE;

struct sock_common {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	volatile unsigned char skc_state;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
} CORE;

struct sock {
	struct sock_common __sk_common;
	/* A u8 in recent kernels, a 2-bit bitfield in older ones: read with
	 * BPF_CORE_READ_BITFIELD_PROBED, which handles both. */
	unsigned char sk_shutdown;
	__u16 sk_protocol;
	__u16 sk_type;
} CORE;

/* AF_PACKET sockets keep their ethertype here, not in sk_protocol. */
struct packet_sock {
	__be16 num;
} CORE;

struct socket {
	struct sock *sk;
} CORE;

struct tcp_sock {
	u64 bytes_received; /* in-order sequence space received: data, and the FIN */
	u64 bytes_acked;    /* sequence space the peer acknowledged: data, and the FIN */
	u32 rcv_nxt;        /* next sequence number expected from the peer */
	u32 copied_seq;     /* next sequence number the application will consume */
	u32 write_seq;      /* one past the last byte the application queued (and its FIN) */
	u32 snd_una;        /* oldest unacknowledged sequence number */
} CORE;

#endif
