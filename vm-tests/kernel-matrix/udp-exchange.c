/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * UDP traffic for the kernel-matrix guest, whose busybox nc has no -u. Both ends use
 * unconnected sockets (sendto/recvfrom), the path where the daemon learns the peer from
 * the cgroup sendmsg/recvmsg hooks and keeps it in socket-local storage until the byte
 * hook of the same call. Each end prints what it moved, as the ground truth:
 *
 *   udp-exchange serve ADDR PORT COUNT REPLY_SIZE   answers COUNT datagrams with
 *       REPLY_SIZE bytes each, to their senders; prints "received R sent S"
 *   udp-exchange send ADDR PORT COUNT SIZE          sends COUNT datagrams of SIZE bytes,
 *       waiting for each answer; prints "sent S received R"
 *
 * ADDR is a numeric IPv4 or IPv6 address. Built static by run.sh; it goes into the
 * guest as /usr/bin/udp-exchange, run through links named udpsrv and udpcli, so the
 * daemon records the two ends under different names.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define MAX_DATAGRAM 65507

static char buf[MAX_DATAGRAM];

static int die(const char *what)
{
	perror(what);
	return 1;
}

int main(int argc, char **argv)
{
	if (argc != 6 || (strcmp(argv[1], "serve") && strcmp(argv[1], "send"))) {
		fprintf(stderr, "usage: %s serve|send ADDR PORT COUNT SIZE\n", argv[0]);
		return 2;
	}
	int serve = !strcmp(argv[1], "serve");
	long count = atol(argv[4]), size = atol(argv[5]);
	if (count < 1 || size < 1 || size > MAX_DATAGRAM) {
		fprintf(stderr, "COUNT must be >= 1 and SIZE 1..%d\n", MAX_DATAGRAM);
		return 2;
	}

	struct sockaddr_storage addr;
	socklen_t addr_len;
	memset(&addr, 0, sizeof(addr));
	struct sockaddr_in *a4 = (struct sockaddr_in *)&addr;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&addr;
	if (inet_pton(AF_INET, argv[2], &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(atoi(argv[3]));
		addr_len = sizeof(*a4);
	} else if (inet_pton(AF_INET6, argv[2], &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(atoi(argv[3]));
		addr_len = sizeof(*a6);
	} else {
		fprintf(stderr, "%s is not a numeric IPv4 or IPv6 address\n", argv[2]);
		return 2;
	}

	int fd = socket(addr.ss_family, SOCK_DGRAM, 0);
	if (fd < 0)
		return die("socket");
	/* Loopback does not drop datagrams; a lost one is a harness failure, not a retry. */
	struct timeval tv = { .tv_sec = serve ? 30 : 10 };
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)))
		return die("setsockopt SO_RCVTIMEO");
	if (serve && bind(fd, (struct sockaddr *)&addr, addr_len))
		return die("bind");

	long sent = 0, received = 0;
	memset(buf, 'u', sizeof(buf));
	for (long i = 0; i < count; i++) {
		struct sockaddr_storage peer;
		socklen_t peer_len = sizeof(peer);
		ssize_t n;
		if (serve) {
			n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&peer, &peer_len);
			if (n < 0)
				return die("recvfrom");
			received += n;
			n = sendto(fd, buf, size, 0, (struct sockaddr *)&peer, peer_len);
			if (n < 0)
				return die("sendto");
			sent += n;
		} else {
			n = sendto(fd, buf, size, 0, (struct sockaddr *)&addr, addr_len);
			if (n < 0)
				return die("sendto");
			sent += n;
			n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&peer, &peer_len);
			if (n < 0)
				return die("recvfrom");
			received += n;
		}
	}
	if (serve)
		printf("received %ld sent %ld\n", received, sent);
	else
		printf("sent %ld received %ld\n", sent, received);
	close(fd);
	return 0;
}
